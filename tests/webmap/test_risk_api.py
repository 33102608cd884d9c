"""Risk terrain endpoint over HTTP on the small demo: the factor table and scores equal
geo.rtm run here on inputs read independently (features through the OGC API items
endpoints, incidents by SQL), validation against Gi* and KDE, saved runs, scope and the
bad parameters."""

import numpy as np
import pytest
import shapely
from sqlalchemy import text

from geo.crs import Projection
from geo.hotspots import count_points, square_cells
from geo.rtm import RiskFactor, fit_terrain

pytestmark = pytest.mark.db

AREA = "430102"  # a district of the police user's city, with cameras and key areas
CELL = 400
DISTANCES = (400.0, 800.0)
QUERY = (f"/api/risk/terrain?jurisdiction={AREA}&from=2026-05-01&to=2026-07-31&cell={CELL}"
         "&distances=400,800&folds=3&seed=1")
# the period as stored (China Standard Time): 2026-05-01 to the end of 2026-07-31
START, END = "2026-05-01T00:00:00+08:00", "2026-08-01T00:00:00+08:00"


@pytest.fixture(scope="module")
def terrain(api):
    r = api("police", QUERY)
    assert r.status_code == 200, r.text[:500]
    return r.json()


def _items(api, layer: str, bbox: tuple[float, ...]) -> list[dict]:
    """Every feature of ``layer`` in ``bbox`` (lon/lat) through the OGC API items pages.

    As the administrator: a terrain takes every feature lying there, whatever
    jurisdiction it is coded to (the demo's airport lies in AREA but is coded to
    another city's community).
    """
    out, url = [], f"/collections/{layer}/items"
    params: dict | None = {"bbox": ",".join(map(str, bbox)), "limit": 10000}
    while url:
        body = api("admin", url, params=params).json()
        out += body["features"]
        url = next((link["href"].split("127.0.0.1", 1)[-1].split("/", 1)[-1]
                    for link in body.get("links", []) if link["rel"] == "next"), None)
        url, params = (f"/{url}" if url else None), None
    return out


def _independent_inputs(api, db, crs: str):
    with db.connect() as conn:
        area_ll = shapely.from_wkb(bytes(conn.execute(text(
            "SELECT ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"),
            {"c": AREA}).scalar_one()))
        rows = conn.execute(text(
            "SELECT ST_X(i.geom), ST_Y(i.geom) FROM incidents i, jurisdictions j "
            "WHERE j.code = :c AND ST_Intersects(i.geom, j.geom) AND i.occurred_at >= :s "
            "AND i.occurred_at < :e"), {"c": AREA, "s": START, "e": END}).all()
    projection = Projection(crs)
    area = projection.project(area_ll)
    lattice = square_cells(area, CELL, cover=True)
    xy = np.column_stack(projection.project_xy(*np.array(rows, dtype=float).T))
    counts = count_points(lattice, xy)
    zone = shapely.buffer(area, max(DISTANCES))
    bbox = projection.unproject(zone).bounds
    groups: dict[str, list] = {}
    for layer, name_of in (
            ("key_areas", lambda p: f"key_areas:{p['category']}"),
            ("roads", lambda p: f"roads:{p['class']}"
             if p["class"] in ("arterial", "motorway") else None),
            ("checkpoints", lambda p: "checkpoints"),
            ("cameras", lambda p: "cameras:offline" if p["status"] == "offline" else None)):
        for f in _items(api, layer, bbox):
            name = name_of(f["properties"])
            geom = projection.project(shapely.geometry.shape(f["geometry"]))
            if name and shapely.intersects(geom, zone):
                groups.setdefault(name, []).append(geom)
    factors = [RiskFactor(n, np.array(g, dtype=object), absence=n == "checkpoints")
               for n, g in sorted(groups.items())]
    return lattice, counts, factors


def test_the_factor_table_is_geo_rtm_on_independently_read_inputs(terrain, api, db):
    lattice, counts, factors = _independent_inputs(api, db, terrain["parameters"]["metric_crs"])
    assert terrain["summary"]["incidents_in_cells"] == counts.sum() > 0
    assert {c["factor"] for c in terrain["parameters"]["candidates"]} == {
        f.name for f in factors}
    centroids = shapely.get_coordinates(shapely.centroid(lattice.cells.geometry.values))
    model = fit_terrain(centroids, counts, factors, DISTANCES, folds=3, seed=1)
    assert terrain["factors"], "the demo's incidents gather near key areas: some factor"
    assert [(r["factor"], r["operationalisation"], r["distance"]) for r in terrain["factors"]
            ] == [(r["factor"], r["operationalisation"], r["distance"]) for r in model.factors]
    for got, want in zip(terrain["factors"], model.factors, strict=True):
        assert got["coefficient"] == pytest.approx(want["coefficient"], abs=1e-6)
        assert got["relative_risk"] == pytest.approx(want["relative_risk"], rel=1e-6)
    assert terrain["model"]["kind"] == model.model
    # the cells, row and column, carry the scores geo.rtm gives them
    at = {(r, c): i for i, (r, c) in enumerate(zip(lattice.cells["row"], lattice.cells["col"],
                                                    strict=True))}
    assert len(terrain["features"]) == len(at)
    for f in terrain["features"]:
        p = f["properties"]
        i = at[(p["row"], p["col"])]
        assert p["rrs"] == pytest.approx(model.rrs[i], abs=1e-6)
        assert p["count"] == counts[i]
    assert min(f["properties"]["rrs"] for f in terrain["features"]) == 1


def _count_at_times(db, start: str, end: str) -> int:
    """Incidents of AREA in [start, end) from 22:00 to 05:59, Monday to Friday, in China
    Standard Time, counted by SQL."""
    with db.connect() as conn:
        return conn.execute(text(
            "SELECT count(*) FROM incidents i, jurisdictions j "
            "WHERE j.code = :c AND ST_Intersects(i.geom, j.geom) AND i.occurred_at >= :s "
            "AND i.occurred_at < :e "
            "AND (extract(hour FROM i.occurred_at AT TIME ZONE 'Asia/Shanghai') >= 22 "
            "OR extract(hour FROM i.occurred_at AT TIME ZONE 'Asia/Shanghai') < 6) "
            "AND extract(isodow FROM i.occurred_at AT TIME ZONE 'Asia/Shanghai') <= 5"),
            {"c": AREA, "s": start, "e": end}).scalar_one()


def test_hours_and_weekdays_keep_the_incidents_at_those_times(api, db, terrain):
    r = api("police", f"{QUERY}&hours=22-6&weekdays=1-5")
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert body["parameters"]["hours"] == "22-6" and body["parameters"]["weekdays"] == "1-5"
    kept = _count_at_times(db, START, END)
    assert 0 < body["summary"]["incidents_in_cells"] == kept < terrain["summary"][
        "incidents_in_cells"]
    # the following period is filtered the same way
    following = _count_at_times(db, END, "2026-11-01T00:00:00+08:00")
    assert body["validation"]["incidents_in_cells"] == following
    listed = api("police", f"/api/hotspots/runs/{body['run_id']}").json()
    assert listed["parameters"]["hours"] == "22-6"


def test_validation_compares_the_terrain_with_gi_and_kde(terrain):
    v = terrain["validation"]
    assert v is not None and terrain["validation_reason"] is None
    assert v["from"].startswith("2026-08-01") and v["incidents_in_cells"] > 0
    assert set(v["methods"]) == {"rtm", "gi", "kde"}
    for method in v["methods"].values():
        for share, result in method.items():
            assert result["area_share"] == pytest.approx(int(share[:-1]) / 100, abs=0.03)
            assert result["pai"] == pytest.approx(result["hit_rate"] / result["area_share"],
                                                  rel=1e-4)


def test_no_following_period_gives_a_null_validation_with_a_reason(api):
    r = api("police", f"/api/risk/terrain?jurisdiction={AREA}&from=2026-09-01&to=2026-10-31"
                      "&cell=800&distances=800&folds=2")
    assert r.status_code == 200, r.text[:300]
    assert r.json()["validation"] is None and "no incidents" in r.json()["validation_reason"]


def test_the_run_is_saved_and_listed_with_the_hot_spot_runs(terrain, api):
    listed = api("police", f"/api/hotspots/runs?jurisdiction={AREA}").json()["runs"]
    assert {"id": terrain["run_id"], "kind": "terrain"}.items() <= next(
        r for r in listed if r["id"] == terrain["run_id"]).items()
    again = api("police", f"/api/hotspots/runs/{terrain['run_id']}").json()
    assert again["factors"] == terrain["factors"] and again["features"] == terrain["features"]


def test_aggregate_roles_get_no_small_counts(api):
    r = api("viewer", QUERY)
    assert r.status_code == 200, r.text[:300]
    counts = [f["properties"].get("count") for f in r.json()["features"]]
    assert all(c is None or c >= 3 for c in counts) and None in counts


def test_another_city_is_forbidden(api):
    r = api("viewer", "/api/risk/terrain?jurisdiction=430200&cell=800&distances=800")
    assert r.status_code == 403 and "outside your jurisdiction" in r.json()["error"]


@pytest.mark.parametrize(("query", "word"), [
    ("cell=400", "jurisdiction"),
    (f"jurisdiction={AREA}&folds=1", "folds"),
    (f"jurisdiction={AREA}&folds=x", "folds"),
    (f"jurisdiction={AREA}&seed=-1", "seed"),
    (f"jurisdiction={AREA}&distances=100,abc", "distances"),
    (f"jurisdiction={AREA}&distances=-5", "distances"),
    (f"jurisdiction={AREA}&cell=0", "cell"),
    (f"jurisdiction={AREA}&category=nope", "category"),
    (f"jurisdiction={AREA}&from=2026-07-01&to=2026-06-01", "from"),
    (f"jurisdiction={AREA}&method=gi", "method"),
    (f"jurisdiction={AREA}&hours=25", "hours"),
    (f"jurisdiction={AREA}&hours=night", "hours"),
    (f"jurisdiction={AREA}&weekdays=8", "weekdays"),
    (f"jurisdiction={AREA}&weekdays=mon", "weekdays"),
    ("jurisdiction=999999", "999999"),
])
def test_bad_parameters_are_refused_naming_them(api, db, query, word):
    with db.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM hotspot_runs")).scalar_one()
    r = api("police", f"/api/risk/terrain?{query}")
    assert 400 <= r.status_code < 500 and word in r.json()["error"], (r.status_code, r.text)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hotspot_runs")).scalar_one() == before
