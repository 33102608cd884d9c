"""The offline basemap: its vector tiles over HTTP, and on the map as a user sees it."""

import json
import math

import mapbox_vector_tile
import numpy as np
import pytest
from sqlalchemy import text

from geo.crs import wgs84_to_gcj02
from webmap.app import create_app

from ..conftest import Server
from .browser import OUTPUT, logged_in, wait_for
from .tilemath import tile_bounds, tile_of

pytestmark = pytest.mark.db

Z = 15
UNREACHABLE = "http://127.0.0.1:9/{z}/{x}/{y}.png"  # loopback, nothing listens on port 9
ROAD_COLOURS = ("#e8927c", "#f2b360", "#d8c37c", "#b9b0a4", "#c8c0b4")  # basemap.js






@pytest.fixture(scope="module")
def building_tile(db, demo_small):
    """z/x/y of the tile over a Changsha building."""
    with db.connect() as conn:
        lon, lat = conn.execute(text(
            "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
            "FROM buildings WHERE jurisdiction_code LIKE '4301%' ORDER BY id LIMIT 1")).one()
    return (Z, *tile_of(lon, lat, Z))


def _count(db, table: str, bounds, where: str = "") -> int:
    with db.connect() as conn:
        return conn.execute(text(
            f"SELECT count(*) FROM {table} WHERE ST_Intersects(geom, "
            f"ST_MakeEnvelope(:a, :b, :c, :d, 4326)) {where}"),
            dict(zip("abcd", bounds, strict=True))).scalar_one()


def test_basemap_tile_has_roads_buildings_and_boundaries(api, db, building_tile):
    z, x, y = building_tile
    r = api("police", f"/tiles/basemap/{z}/{x}/{y}.mvt")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    tile = mapbox_vector_tile.decode(r.content)
    assert {"buildings", "roads", "boundaries"} <= set(tile)
    bounds = tile_bounds(x, y, Z)
    assert len(tile["buildings"]["features"]) >= _count(db, "buildings", bounds) > 0
    roads = tile["roads"]["features"]
    assert len(roads) >= _count(db, "roads", bounds) > 0
    assert {f["properties"]["class"] for f in roads} <= {
        "motorway", "arterial", "collector", "local", "path"}
    levels = {f["properties"]["level"] for f in tile["boundaries"]["features"]}
    assert "community" in levels or "village" in levels
    names = [f["properties"]["name"] for f in tile.get("places", {"features": []})["features"]]
    assert all(names)


def test_a_name_near_a_tile_edge_is_in_the_next_tile_too(api, db):
    """Each tile draws its part of a label: a place 10-40 pixels off is in the tile too."""
    with db.connect() as conn:
        places = conn.execute(text(
            "SELECT name, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
            "FROM jurisdictions WHERE code LIKE '4301%' AND level = 'community'")).all()
    found = [(name, z, int(px // 256) + 1, int(py // 256)) for name, lon, lat in places
             for z in range(13, 19) for px, py in [_pixel(lon, lat, z)] if 216 < px % 256 < 246]
    assert found
    name, z, x, y = found[0]
    tile = mapbox_vector_tile.decode(api("police", f"/tiles/basemap/{z}/{x}/{y}.mvt").content)
    assert name in [f["properties"]["name"] for f in tile["places"]["features"]]


def test_city_wide_tile_leaves_out_buildings_and_minor_roads(api, building_tile):
    z, x, y = building_tile
    tile = mapbox_vector_tile.decode(
        api("police", f"/tiles/basemap/11/{x >> (z - 11)}/{y >> (z - 11)}.mvt").content)
    assert "buildings" not in tile
    assert {f["properties"]["class"] for f in tile["roads"]["features"]} <= {
        "motorway", "arterial", "collector"}
    assert {f["properties"]["level"] for f in tile["boundaries"]["features"]} <= {
        "province", "city", "district"}


@pytest.mark.parametrize("user", ["admin", "planner", "police", "partner", "viewer"])
def test_every_role_reads_the_basemap_in_its_scope(api, building_tile, user):
    z, x, y = building_tile
    r = api(user, f"/tiles/basemap/{z}/{x}/{y}.mvt")
    assert r.status_code == 200, r.text
    again = api(user, f"/tiles/basemap/{z}/{x}/{y}.mvt",
                headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304
    assert api(None, f"/tiles/basemap/{z}/{x}/{y}.mvt").status_code == 401


def test_basemap_honours_scope(api, db):
    with db.connect() as conn:  # a Zhuzhou building: outside the police user's Changsha
        lon, lat = conn.execute(text(
            "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
            "FROM buildings WHERE jurisdiction_code LIKE '4302%' ORDER BY id LIMIT 1")).one()
    x, y = tile_of(lon, lat, Z)

    def buildings(user):
        tile = mapbox_vector_tile.decode(api(user, f"/tiles/basemap/{Z}/{x}/{y}.mvt").content)
        return len(tile.get("buildings", {"features": []})["features"])

    assert buildings("police") < buildings("admin")


@pytest.mark.parametrize("path", ["23/0/0", "3/8/0", "3/0/8", "15/32768/0"])
def test_a_tile_outside_the_grid_is_404_saying_so(api, path):
    r = api("police", f"/tiles/basemap/{path}.mvt")
    assert r.status_code == 404
    assert "there is no tile" in r.text


def test_basemap_tile_takes_no_query_parameters(api):
    r = api("police", "/tiles/basemap/3/6/3.mvt?layers=roads")
    assert r.status_code == 404 and "no query parameters" in r.text


@pytest.mark.parametrize("value, problem", [
    ("[{", "not JSON"),
    ('{"name": "x"}', "JSON list"),
    ('[{"name": "x", "url": "http://127.0.0.1:9/{z}/{x}/{y}.png", "attribution": "a"}]',
     "exactly the keys"),
    ('[{"name": "x", "url": "http://127.0.0.1:9/{z}/{x}/{y}.png", "attribution": "a", '
     '"crs": "bd09"}]', "crs must be one of wgs84, gcj02"),
    ('[{"name": "x", "url": "http://127.0.0.1:9/tiles.png", "attribution": "a", '
     '"crs": "wgs84"}]', "{z}, {x} and {y}"),
])
def test_a_bad_basemap_configuration_stops_the_app_naming_the_problem(value, problem):
    with pytest.raises(ValueError, match="SAFEGRID_BASEMAPS") as info:
        create_app({"BASEMAPS": value})
    assert problem in str(info.value)


# --- in the browser -------------------------------------------------------------------

ROAD_PIXELS = """(colours) => {
  const wanted = new Set(colours.map(c => parseInt(c.slice(1), 16)));
  let n = 0;
  document.querySelectorAll('.leaflet-tile-pane canvas.leaflet-tile').forEach(c => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] === 255 && wanted.has((d[i] << 16) | (d[i + 1] << 8) | d[i + 2])) n += 1;
    }
  });
  return n;
}"""


@pytest.mark.browser
def test_map_draws_the_offline_basemap_without_internet(server):
    with logged_in(server, "police", "/map") as page:
        page.route("**/*", lambda route: route.abort()
                   if not route.request.url.startswith(server) else route.continue_())
        page.goto(f"{server}/map", wait_until="load")
        base = page.locator(".leaflet-control-layers-base label", has_text="离线底图")
        assert base.locator("input").is_checked()
        wait_for(page, "document.querySelectorAll("
                       "'.leaflet-tile-pane canvas.leaflet-tile').length > 3")
        page.wait_for_load_state("networkidle")
        roads = wait_for(page, f"({ROAD_PIXELS})({json.dumps(ROAD_COLOURS)}) > 500")
        page.screenshot(path=str(OUTPUT / "basemap_offline.png"))
        assert roads
        assert page.locator(".leaflet-tile-pane img").count() == 0  # no remote tiles
        assert page.locator(".sg-basemap-notice:visible").count() == 0
        assert page.errors == []


@pytest.mark.browser
@pytest.mark.parametrize("lang, words", [("zh", "离线底图有部分瓦片未能"),
                                         ("en", "could not be had from this server")])
def test_offline_tiles_that_fail_say_so_on_the_map(server, lang, words):
    with logged_in(server, "police", f"/map?lang={lang}") as page:
        page.route("**/tiles/basemap/**", lambda route: route.fulfill(
            status=503, body='{"error": "busy"}', content_type="application/json"))
        # the map's own layers still come
        with page.expect_response(lambda r: "/map/layers/" in r.url and r.ok):
            page.goto(f"{server}/map?lang={lang}", wait_until="load")
        notice = page.locator(".sg-basemap-notice")
        notice.wait_for(state="visible", timeout=15000)
        assert words in notice.text_content()
        page.screenshot(path=str(OUTPUT / f"basemap_offline_failed_{lang}.png"))
        assert page.errors == []


@pytest.fixture(scope="module")
def unreachable_server(db_url, demo_small, tmp_path_factory):
    """A server whose SAFEGRID_BASEMAPS names a tile source nobody answers for."""
    basemaps = [{"name": "内网影像", "url": UNREACHABLE, "attribution": "test",
                 "crs": "wgs84"},
                {"name": "高德底图", "url": UNREACHABLE, "attribution": "test",
                 "crs": "gcj02"}]
    server = Server(db_url, tmp_path_factory.mktemp("basemaps") / "serve.log",
                    {"SAFEGRID_BASEMAPS": json.dumps(basemaps)})
    yield server.url
    server.stop()


@pytest.mark.browser
@pytest.mark.parametrize("lang, words", [("zh", "无法加载"), ("en", "cannot be loaded")])
def test_a_basemap_that_fails_says_so_on_the_map(unreachable_server, lang, words):
    with logged_in(unreachable_server, "police", f"/map?lang={lang}") as page:
        remote = page.locator(".leaflet-control-layers-base label", has_text="内网影像")
        assert not remote.locator("input").is_checked()
        assert page.locator(".sg-basemap-notice:visible").count() == 0
        remote.click()
        notice = page.locator(".sg-basemap-notice")
        notice.wait_for(state="visible", timeout=15000)
        assert words in notice.text_content() and "内网影像" in notice.text_content()
        page.screenshot(path=str(OUTPUT / f"basemap_failed_{lang}.png"))
        page.locator(".leaflet-control-layers-base label", has_text="line" if lang == "en"
                     else "离线底图").click()
        notice.wait_for(state="hidden", timeout=5000)
        assert page.errors == []


@pytest.mark.browser
def test_the_analysis_page_offers_the_basemaps_too(unreachable_server):
    path = "/map/analysis?jurisdiction=430100"
    with logged_in(unreachable_server, "police", path) as page:
        offline = page.locator(".leaflet-control-layers-base label", has_text="离线底图")
        assert offline.locator("input").is_checked()
        wait_for(page, f"({ROAD_PIXELS})({json.dumps(ROAD_COLOURS)}) > 500")
        page.locator(".leaflet-control-layers-base label", has_text="内网影像").click()
        notice = page.locator(".sg-basemap-notice")
        notice.wait_for(state="visible", timeout=15000)
        page.screenshot(path=str(OUTPUT / "basemap_failed_analysis.png"))
        assert page.errors == []


TILE_POSITIONS = """() => Object.fromEntries(
  [...document.querySelectorAll('.leaflet-tile-pane img.leaflet-tile')]
    .map(img => [img.src, [img._leaflet_pos.x, img._leaflet_pos.y]]))"""


def _pixel(lon: float, lat: float, z: int) -> np.ndarray:
    """Web Mercator pixel coordinates at zoom ``z`` (256-pixel tiles)."""
    n = 256 * 2**z
    return np.array([(lon + 180) / 360 * n,
                     (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n])


def _shift(src: str) -> np.ndarray:
    """Pixels a GCJ-02 tile must move to lie under WGS 84 features: at the tile's centre."""
    z, x, y = (int(v) for v in src.rsplit(".", 1)[0].split("/")[-3:])
    lon0, lat0, lon1, lat1 = tile_bounds(x, y, z)
    lon, lat = (lon0 + lon1) / 2, (lat0 + lat1) / 2
    glon, glat = wgs84_to_gcj02(np.array(lon), np.array(lat))
    return _pixel(lon, lat, z) - _pixel(float(glon), float(glat), z)


@pytest.mark.browser
def test_a_gcj02_basemap_is_shown_shifted_onto_the_features(unreachable_server):
    with logged_in(unreachable_server, "police", "/map") as page:
        points = [(112.94, 28.23), (113.13, 27.83), (87.6, 43.8), (2.35, 48.85)]
        offsets = np.array(page.evaluate(
            "pts => pts.map(p => safegridBasemap.gcj02Offset(p[0], p[1]))", points))
        lon, lat = np.array(points).T
        glon, glat = wgs84_to_gcj02(lon, lat)
        np.testing.assert_allclose(offsets, np.c_[glon - lon, glat - lat], atol=1e-12)
        positions = {}
        for name in ("内网影像", "高德底图"):
            page.locator(".leaflet-control-layers-base label", has_text=name).click()
            page.locator(".sg-basemap-notice").wait_for(state="visible", timeout=15000)
            positions[name] = wait_for(page, f"({TILE_POSITIONS})()")
        wgs, gcj = positions["内网影像"], positions["高德底图"]
        assert set(wgs) == set(gcj) and len(wgs) >= 4
        for src in wgs:
            moved = np.array(gcj[src]) - np.array(wgs[src])
            assert np.abs(moved - _shift(src)).max() <= 1, (src, moved, _shift(src))
            assert np.hypot(*moved) > 20  # some hundred metres at city zooms
        assert page.errors == []
