"""Coverage endpoints over HTTP on the small demo: ratios against brute-force line of
sight on the stored cameras and buildings, gaps, siting confirmed by recomputation,
what-if, saved runs, and the bad-parameter corpus (which writes nothing)."""

import json

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from geo.crs import metric_crs
from tests.geo.test_coverage import lattice_in, seen_by_line_of_sight

pytestmark = pytest.mark.db

AREA = "430102"


def _metric(db, code=AREA):
    with db.connect() as conn:
        lon, lat = conn.execute(text("SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) "
                                     "FROM jurisdictions WHERE code = :c"), {"c": code}).one()
    crs = metric_crs(lon, lat)
    forward = Transformer.from_crs(4326, crs, always_xy=True)
    return lambda g: shapely.transform(g, lambda c: np.column_stack(
        forward.transform(c[:, 0], c[:, 1])))


def _cameras_and_buildings(db, to_m):
    with db.connect() as conn:
        cams = conn.execute(text(
            "SELECT ST_AsText(geom), bearing, fov, range_m FROM cameras "
            "WHERE status = 'online'")).all()
        blocks = conn.execute(text("SELECT ST_AsText(geom) FROM buildings")).scalars().all()
    points = to_m(np.array([shapely.from_wkt(c[0]) for c in cams], dtype=object))
    cams = [(p.x, p.y, c[1], c[2], c[3]) for p, c in zip(points, cams, strict=True)]
    return cams, to_m(np.array([shapely.from_wkt(b) for b in blocks], dtype=object))


def test_key_area_and_road_ratios_match_line_of_sight(api, db):
    to_m = _metric(db)
    cams, blocks = _cameras_and_buildings(db, to_m)
    r = api("police", f"/api/coverage?jurisdiction={AREA}&target=key_areas")
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    partial = [f for f in body["features"] if 0.02 < (f["properties"]["covered_ratio"] or 0)
               < 0.98]
    assert partial, "the demo should have partly watched key areas"
    for feature in partial[:4]:
        shape = to_m(shapely.geometry.shape(feature["geometry"]))
        pts = lattice_in(shape, max(1.0, (shape.area / 6000) ** 0.5))
        brute = seen_by_line_of_sight(cams, blocks, pts).mean()
        assert abs(feature["properties"]["covered_ratio"] - brute) < 0.01, feature["properties"]
    total = sum(f["properties"]["area_m2"] for f in body["features"])
    covered = sum(f["properties"]["covered_m2"] for f in body["features"])
    assert body["summary"]["covered_ratio"] == pytest.approx(covered / total, abs=1e-4)

    roads = api("police", f"/api/coverage?jurisdiction={AREA}&target=roads").json()
    partial = [f for f in roads["features"] if 0.02 < (f["properties"]["covered_ratio"] or 0)
               < 0.98]
    assert partial
    for feature in partial[:4]:
        line = to_m(shapely.geometry.shape(feature["geometry"]))
        pts = shapely.get_coordinates(shapely.line_interpolate_point(
            line, np.linspace(0, line.length, 4000)))
        brute = seen_by_line_of_sight(cams, blocks, pts).mean()
        assert abs(feature["properties"]["covered_ratio"] - brute) < 0.01, feature["properties"]


def test_grids_report_area_and_road_shares_and_school_zones_are_buffers(api, db):
    grids = api("viewer", f"/api/coverage?jurisdiction={AREA}&target=grids").json()
    with db.connect() as conn:
        expected = conn.execute(text(
            "SELECT count(*) FROM grids WHERE jurisdiction_code LIKE :c"),
            {"c": AREA + "%"}).scalar_one()
    assert len(grids["features"]) == expected > 0
    with_roads = [f["properties"] for f in grids["features"]
                  if f["properties"]["road_length_m"] > 0]
    assert with_roads and all(0 <= p["road_covered_ratio"] <= 1 for p in with_roads)
    assert grids["summary"]["road_covered_ratio"] is not None
    near = api("viewer", f"/api/coverage?jurisdiction={AREA}&target=school_zones"
                         "&school_buffer=100").json()
    far = api("viewer", f"/api/coverage?jurisdiction={AREA}&target=school_zones").json()
    assert len(near["features"]) == len(far["features"]) > 0
    assert all(f["properties"]["category"] in ("school", "kindergarten")
               for f in far["features"])
    assert far["summary"]["total"] > near["summary"]["total"]


def test_gaps_are_unwatched_ranked_by_risk_and_count_their_incidents(api, db):
    r = api("police", f"/api/coverage/gaps?jurisdiction={AREA}&target=key_areas")
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    risks = [f["properties"]["risk"] for f in body["features"]]
    assert risks == sorted(risks, reverse=True) and all(x > 0 for x in risks)
    views = api("police", f"/api/coverage/views?jurisdiction={AREA}").json()
    watched = shapely.union_all([shapely.geometry.shape(f["geometry"])
                                 for f in views["features"] if f["properties"]["watching"]])
    to_m = _metric(db)
    for feature in body["features"][:10]:
        gap = shapely.geometry.shape(feature["geometry"])
        # rounding only: both are served with 7 decimals (about 1 cm), so what they share
        # is a strip along their common edges (where a view reaches between two shadows
        # in a wedge narrower than a few centimetres, the rounded wedge and the gap
        # beside it can cross), not a piece of area
        assert to_m(shapely.intersection(gap, watched)).buffer(-0.05).is_empty
        with db.connect() as conn:
            inside = conn.execute(text(
                "SELECT count(*) FROM incidents WHERE ST_Contains(ST_GeomFromText(:g, 4326), "
                "geom) AND occurred_at >= now() - interval '365 days'"),
                {"g": gap.wkt}).scalar_one()
        assert abs(inside - feature["properties"]["incidents"]) <= 1
    reopened = api("police", f"/api/coverage/runs/{body['run']}").json()
    assert reopened["summary"] == body["summary"]


def test_siting_gain_is_confirmed_by_what_if(api):
    r = api("police", "/api/coverage/siting", method="POST",
            json={"jurisdiction": AREA, "target": "key_areas", "k": 4})
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert len(body["features"]) == 4 and body["after"] > body["before"]
    props = [f["properties"] for f in body["features"]]
    assert all(p["gain"] > 0 and p["gain_m2"] > 0 and p["fov"] == 90 for p in props)
    assert [p["gain"] for p in props] == sorted((p["gain"] for p in props), reverse=True)
    add = [{"lon": f["geometry"]["coordinates"][0], "lat": f["geometry"]["coordinates"][1],
            "bearing": f["properties"]["bearing"], "fov": f["properties"]["fov"],
            "range_m": f["properties"]["range_m"]} for f in body["features"]]
    again = api("police", "/api/coverage/what-if", method="POST",
                json={"jurisdiction": AREA, "target": "key_areas", "add": add})
    assert again.status_code == 200, again.text[:300]
    what = again.json()
    assert what["before"] == pytest.approx(body["before"], abs=1e-4)
    assert what["after"] == pytest.approx(body["after"], abs=2e-4)
    gained = (what["summary"]["covered"] - what["summary"]["total"] * what["before"])
    claimed = sum(p["gain_m2"] for p in props)
    assert gained == pytest.approx(claimed, rel=0.15)  # 10 m demand sampling
    runs = api("police", f"/api/coverage/runs?jurisdiction={AREA}").json()["runs"]
    assert runs[0]["id"] == body["run"] and runs[0]["kind"] == "siting"


def test_switching_cameras_off_lowers_coverage_and_planned_ones_count_on_request(api, db):
    base = api("police", f"/api/coverage?jurisdiction={AREA}").json()
    views = api("police", f"/api/coverage/views?jurisdiction={AREA}").json()
    busiest = max((f for f in views["features"] if f["properties"]["watching"]),
                  key=lambda f: f["properties"]["area_m2"])
    code = busiest["properties"]["code"]
    off = api("police", "/api/coverage/what-if", method="POST",
              json={"jurisdiction": AREA, "off": [code]}).json()
    assert off["after"] <= off["before"] == base["summary"]["covered_ratio"]
    assert off["summary"]["cameras"]["watching"] == base["summary"]["cameras"]["watching"] - 1
    assert all("covered_ratio_before" in f["properties"] for f in off["features"])
    offline = [f for f in views["features"] if f["properties"]["status"] == "offline"]
    assert offline and all(not f["properties"]["watching"] for f in offline)
    # a planned camera watches only when planned=true is asked for
    with db.connect() as conn:
        area = shapely.from_wkt(conn.execute(text(
            "SELECT ST_AsText(geom) FROM jurisdictions WHERE code = :c"), {"c": AREA}).scalar())
    shape = shapely.geometry.shape
    inside = [f for f in base["features"]
              if area.contains(shape(f["geometry"]).representative_point())]
    least = min(inside, key=lambda f: f["properties"]["covered_ratio"])
    centre = shape(least["geometry"]).representative_point()
    camera = {"type": "Feature", "geometry": {"type": "Point",
                                              "coordinates": [centre.x, centre.y]},
              "properties": {"code": "PLAN-T-1", "bearing": 0, "fov": 360, "range_m": 40,
                             "status": "planned"}}
    created = api("police", "/collections/cameras/items", method="POST", json=camera)
    assert created.status_code == 201, created.text[:300]
    try:
        now = api("police", f"/api/coverage?jurisdiction={AREA}").json()
        planned = api("police", f"/api/coverage?jurisdiction={AREA}&planned=true").json()
        assert now["summary"]["covered"] == pytest.approx(base["summary"]["covered"])
        assert planned["summary"]["covered"] > now["summary"]["covered"]
        assert planned["summary"]["cameras"]["planned"] == 1
    finally:
        path = "/" + created.headers["Location"].split("/", 3)[3]
        api("police", path, method="DELETE", headers={"If-Match": '"1"'})


def test_a_what_if_can_answer_only_what_changed(api):
    """changes_only: the targets whose figures changed and the switched-off views; the
    rest is as with every camera on (the page holds that already)."""
    base = api("police", f"/api/coverage?jurisdiction={AREA}").json()
    views = api("police", f"/api/coverage/views?jurisdiction={AREA}").json()
    busiest = max((f for f in views["features"] if f["properties"]["watching"]),
                  key=lambda f: f["properties"]["area_m2"])["properties"]["code"]
    body = {"jurisdiction": AREA, "off": [busiest]}
    whole = api("police", "/api/coverage/what-if", method="POST", json=body)
    patch = api("police", "/api/coverage/what-if", method="POST",
                json={**body, "changes_only": True})
    assert patch.status_code == 200, patch.text[:300]
    assert patch.headers["Content-Encoding"] == "gzip"
    whole, patch = whole.json(), patch.json()
    assert patch["summary"] == whole["summary"] and patch["after"] == whole["after"]
    before = {f["id"]: f["properties"] for f in base["features"]}
    changed = {f["id"]: f["properties"] for f in whole["features"]
               if f["properties"]["covered_ratio"] != before[f["id"]]["covered_ratio"]}
    assert changed and {f["id"]: f["properties"] for f in patch["features"]} == changed
    assert len(patch["features"]) < len(whole["features"])
    assert len(json.dumps(patch)) < len(json.dumps(whole)) / 2
    [view] = patch["views"]["features"]
    assert view["properties"]["code"] == busiest and not view["properties"]["watching"]
    # the same view as asking for that camera alone with it off
    alone = api("police", f"/api/coverage/views?jurisdiction={AREA}&off={busiest}"
                          f"&codes={busiest}").json()
    assert alone["features"] == [view]
    # the page's views again, unchanged: revalidated by their ETag, no body
    tag = api("police", f"/api/coverage/views?jurisdiction={AREA}").headers["ETag"]
    again = api("police", f"/api/coverage/views?jurisdiction={AREA}",
                headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    both = api("police", f"/api/coverage/views?jurisdiction={AREA}&codes={busiest},NOPE")
    assert [f["properties"] for f in both.json()["features"]] == \
        [f["properties"] for f in views["features"] if f["properties"]["code"] == busiest]


CAMERA = {"code": "T-CAM-BAD", "bearing": 10, "fov": 70, "range_m": 90, "status": "online"}


@pytest.mark.parametrize("bad", [{"bearing": 360}, {"bearing": -1}, {"fov": 0}, {"fov": 361},
                                 {"range_m": 0}, {"range_m": -5}, {"range_m": 1001},
                                 {"range_m": "far"}, {"status": "broken"}, {"bearing": None}])
def test_bad_camera_fields_are_refused_at_write(api, db, bad):
    with db.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM cameras")).scalar_one()
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [112.985, 28.03]},
               "properties": {**CAMERA, **bad}}
    r = api("police", "/collections/cameras/items", method="POST", json=feature)
    assert r.status_code == 422, r.text[:300]
    name = next(iter(bad))
    assert name in json.dumps(r.json(), ensure_ascii=False)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cameras")).scalar_one() == count
