"""Hot-spot endpoints over HTTP on the small demo: counts against SQL, Gi* against esda
on the returned cells, what each role sees, saved runs, and the bad-parameter corpus."""

import numpy as np
import pytest
import shapely
from sqlalchemy import text

from geo.emerging import CATEGORIES

pytestmark = pytest.mark.db

CITY = "430100"
PERIOD = "from=2025-11-01&to=2026-10-31"


def test_gi_cells_count_the_incidents_and_score_like_esda(api, db):
    import esda
    import geopandas as gpd
    from libpysal.weights import W

    r = api("police", f"/api/hotspots?jurisdiction={CITY}&cell=400&{PERIOD}")
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert body["parameters"]["cell"] == 400 and not body["parameters"]["cell_chosen"]
    cells = gpd.GeoDataFrame.from_features(body["features"])
    assert len(cells) == body["summary"]["cells"]  # police see every cell
    # the busiest cells hold the city's incidents SQL finds in them (a point on a cell's
    # edge, give or take a millimetre, belongs to one of the two cells)
    with db.connect() as conn:
        for _, cell in cells.nlargest(5, "count").iterrows():
            inside, touching = conn.execute(text(
                "SELECT count(*) FILTER (WHERE ST_Contains(ST_Buffer(g, -1e-8), i.geom)), "
                "count(*) FILTER (WHERE ST_Intersects(ST_Buffer(g, 1e-8), i.geom)) "
                "FROM incidents i, ST_GeomFromText(:g, 4326) AS g, jurisdictions j "
                "WHERE j.code = :c AND ST_Intersects(j.geom, i.geom) "
                "AND occurred_at >= '2025-11-01T00:00:00+08:00' "
                "AND occurred_at < '2026-11-01T00:00:00+08:00'"),
                {"g": cell.geometry.wkt, "c": CITY}).one()
            assert inside <= cell["count"] <= touching and touching - inside <= 3
    # cells on the boundary are clipped to it; neighbours are those of the lattice
    # (rows and columns one apart), whatever the clipping left of them
    rc = list(zip(cells["row"], cells["col"], strict=True))
    at = {p: i for i, p in enumerate(rc)}
    w = W({i: [at[(r + dr, c + dc)] for dr in (-1, 0, 1) for dc in (-1, 0, 1)
               if (dr or dc) and (r + dr, c + dc) in at] for i, (r, c) in enumerate(rc)},
          silence_warnings=True)
    g = esda.G_Local(cells["count"].to_numpy(float), w, transform="B", star=True,
                     permutations=0)
    assert np.allclose(cells["z"], g.Zs, atol=1e-5)  # z is answered with 6 decimals
    assert body["summary"]["classes"].get("hot_99", 0) > 0
    # every incident of the city and period is in a cell, those by its boundary too
    with db.connect() as conn:
        total = conn.execute(text(
            "SELECT count(*) FROM incidents i, jurisdictions j WHERE j.code = :c "
            "AND ST_Intersects(j.geom, i.geom) AND occurred_at >= '2025-11-01T00:00:00+08:00' "
            "AND occurred_at < '2026-11-01T00:00:00+08:00'"), {"c": CITY}).scalar_one()
    assert cells["count"].sum() == body["parameters"]["incidents_in_cells"] == total
    # and the cells, clipped, cover the city exactly
    with db.connect() as conn:
        city = shapely.from_wkb(bytes(conn.execute(text(
            "SELECT ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"),
            {"c": CITY}).scalar_one()))
    assert shapely.union_all(cells.geometry.values).symmetric_difference(city).area < \
        1e-5 * city.area
    # each cell's incidents by category, and by month, add up to its count
    assert all(sum(f["properties"]["by_category"].values()) == f["properties"]["count"]
               for f in body["features"])
    assert body["months"][0] == "2025-11" and len(body["months"]) == 12
    assert all(sum(f["properties"]["monthly"]) == f["properties"]["count"]
               for f in body["features"])


@pytest.mark.parametrize("user", ["planner", "viewer"])
def test_aggregate_roles_get_no_cell_with_fewer_than_three_incidents(api, user):
    r = api(user, f"/api/hotspots?jurisdiction={CITY}&cell=400&{PERIOD}")
    assert r.status_code == 200, r.text[:300]
    counts = [f["properties"]["count"] for f in r.json()["features"]]
    assert counts and min(counts) >= 3
    police = api("police", f"/api/hotspots?jurisdiction={CITY}&cell=400&{PERIOD}").json()
    assert len(counts) == sum(f["properties"]["count"] >= 3 for f in police["features"])


def test_kde_and_count_methods(api):
    kde = api("police", f"/api/hotspots?jurisdiction={CITY}&method=kde&cell=300&{PERIOD}")
    assert kde.status_code == 200, kde.text[:300]
    params = kde.json()["parameters"]
    assert params["bandwidth"] > 0 and params["bandwidth_chosen"]
    assert all(f["properties"]["density"] > 0 for f in kde.json()["features"])
    count = api("police", f"/api/hotspots?jurisdiction={CITY}&method=count&cell=300&"
                          f"category=fraud&{PERIOD}")
    assert count.status_code == 200, count.text[:300]
    assert all(f["properties"]["count"] > 0 for f in count.json()["features"])


def test_the_cell_size_is_chosen_and_said_when_not_given(api):
    r = api("police", f"/api/hotspots?jurisdiction={CITY}&{PERIOD}")
    assert r.status_code == 200, r.text[:300]
    assert r.json()["parameters"]["cell_chosen"] and r.json()["parameters"]["cell"] > 1


def test_runs_are_saved_and_reopened(api):
    r = api("police", f"/api/hotspots?jurisdiction={CITY}&cell=500&{PERIOD}")
    run = r.json()["run"]
    listed = api("police", f"/api/hotspots/runs?jurisdiction={CITY}").json()["runs"]
    assert run in [x["id"] for x in listed]
    again = api("police", f"/api/hotspots/runs/{run}").json()
    assert again["features"] == r.json()["features"]
    viewer = api("viewer", f"/api/hotspots/runs/{run}").json()
    assert all(f["properties"]["count"] >= 3 for f in viewer["features"])
    assert api("police", "/api/hotspots/runs/999999").status_code == 404


def test_emerging_hot_spots_by_month(api):
    r = api("police", f"/api/hotspots/emerging?jurisdiction={CITY}&cell=500&step=month&"
                      f"{PERIOD}")
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert len(body["steps"]) == 12
    assert {f["properties"]["category"] for f in body["features"]} <= set(CATEGORIES)
    for f in body["features"]:
        assert len(f["properties"]["counts"]) == 12
        assert sum(f["properties"]["counts"]) == f["properties"]["count"]


def test_evaluation_trains_on_one_period_and_tests_on_the_next(api):
    r = api("police", f"/api/hotspots/evaluate?jurisdiction={CITY}&cell=400&method=gi&"
                      "train_from=2026-01-01&train_to=2026-06-30&test_from=2026-07-01&"
                      "test_to=2026-09-30")
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert 0 <= body["hit_rate"] <= 1 and body["pai"] >= 0 and 0 < body["pei"] <= 1 + 1e-9
    assert body["area_share"] == pytest.approx(0.05, abs=0.01)
    assert body["pai"] == pytest.approx(body["hit_rate"] / body["area_share"], rel=1e-4)


def test_another_jurisdiction_is_forbidden(api):
    r = api("viewer", f"/api/hotspots?jurisdiction=430200&cell=500&{PERIOD}")
    assert r.status_code == 403 and "outside your jurisdiction" in r.json()["error"]


def test_hot_cells_lie_in_the_jurisdiction(api, db):
    body = api("police", f"/api/hotspots?jurisdiction={CITY}&cell=400&{PERIOD}").json()
    with db.connect() as conn:
        city = shapely.from_wkb(bytes(conn.execute(text(
            "SELECT ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"),
            {"c": CITY}).scalar_one()))
    cells = [shapely.geometry.shape(f["geometry"]) for f in body["features"]]
    assert shapely.covers(city.buffer(1e-7), cells).all()  # clipped to it (7 decimals)


def test_safety_index_of_the_grids(api):
    from geo.safety import safety_scores

    r = api("planner", "/api/safety-index?jurisdiction=430102&to=2026-10-31")
    assert r.status_code == 200, r.text[:300]
    features = r.json()["features"]
    assert features
    props = [f["properties"] for f in features]
    assert all(0 <= p["score"] <= 100 and p["level"] in (1, 2, 3, 4, 5) for p in props)
    assert all(sum(p["monthly"]) == p["incidents_12m"] for p in props)
    # the answer follows the documented formula from the inputs it reports
    again = safety_scores([p["weighted_incidents"] for p in props],
                          [p["population"] for p in props], [p["trend_z"] for p in props],
                          [p["hot_share"] for p in props], [p["key_areas"] for p in props],
                          [p["key_areas"] / max(p["key_areas_per_km2"], 1e-9)
                           if p["key_areas"] else 1 for p in props],
                          [p["coverage"] for p in props])
    assert np.allclose(again["score"], [p["score"] for p in props], atol=0.06)
    # camera coverage is the grids' watched share from the coverage API
    grids = api("planner", "/api/coverage?jurisdiction=430102&target=grids").json()
    watched = {f["id"]: f["properties"]["covered_ratio"] for f in grids["features"]}
    assert any(p["coverage"] > 0 for p in props)
    assert all(p["coverage"] == pytest.approx(watched[f["id"]], abs=1e-4)
               for p, f in zip(props, features, strict=True))


def _filtered_count(db, code: str, start: str, end: str, hours: set[int],
                    weekdays: set[int]) -> int:
    """Incidents of ``code`` in [start, end) (local dates) at those local hours and ISO
    weekdays, read by SQL and filtered in pandas (Asia/Shanghai)."""
    import pandas as pd

    with db.connect() as conn:
        times = conn.execute(text(
            "SELECT i.occurred_at FROM incidents i, jurisdictions j WHERE j.code = :c "
            "AND ST_Intersects(j.geom, i.geom) AND i.occurred_at >= CAST(:a AS timestamptz) "
            "AND i.occurred_at < CAST(:b AS timestamptz)"),
            {"c": code, "a": f"{start}T00:00:00+08:00", "b": f"{end}T00:00:00+08:00"}
        ).scalars().all()
    local = pd.DatetimeIndex(pd.to_datetime(times, utc=True)).tz_convert("Asia/Shanghai")
    return int((local.hour.isin(hours) & (local.day_of_week + 1).isin(weekdays)).sum())


NIGHT = set(range(22, 24)) | set(range(0, 6))


def test_hours_and_weekdays_keep_only_the_incidents_at_those_times(api, db):
    community = "430102001001"
    base = f"jurisdiction={community}&cell=400&from=2025-11-01&to=2026-10-31"
    everything = api("police", f"/api/hotspots?{base}&method=count").json()
    r = api("police", f"/api/hotspots?{base}&method=count&hours=22-6&weekdays=1-5")
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    want = _filtered_count(db, community, "2025-11-01", "2026-11-01", NIGHT, {1, 2, 3, 4, 5})
    assert 0 < want < everything["parameters"]["incidents"]
    assert body["parameters"]["incidents"] == want
    assert sum(f["properties"]["count"] for f in body["features"]) == want
    assert body["parameters"]["hours"] == "22-6" and body["parameters"]["weekdays"] == "1-5"
    emerging = api("police", f"/api/hotspots/emerging?{base}&step=month&hours=22-6"
                             "&weekdays=1-5").json()
    assert sum(f["properties"]["count"] for f in emerging["features"]) == want
    weekend = _filtered_count(db, community, "2026-01-01", "2026-07-01", set(range(24)), {6, 7})
    evaluated = api("police", f"/api/hotspots/evaluate?jurisdiction={community}&cell=400&"
                              "train_from=2026-01-01&train_to=2026-06-30&test_from=2026-07-01&"
                              "test_to=2026-09-30&weekdays=6,7")
    assert evaluated.status_code == 200, evaluated.text[:300]
    assert evaluated.json()["parameters"]["incidents_in_cells"] == weekend > 0


@pytest.mark.parametrize("path", ["/api/hotspots", "/api/hotspots/emerging",
                                  "/api/hotspots/evaluate", "/api/hotspots/near-repeat",
                                  "/api/hotspots/clock"])
@pytest.mark.parametrize(("param", "named"), [
    ("hours=25", "hours '25': 25 is outside 0-23"), ("hours=8-8", "hours '8-8'"),
    ("hours=", "hours: empty"), ("weekdays=0-5", "weekdays '0-5': 0 is outside 1-7"),
    ("weekdays=mon", "weekdays 'mon'")])
def test_unreadable_hours_and_weekdays_are_refused_on_every_endpoint(api, path, param, named):
    r = api("police", f"{path}?jurisdiction=430102001001&cell=400&{param}"
            if path in ("/api/hotspots", "/api/hotspots/emerging", "/api/hotspots/evaluate")
            else f"{path}?jurisdiction=430102001001&{param}")
    assert r.status_code == 400, r.text[:300]
    assert named in r.json()["error"]
