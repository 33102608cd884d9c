"""POST /api/grids/generate over HTTP: grids that tile each community, stored."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from geo.grids import coefficient_of_variation

from .gridhelp import COMMUNITY, same_as_served

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
    assert (r.json()["weight"], r.json()["target"]) == ("households", 120)
    assert r.json()["note"].startswith("未指定权重：该辖区有住户数据，按住户数划分")
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


# --- weights other than households (buildings, population, area) ---------------------

UTM = 32649  # the demo's metric CRS (WGS 84 / UTM 49N), independent of the server's maths
EMPTY = "430103001001"  # a community with neither households nor buildings
BARE = "430102002001"  # a community with no households: the tests give it buildings


def _generated(db, ids):
    """The generated grids as a GeoDataFrame (EPSG:4326), read back from the database."""
    with db.connect() as conn:
        return gpd.read_postgis(text(
            "SELECT id, jurisdiction_code, population, geom FROM grids WHERE id = ANY(:i) "
            "ORDER BY id"), conn, params={"i": ids}, geom_col="geom")


def _buildings(db, code):
    """Buildings whose representative point is in community ``code``, with their floor
    area computed here: footprint in UTM m² times max(1, round half up(height / 3))."""
    with db.connect() as conn:
        area = shapely.from_wkb(bytes(conn.execute(text(
            "SELECT ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"),
            {"c": code}).scalar_one()))
        found = gpd.read_postgis(text("SELECT id, height_m, geom FROM buildings"), conn,
                                 geom_col="geom")
    points = found.representative_point()
    found = found[points.within(area)].copy()
    floors = np.where(found.height_m.isna(), 1,
                      np.maximum(1, np.floor(found.height_m.fillna(0) / 3 + 0.5)))
    found["floor_area"] = found.to_crs(UTM).area * floors
    return found


def _per_grid(grids, points, column):
    """Sum of ``column`` of ``points`` (placed at their representative points) per grid,
    by a geopandas spatial join."""
    spots = gpd.GeoDataFrame(points[[column]], geometry=points.representative_point(),
                             crs=4326)
    joined = gpd.sjoin(spots, grids[["id", "geom"]], predicate="within")
    return joined.groupby("id")[column].sum().reindex(grids.id, fill_value=0)


def _balanced(grids, sums, tolerance=0.10):
    """Every community split into several grids has a CV of ``sums`` within tolerance."""
    cvs = {}
    for code, ids in grids.groupby("jurisdiction_code").id:
        values = sums.loc[ids.values].to_numpy()
        if len(values) > 1:
            cvs[code] = coefficient_of_variation(values)
    assert cvs and max(cvs.values()) <= tolerance, cvs
    return cvs


def _tiles(db, ids):
    """Each community's generated grids form a valid coverage equal to the community."""
    grids = _generated(db, ids)
    with db.connect() as conn:
        for code, geoms in grids.groupby("jurisdiction_code").geom:
            area = shapely.from_wkb(bytes(conn.execute(text(
                "SELECT ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"),
                {"c": code}).scalar_one()))
            assert shapely.coverage_is_valid(geoms.values), code
            union = shapely.union_all(geoms.values)
            assert same_as_served(union, area), code
            assert sum(g.area for g in geoms.values) - union.area < 1e-9 * area.area
    return grids


def test_generate_by_buildings_balances_floor_area(api, db, keep_district):
    r = api("planner", "/api/grids/generate", method="POST",
            json={"jurisdiction": DISTRICT, "weight": "buildings",
                  "target_floor_area_m2": 8000, "replace": True})
    assert r.status_code == 201, r.text
    answer = r.json()
    assert (answer["weight"], answer["target"]) == ("buildings", 8000)
    assert answer["note"].startswith("按建筑面积") and "8000平方米" in answer["note"]
    grids = _tiles(db, [f["id"] for f in answer["features"]])
    stock = [_buildings(db, code) for code in grids.jurisdiction_code.unique()]
    sums = _per_grid(grids, pd.concat(stock), "floor_area")
    _balanced(grids, sums)
    # every building weighs in exactly one grid
    assert sums.sum() == pytest.approx(sum(s.floor_area.sum() for s in stock), rel=1e-9)
    for code, ids in grids.groupby("jurisdiction_code").id:
        total = sums.loc[ids.values].sum()
        assert len(ids) == max(1, round(total / 8000)), code  # within the area's rounding


def test_generate_by_population_balances_persons(api, db, keep_district):
    r = api("planner", "/api/grids/generate", method="POST",
            json={"jurisdiction": DISTRICT, "weight": "population", "target_persons": 150,
                  "replace": True})
    assert r.status_code == 201, r.text
    assert r.json()["weight"] == "population" and "150人" in r.json()["note"]
    grids = _tiles(db, [f["id"] for f in r.json()["features"]])
    with db.connect() as conn:
        homes = gpd.read_postgis(text("SELECT persons, geom FROM households"), conn,
                                 geom_col="geom")
    sums = _per_grid(grids, homes, "persons")
    _balanced(grids, sums)
    assert (sums.to_numpy() == grids.population.to_numpy()).all()  # the stored count agrees


def test_generate_by_area_in_english(api, db, keep_district):
    r = api("planner", "/api/grids/generate?lang=en", method="POST",
            json={"jurisdiction": DISTRICT, "weight": "area", "target_area_m2": 500_000,
                  "replace": True})
    assert r.status_code == 201, r.text
    assert r.json()["weight"] == "area"
    assert r.json()["note"] == "Planned by area, about 500000 m² per grid"
    grids = _tiles(db, [f["id"] for f in r.json()["features"]])
    areas = pd.Series(grids.to_crs(UTM).area.to_numpy(), index=grids.id)
    _balanced(grids, areas, 0.05)
    for code, ids in grids.groupby("jurisdiction_code").id:
        assert len(ids) == max(1, round(areas.loc[ids.values].sum() / 500_000)), code


@pytest.fixture
def bare_with_buildings(api, db, keep_grids):
    """30 buildings (three floor counts, one of unknown height) in a community without
    households; removed afterwards."""
    keep_grids(BARE)
    with db.connect() as conn:
        x, y = conn.execute(text(
            "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
            "FROM jurisdictions WHERE code = :c"), {"c": BARE}).one()
    ids = []
    heights = [4.4, 7.6, 12.0, None, 7.5]  # 1, 3, 4, 1, 3 floors (7.5 / 3 = 2.5 rounds up)
    try:
        for i in range(30):
            cx, cy = x + (i % 6 - 2.5) * 0.0007, y + (i // 6 - 2) * 0.0006
            box = shapely.box(cx - 0.00012, cy - 0.00005, cx + 0.00012, cy + 0.00005)
            r = api("admin", "/collections/buildings/items", method="POST", json={
                "type": "Feature", "geometry": shapely.geometry.mapping(box),
                "properties": {"height_m": heights[i % 5]}})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        yield ids
    finally:
        with db.begin() as conn:
            conn.execute(text("DELETE FROM buildings WHERE id = ANY(:i)"), {"i": ids})


def test_without_households_grids_follow_buildings(api, db, bare_with_buildings):
    stock = _buildings(db, BARE)
    assert sorted(stock.id) == sorted(bare_with_buildings)
    floors = (stock.floor_area / stock.to_crs(UTM).area).round().astype(int)
    assert sorted(set(floors)) == [1, 3, 4]
    target = round(stock.floor_area.sum() / 3)
    r = api("planner", "/api/grids/generate", method="POST",
            json={"jurisdiction": BARE, "target_households": 100,
                  "target_floor_area_m2": target, "replace": True})
    assert r.status_code == 201, r.text
    answer = r.json()
    assert (answer["weight"], answer["target"]) == ("buildings", target)
    assert answer["note"].startswith("未指定权重：该辖区没有住户数据，按建筑面积")
    grids = _tiles(db, [f["id"] for f in answer["features"]])
    assert len(grids) == 3
    sums = _per_grid(grids, stock, "floor_area")
    assert sums.sum() == pytest.approx(stock.floor_area.sum(), rel=1e-9)
    _balanced(grids, sums, 0.15)


def test_without_households_or_buildings_grids_follow_area(api, db, keep_grids):
    keep_grids(EMPTY)
    r = api("planner", "/api/grids/generate?lang=en", method="POST",
            json={"jurisdiction": EMPTY, "target_households": 100,
                  "target_area_m2": 1_000_000})
    assert r.status_code == 201, r.text
    answer = r.json()
    assert (answer["weight"], answer["target"]) == ("area", 1_000_000)
    assert answer["note"] == ("No weight given: the jurisdiction has neither households nor "
                              "buildings, so planned by area, about 1000000 m² per grid")
    grids = _tiles(db, [f["id"] for f in answer["features"]])
    areas = grids.to_crs(UTM).area
    assert len(grids) == round(areas.sum() / 1_000_000)
    assert coefficient_of_variation(areas.to_numpy()) <= 0.05


def test_the_default_weight_is_households_and_says_so(api, db, keep_grids):
    keep_grids(COMMUNITY)
    r = api("planner", "/api/grids/generate", method="POST",
            json={"jurisdiction": COMMUNITY, "target_households": 40,
                  "target_area_m2": 1_000_000, "replace": True})
    assert r.status_code == 201, r.text
    assert (r.json()["weight"], r.json()["target"]) == ("households", 40)
    assert r.json()["note"] == "未指定权重：该辖区有住户数据，按住户数划分，每个网格约40户"


REFUSED = [
    ({"jurisdiction": DISTRICT, "weight": "floors", "target_households": 100}, 400,
     "weight 'floors' is not one of households, population, buildings, area"),
    ({"jurisdiction": DISTRICT, "weight": 3, "target_households": 100}, 400,
     "weight must be a str"),
    ({"jurisdiction": DISTRICT, "replace": True}, 400, "send a target: target_households"),
    ({"jurisdiction": DISTRICT, "weight": "buildings", "target_households": 100}, 400,
     "weight buildings needs target_floor_area_m2"),
    ({"jurisdiction": DISTRICT, "weight": "area", "target_area_m2": 1e6,
      "target_floor_area_m2": 9000}, 400, "target_floor_area_m2 does not go with weight area"),
    ({"jurisdiction": DISTRICT, "weight": "buildings", "target_floor_area_m2": 10}, 422,
     "target_floor_area_m2 must be a number in 1000-1000000 (m² of floor area per grid)"),
    ({"jurisdiction": DISTRICT, "weight": "area", "target_area_m2": 2e8}, 422,
     "target_area_m2 must be a number in 10000-100000000"),
    ({"jurisdiction": DISTRICT, "weight": "population", "target_persons": 150.5}, 400,
     "target_persons must be a int"),
    ({"jurisdiction": DISTRICT, "weight": "population", "target_persons": 10}, 422,
     "target_persons must be a whole number in 50-15000"),
    ({"jurisdiction": DISTRICT, "target_area_m2": "big"}, 400,
     "target_area_m2 must be a int or float"),
    ({"jurisdiction": EMPTY, "weight": "households", "target_households": 100,
      "replace": True}, 422, "jurisdiction 430103001001 has no households"),
    ({"jurisdiction": EMPTY, "weight": "population", "target_persons": 100,
      "replace": True}, 422, "has no households"),
    ({"jurisdiction": EMPTY, "weight": "buildings", "target_floor_area_m2": 9000,
      "replace": True}, 422, "jurisdiction 430103001001 has no buildings"),
    ({"jurisdiction": EMPTY, "target_households": 100, "replace": True}, 422,
     "neither households nor buildings, so its grids follow area: send target_area_m2"),
    ({"jurisdiction": DISTRICT, "target_floor_area_m2": 9000, "replace": True}, 422,
     "has households, so its grids follow households: send target_households"),
]


@pytest.mark.parametrize(("body", "status", "words"), REFUSED)
def test_bad_weights_and_targets_write_nothing(api, db, body, status, words):
    before = _grids(db)
    r = api("planner", "/api/grids/generate", method="POST", json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]
    assert _grids(db) == before


def test_a_nan_target_or_unknown_language_writes_nothing(api, db):
    before = _grids(db)
    r = api("planner", "/api/grids/generate", method="POST",
            data='{"jurisdiction": "430102", "weight": "area", "target_area_m2": NaN}',
            headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "got nan" in r.json()["error"], r.text
    r = api("planner", "/api/grids/generate?lang=fr", method="POST",
            json={"jurisdiction": DISTRICT, "target_households": 100})
    assert r.status_code == 400 and "lang must be zh or en" in r.json()["error"]
    r = api("planner", "/api/grids/generate?target=5", method="POST",
            json={"jurisdiction": DISTRICT, "target_households": 100})
    assert r.status_code == 400 and "unknown parameter" in r.json()["error"]
    assert _grids(db) == before
