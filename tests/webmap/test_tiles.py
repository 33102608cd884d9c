"""Vector tiles over HTTP: decoded by mapbox-vector-tile and by GDAL, in scope, revalidated."""

import json
import subprocess

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from layers import LAYERS

from .tilemath import tile_bounds, tile_of

pytestmark = pytest.mark.db

Z = 13






def _city_point(db, layer, prefix):
    with db.connect() as conn:
        return conn.execute(text(
            f"SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
            f"FROM \"{layer}\" WHERE jurisdiction_code LIKE :p ORDER BY id LIMIT 1"),
            {"p": prefix + "%"}).one()


@pytest.mark.parametrize("layer", [n for n in LAYERS if n != "jurisdictions"])
def test_every_layer_tile_decodes_with_the_features_of_the_tile(api, db, layer):
    x, y = tile_of(*_city_point(db, layer, "4301"), Z)
    r = api("admin", f"/tiles/{layer}/{Z}/{x}/{y}.mvt")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    decoded = mapbox_vector_tile.decode(r.content)
    ids = {f["id"] for f in decoded[layer]["features"]}
    lon0, lat0, lon1, lat1 = tile_bounds(x, y, Z)
    with db.connect() as conn:  # brute force: features intersecting the tile
        expected = {row[0] for row in conn.execute(text(
            f"SELECT id FROM \"{layer}\" WHERE ST_Intersects(geom, "
            f"ST_MakeEnvelope(:a, :b, :c, :d, 4326))"), {"a": lon0, "b": lat0, "c": lon1,
                                                      "d": lat1})}
    assert expected and expected <= ids  # the tile buffer may add near neighbours
    sample = decoded[layer]["features"][0]["properties"]  # (MVT leaves nulls out)
    declared = LAYERS[layer]
    assert set(sample) <= set(declared.field_names)
    assert {f.name for f in declared.input_fields if f.required} <= set(sample)


def test_gdal_reads_a_tile(api, db, tmp_path):
    x, y = tile_of(*_city_point(db, "cameras", "4301"), Z)
    data = api("admin", f"/tiles/cameras/{Z}/{x}/{y}.mvt").content
    path = tmp_path / str(Z) / str(x)
    path.mkdir(parents=True)
    (path / f"{y}.pbf").write_bytes(data)
    out = subprocess.run(["ogrinfo", "-ro", "-al", "-so", str(path / f"{y}.pbf")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    count = int(out.stdout.split("Feature Count: ")[1].split()[0])
    assert count == len(mapbox_vector_tile.decode(data)["cameras"]["features"]) > 0


def test_tiles_honour_scope(api, db):
    x, y = tile_of(*_city_point(db, "grids", "4302"), Z)  # a Zhuzhou grid
    admin = mapbox_vector_tile.decode(api("admin", f"/tiles/grids/{Z}/{x}/{y}.mvt").content)
    planner = api("planner", f"/tiles/grids/{Z}/{x}/{y}.mvt")  # Changsha's planner
    assert admin["grids"]["features"]
    codes = [f["properties"]["jurisdiction_code"]
             for f in mapbox_vector_tile.decode(planner.content).get("grids", {"features": []})
             ["features"]]
    assert all(code.startswith("4301") for code in codes)
    assert api("viewer", f"/tiles/incidents/{Z}/{x}/{y}.mvt").status_code == 403
    assert api(None, f"/tiles/grids/{Z}/{x}/{y}.mvt").status_code == 401


def test_an_edit_is_visible_on_the_next_load(api, db):
    lon, lat = _city_point(db, "cameras", "4301")
    x, y = tile_of(lon, lat, Z)
    first = api("police", f"/tiles/cameras/{Z}/{x}/{y}.mvt")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache"
    same = api("police", f"/tiles/cameras/{Z}/{x}/{y}.mvt", headers={"If-None-Match": etag})
    assert same.status_code == 304
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
               "properties": {"code": "TILE-1", "bearing": 0, "fov": 90, "range_m": 50,
                              "status": "online"}}
    created = api("police", "/collections/cameras/items", method="POST",
                  data=json.dumps(feature), headers={"Content-Type": "application/geo+json"})
    assert created.status_code == 201
    after = api("police", f"/tiles/cameras/{Z}/{x}/{y}.mvt", headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["ETag"] != etag
    codes = [f["properties"]["code"]
             for f in mapbox_vector_tile.decode(after.content)["cameras"]["features"]]
    assert "TILE-1" in codes
    api("police", "/" + created.headers["Location"].split("/", 3)[3], method="DELETE")


# --- the overview map's layers for the view: /map/layers/{source} -----------------------

CITY = "430100"


def _overview(api, user, source, bbox, zoom=12, **kw):
    return api(user, f"/map/layers/{source}", params={
        "city": CITY, "bbox": ",".join(map(str, bbox)), "zoom": zoom}, **kw)


def test_overview_layers_hold_the_features_of_the_city_in_the_box(api, db):
    with db.connect() as conn:
        w, s, e, n = conn.execute(text(
            "SELECT ST_XMin(g), ST_YMin(g), ST_XMax(g), ST_YMax(g) FROM (SELECT "
            "ST_Envelope(geom) AS g FROM jurisdictions WHERE code = :c) x"), {"c": CITY}).one()
        half = (w, s, (w + e) / 2, n)
        expected = set(conn.execute(text(
            "SELECT t.id FROM roads t, jurisdictions c WHERE c.code = :c "
            "AND ST_Intersects(t.geom, c.geom) AND t.geom && ST_MakeEnvelope(:w, :s, :e, :n, "
            "4326)"), {"c": CITY, "w": half[0], "s": half[1], "e": half[2], "n": half[3]}
        ).scalars())
        everywhere = conn.execute(text(
            "SELECT count(*) FROM roads t, jurisdictions c WHERE c.code = :c "
            "AND ST_Intersects(t.geom, c.geom)"), {"c": CITY}).scalar_one()
    r = _overview(api, "admin", "roads", half, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"] == "application/geo+json"
    assert r.headers["Content-Encoding"] == "gzip"
    body = r.json()
    assert {f["id"] for f in body["features"]} == expected
    assert 0 < len(expected) < everywhere  # the box, not the whole city
    assert set(body["features"][0]["properties"]) == {"name", "class"}
    # asked again with its ETag: unchanged, so a 304 without a body
    again = _overview(api, "admin", "roads", half, headers={
        "Accept-Encoding": "gzip", "If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    assert r.headers["Cache-Control"] == "private, no-cache"
    # zoomed out, lines are simplified to half a pixel: fewer vertices, same features
    fine = _overview(api, "police", "roads", half, zoom=17).json()
    coarse = _overview(api, "police", "roads", half, zoom=9).json()
    vertices = lambda fc: sum(len(json.dumps(f["geometry"])) for f in fc["features"])  # noqa: E731
    assert {f["id"] for f in coarse["features"]} == {f["id"] for f in fine["features"]}
    assert vertices(coarse) < 0.8 * vertices(fine)


def test_overview_grids_carry_their_labels_and_layers_keep_to_the_scope(api, db):
    box = (-180, -90, 180, 90)
    grids = _overview(api, "viewer", "grids", box).json()["features"]
    assert grids and all(f["properties"]["code"].startswith("4301") for f in grids)
    for f in grids:
        p = f["properties"]
        assert "户" in p["_label"] and -90 <= p["_lat"] <= 90 and -180 <= p["_lng"] <= 180
    refused = _overview(api, "viewer", "heat", box)
    assert refused.status_code == 403 and "incidents" in refused.json()["error"]
    heat = _overview(api, "police", "heat", box).json()
    assert heat["points"] and max(p[2] for p in heat["points"]) == 1.0
    with db.connect() as conn:  # the key areas' categories are one source
        categories = set(conn.execute(text(
            "SELECT DISTINCT t.category FROM key_areas t, jurisdictions c WHERE c.code = :c "
            "AND ST_Intersects(t.geom, c.geom)"), {"c": CITY}).scalars())
    areas = _overview(api, "admin", "key_areas", box).json()["features"]
    assert {f["properties"]["category"] for f in areas} == categories


@pytest.mark.parametrize(("path", "message"), [
    ("/map/layers/households?city=430100&bbox=0,0,1,1", "unknown overview layer"),
    ("/map/layers/roads?bbox=0,0,1,1", "city is required"),
    ("/map/layers/roads?city=430100&bbox=1,1,0,0", "lower corner first"),
    ("/map/layers/roads?city=430100&bbox=a,b,c,d", "bbox must be"),
    ("/map/layers/roads?city=430100&bbox=0,0,1,1&zoom=99", "zoom must be"),
    ("/map/layers/roads?city=430100&bbox=0,0,1,1&colour=red", "unknown parameter"),
])
def test_overview_layers_refuse_bad_requests(api, path, message):
    r = api("police", path)
    assert r.status_code == 400 and message in r.json()["error"], r.text[:300]
