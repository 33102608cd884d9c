"""POST /api/grids/generate over HTTP: grids that tile each community, stored."""

import numpy as np
import pytest
import shapely
from sqlalchemy import text

from .gridhelp import same_as_served

pytestmark = pytest.mark.db

DISTRICT = "430102"


def _grids(db):
    with db.connect() as conn:
        return conn.execute(text(
            "SELECT id, code, version FROM grids ORDER BY id")).all(), conn.execute(
            text("SELECT count(*) FROM audit")).scalar_one()


@pytest.fixture
def keep_district(keep_grids):
    """Put the district's grids and units back afterwards (other tests read them)."""
    keep_grids(DISTRICT)


def test_generate_refuses_to_overwrite_then_replaces(api, db, keep_district):
    before = _grids(db)
    r = api("planner", "/api/grids/generate", method="POST",
            json={"jurisdiction": DISTRICT, "target_households": 120})
    assert r.status_code == 409 and "replace: true" in r.json()["error"]
    assert _grids(db) == before
    r = api("planner", "/api/grids/generate", method="POST",
            json={"jurisdiction": DISTRICT, "target_households": 120, "replace": True})
    assert r.status_code == 201, r.text
    features = r.json()["features"]
    assert features and all(f["geometry"]["type"] == "Polygon" for f in features)
    with db.connect() as conn:
        communities = conn.execute(text(
            "SELECT code, ST_AsBinary(geom) FROM jurisdictions WHERE parent_code LIKE :d "
            "AND level = 'community'"), {"d": DISTRICT + "%"}).all()
        for code, wkb in communities:
            area = shapely.from_wkb(bytes(wkb))
            grids = [shapely.from_wkb(bytes(g[0])) for g in conn.execute(text(
                "SELECT ST_AsBinary(geom) FROM grids WHERE jurisdiction_code = :c"),
                {"c": code})]
            assert grids, code
            assert shapely.coverage_is_valid(np.array(grids, dtype=object)), code
            # the grids of the community tile it: no gap, no overlap (checked in shapely)
            union = shapely.union_all(grids)
            assert same_as_served(union, area)
            overlap = sum(g.area for g in grids) - union.area
            assert overlap < 1e-9 * area.area
        # stored household counts equal a brute-force count
        rows = conn.execute(text("""
            SELECT g.households, (SELECT count(*) FROM households h
                                  WHERE ST_Intersects(g.geom, h.geom))
            FROM grids g WHERE g.jurisdiction_code LIKE :d"""), {"d": DISTRICT + "%"}).all()
        assert all(stored == actual for stored, actual in rows)
        total = conn.execute(text(
            "SELECT count(*) FROM households WHERE jurisdiction_code LIKE :d"),
            {"d": DISTRICT + "%"}).scalar_one()
    assert sum(r[0] for r in rows) == total
    # dedicated grids kept their shapes and took the new corners on their edges
    report = api("planner", f"/api/grids/validate?jurisdiction={DISTRICT}").json()
    assert report["valid"], report["problems"]["features"][:3]
    heavy = [r[0] for r in rows if r[0] > 0]
    assert np.mean(heavy) == pytest.approx(120, rel=0.6)


def test_validate_reports_a_clean_district_and_a_broken_one(api, db, keep_district):
    clean = api("planner", "/api/grids/validate", params={"jurisdiction": DISTRICT})
    assert clean.status_code == 200, clean.text
    assert clean.json() == {"valid": True, "problems": {"type": "FeatureCollection",
                                                        "features": []}}
    with db.begin() as conn:  # break it behind the API's back: shrink one grid by 10 m
        victim = conn.execute(text(
            "SELECT code FROM grids WHERE jurisdiction_code LIKE :d AND kind = "
            "'comprehensive' ORDER BY id LIMIT 1"), {"d": DISTRICT + "%"}).scalar_one()
        conn.execute(text(
            "UPDATE grids SET geom = ST_Buffer(geom::geography, -10)::geometry "
            "WHERE code = :c"), {"c": victim})
    report = api("planner", "/api/grids/validate", params={"jurisdiction": DISTRICT}).json()
    assert report["valid"] is False
    kinds = {f["properties"]["kind"] for f in report["problems"]["features"]}
    assert "gap" in kinds
    gaps = [f for f in report["problems"]["features"] if f["properties"]["kind"] == "gap"]
    assert all(f["properties"]["area_m2"] > 0 for f in gaps)


def test_history_lists_every_version(api, db):
    with db.connect() as conn:
        grid_id, code = conn.execute(text(
            "SELECT id, code FROM grids WHERE jurisdiction_code LIKE '4301%' "
            "AND kind = 'comprehensive' ORDER BY id DESC LIMIT 1")).one()
    item = f"/collections/grids/items/{grid_id}"
    first = api("planner", f"/api/grids/{grid_id}/history").json()["versions"]
    assert [v["version"] for v in first] == [1]
    etag = api("planner", item).headers["ETag"]
    renamed = api("planner", item, method="PATCH", data='{"properties": {"name": "改名网格"}}',
                  headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"})
    assert renamed.status_code == 200, renamed.text
    versions = api("planner", f"/api/grids/{grid_id}/history").json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["updated_by"] == "planner"
    assert versions[0]["geometry"]["type"] == "Polygon"
    assert shapely.geometry.shape(versions[0]["geometry"]).equals(
        shapely.geometry.shape(versions[1]["geometry"]))
    assert api("planner", "/api/grids/999999999/history").status_code == 404
    with db.connect() as conn:
        other = conn.execute(text(
            "SELECT id FROM grids WHERE jurisdiction_code LIKE '4302%' LIMIT 1")).scalar_one()
    assert api("planner", f"/api/grids/{other}/history").status_code == 404  # out of scope
    assert api("planner", f"/api/grids/{grid_id}/history", params={"x": 1}).status_code == 400


def test_generation_keeps_dedicated_grids_and_nodes_their_edges(api, db, keep_district):
    with db.connect() as conn:
        code, x, y = conn.execute(text(
            "SELECT j.code, ST_X(ST_PointOnSurface(j.geom)), ST_Y(ST_PointOnSurface(j.geom)) "
            "FROM jurisdictions j WHERE j.level = 'community' AND j.code LIKE :d "
            "ORDER BY j.code LIMIT 1"), {"d": DISTRICT + "%"}).one()
    school = shapely.Point(x, y).buffer(0.0015, 2)  # an octagon of ~300 m across
    r = api("planner", "/collections/grids/items", method="POST", json={
        "type": "Feature", "geometry": shapely.geometry.mapping(school),
        "properties": {"code": code + "Z99", "name": "学校专属网格", "kind": "dedicated"}})
    assert r.status_code == 201, r.text
    dedicated = r.json()["id"]
    r = api("planner", "/api/grids/generate", method="POST",
            json={"jurisdiction": code, "target_households": 40, "replace": True})
    assert r.status_code == 201, r.text
    assert dedicated not in {f["id"] for f in r.json()["features"]}
    with db.connect() as conn:
        kept = shapely.from_wkb(bytes(conn.execute(text(
            "SELECT ST_AsBinary(geom) FROM grids WHERE id = :i"), {"i": dedicated}).scalar_one()))
    assert same_as_served(kept, school.intersection(kept))  # same place
    report = api("planner", f"/api/grids/validate?jurisdiction={code}").json()
    assert report["valid"], report["problems"]["features"][:3]
