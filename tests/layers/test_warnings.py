"""Standing watches and risk warnings on a hand example.

A city ``990100`` of two towns (``990101`` west, ``990102`` east, each about 1 km
square) in a database of its own. Incidents are planted so that, between two checks
(``safegrid warnings check --now``), a near-repeat risk zone opens at a place where none
was open, and a cluster makes a new hot spot of a cell that had none; a zone that only
grows, and a check run twice, record nothing.
"""

import datetime as dt
import os
import subprocess
import sys

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import text
from sqlalchemy.engine import make_url

from layers import LAYERS
from layers.db import engine, migrate
from layers.hotspots import HotspotQuery, run_emerging
from layers.nearrepeat import NearRepeatQuery, run_near_repeat
from layers.store import write_features
from layers.users import add_user, user_by_name
from layers.validate import clean_features
from layers.warnings import check_watches, create_watch
from tests.conftest import ROOT, fresh_database

pytestmark = pytest.mark.db

CST = dt.timezone(dt.timedelta(hours=8))
CITY, WEST_TOWN, EAST_TOWN = "990100", "990101", "990102"
SOUTH, NORTH = 28.5, 28.509  # about 1 km
EDGES = (113.0, 113.0102, 113.0204)  # west, the towns' border, east (about 1 km each)
T0 = dt.datetime(2026, 6, 1, tzinfo=CST)  # the runs the watches are made from end here
T1, T2 = T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=4)  # the two checks
A, A2, B = (113.002, 28.5045), (113.0025, 28.5046), (113.008, 28.5045)  # A2 ~50 m from A
HOT = (113.0055, 28.5055)  # the cluster's place (one 100 m cell)
SCATTER = [(113.0015 + 0.0018 * i, 28.5012 + 0.0016 * j) for i in range(5) for j in range(5)]
USERS = {"townadmin": ("admin", None, None), "westpolice": ("police", WEST_TOWN, None),
         "eastpolice": ("police", EAST_TOWN, None), "westplanner": ("planner", WEST_TOWN, None),
         "westviewer": ("viewer", WEST_TOWN, None),
         "westpartner": ("border_partner", WEST_TOWN, EAST_TOWN)}
_RUN = ("import sys; from webmap.cli import main; from webmap.warnings_cli import "
        "warnings_group\nif 'warnings' not in main.commands: main.add_command(warnings_group)\n"
        "sys.argv[0] = 'safegrid'; main()")


def build_city(url: str) -> None:
    """The city, its two towns and :data:`USERS` (password ``NAME-pass-2026``)."""
    boxes = [shapely.box(EDGES[0], SOUTH, EDGES[2], NORTH),
             shapely.box(EDGES[0], SOUTH, EDGES[1], NORTH),
             shapely.box(EDGES[1], SOUTH, EDGES[2], NORTH)]
    gdf = gpd.GeoDataFrame({"code": [CITY, WEST_TOWN, EAST_TOWN],
                            "name": ["测试市", "西镇", "东镇"],
                            "level": ["city", "street", "street"],
                            "parent_code": [None, CITY, CITY]},
                           geometry=[shapely.MultiPolygon([b]) for b in boxes], crs="EPSG:4326")
    write_features(engine(url), LAYERS["jurisdictions"],
                   clean_features(gdf, LAYERS["jurisdictions"]))
    with engine(url).begin() as conn:
        for name, (role, code, partner) in USERS.items():
            add_user(conn, name, role, f"{name}-pass-2026", code, partner)


def plant(url: str, rows: list[tuple[tuple[float, float], dt.datetime, str]]) -> None:
    """Incidents at (lon, lat), time, category."""
    gdf = gpd.GeoDataFrame({"occurred_at": [t for _, t, _ in rows],
                            "category": [c for _, _, c in rows]},
                           geometry=[shapely.Point(p) for p, _, _ in rows], crs="EPSG:4326")
    write_features(engine(url), LAYERS["incidents"], clean_features(gdf, LAYERS["incidents"]))


def scatter_time(k: int) -> dt.datetime:
    """When the ``k``-th scattered fraud happened: one a day from 27 days before T0."""
    return T0 - dt.timedelta(days=27) + dt.timedelta(days=k, hours=5)


def baseline(url: str) -> None:
    """Before T0: one criminal incident at A three days before, fraud scattered daily."""
    rows = [(A, T0 - dt.timedelta(days=3), "criminal")]
    rows += [(p, scatter_time(k), "fraud") for k, p in enumerate(SCATTER)]
    plant(url, rows)


def watch_runs(url: str) -> tuple[int, int]:
    """(emerging run, near-repeat run) of the west town ending at T0, as its admin."""
    with engine(url).begin() as conn:
        admin = user_by_name(conn, "townadmin")[0]
        emerging = run_emerging(conn, admin, HotspotQuery(
            WEST_TOWN, T0 - dt.timedelta(days=28), T0, category="fraud", cell=100.0), "week")
        near = run_near_repeat(conn, admin, HotspotQuery(
            WEST_TOWN, T0 - dt.timedelta(days=28), T0, category="criminal"),
            NearRepeatQuery(space_bands=(100.0, 200.0), time_bands=(7.0, 14.0),
                            permutations=0, band=(200.0, 7.0)))
    return emerging["run"], near["run"]


def check(url: str, now: dt.datetime) -> subprocess.CompletedProcess:
    env = {**os.environ, "SAFEGRID_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-c", _RUN, "warnings", "check", "--now",
                           now.isoformat()], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def warnings_of(url: str) -> list[dict]:
    with engine(url).connect() as conn:
        return [dict(r) for r in conn.execute(text(
            "SELECT id, watch_id, kind, key, place, until, message_zh, message_en, "
            "ST_AsText(geom) AS wkt, created_at FROM warnings ORDER BY id")).mappings()]


@pytest.fixture(scope="module")
def city(db_url):
    url = fresh_database(f"{make_url(db_url).database}_warn")
    migrate(url)
    build_city(url)
    baseline(url)
    emerging_run, near_run = watch_runs(url)
    with engine(url).begin() as conn:
        police = user_by_name(conn, "westpolice")[0]
        emerging = create_watch(conn, police, emerging_run)
        near = create_watch(conn, police, near_run)
    return {"url": url, "emerging": emerging, "near": near}


def _cell_of(lon: float, lat: float, warning: dict) -> bool:
    return shapely.from_wkt(warning["wkt"]).contains(shapely.Point(lon, lat))


def test_a_watch_keeps_the_run_and_its_period(city):
    near = city["near"]
    assert near["kind"] == "near_repeat" and near["jurisdiction"] == WEST_TOWN
    assert near["period_days"] == 28
    assert dt.datetime.fromisoformat(near["checked_at"]) == T0
    assert city["emerging"]["parameters"]["cell"] == 100.0


def test_nothing_new_at_the_first_check(city):
    r = check(city["url"], T1)
    assert r.returncode == 0, r.stderr
    assert "2 watch(es) checked" in r.stdout and "0 new warning(s)" in r.stdout
    assert warnings_of(city["url"]) == []  # zone A was open when the run was made


def test_a_zone_that_opens_and_a_new_hot_spot_are_warned_once(city):
    url = city["url"]
    day = T1 + dt.timedelta(days=1)
    plant(url, [(B, day, "criminal"), (A2, day, "criminal")]  # A2 only grows zone A
          + [(HOT, day + dt.timedelta(minutes=k), "fraud") for k in range(12)])
    r = check(url, T2)
    assert r.returncode == 0, r.stderr
    found = warnings_of(url)
    zones = [w for w in found if w["kind"] == "near_repeat_zone"]
    assert len(zones) == 1, found
    zone = zones[0]
    assert zone["watch_id"] == city["near"]["id"]
    assert _cell_of(*B, zone) and not _cell_of(*A, zone)
    assert zone["until"] == day + dt.timedelta(days=7)  # B's circle lasts the band's 7 days
    assert zone["place"]["incidents"] == 1
    assert "近重复风险区" in zone["message_zh"] and "near-repeat" in zone["message_en"]
    assert ": 1 incident, open until" in zone["message_en"]
    hot = [w for w in found if w["kind"] == "emerging_hot_spot"]
    assert hot and all(w["watch_id"] == city["emerging"]["id"] for w in hot)
    # a neighbour hot through the cluster alone holds no incident: no warning sends an
    # officer to an empty cell
    assert all(w["place"]["count"] > 0 for w in hot), [w["place"] for w in hot]
    at_cluster = [w for w in hot if _cell_of(*HOT, w)]
    assert len(at_cluster) == 1 and at_cluster[0]["place"]["category"] == "new_hot_spot"
    cell = shapely.from_wkt(at_cluster[0]["wkt"])
    scattered = sum(1 for k, p in enumerate(SCATTER) if cell.contains(shapely.Point(p))
                    and T2 - dt.timedelta(days=28) <= scatter_time(k) < T2)
    assert at_cluster[0]["place"]["count"] == 12 + scattered
    centre = at_cluster[0]["place"]
    for w in hot:  # the cluster's cell and its queen neighbours, nothing further
        assert abs(w["place"]["row"] - centre["row"]) <= 1
        assert abs(w["place"]["col"] - centre["col"]) <= 1
    assert "新热点" in at_cluster[0]["message_zh"]
    assert all(w["created_at"] == T2 for w in found)

    again = check(url, T2)  # the same data and moment: nothing twice
    assert again.returncode == 0, again.stderr
    assert "0 new warning(s)" in again.stdout and "new warning(s): " not in again.stdout
    assert warnings_of(url) == found


def test_a_warning_is_not_recorded_twice_even_when_the_state_is_lost(city):
    url = city["url"]
    before = warnings_of(url)
    assert before
    with engine(url).begin() as conn:  # as if the previous check had not been recorded
        conn.execute(text("UPDATE watches SET state = '{}'::jsonb"))
    r = check(url, T2)
    assert r.returncode == 0, r.stderr
    after = warnings_of(url)
    assert after[:len(before)] == before
    keys = [(w["watch_id"], w["key"]) for w in after]
    assert len(keys) == len(set(keys))
    # with no previous state, zone A (open since before T0) counts as opening now
    assert [w["kind"] for w in after[len(before):]] == ["near_repeat_zone"]
    assert _cell_of(*A, after[-1])


def test_a_bad_now_is_one_line_and_writes_nothing(city):
    url = city["url"]
    with engine(url).connect() as conn:
        runs = conn.execute(text("SELECT count(*) FROM hotspot_runs")).scalar()
    before = warnings_of(url)
    env = {**os.environ, "SAFEGRID_DATABASE_URL": url}
    r = subprocess.run([sys.executable, "-c", _RUN, "warnings", "check", "--now", "yesterday"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: datetime 'yesterday' is not an RFC 3339 date or date-time"]
    assert warnings_of(url) == before
    with engine(url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hotspot_runs")).scalar() == runs


def test_a_watch_whose_owner_is_gone_is_reported_and_the_others_run(city):
    url = city["url"]
    with engine(url).begin() as conn:
        run = conn.execute(text("SELECT run_id FROM watches WHERE id = :i"),
                           {"i": city["near"]["id"]}).scalar()
        add_user(conn, "leaver", "police", "leaver-pass-2026", WEST_TOWN)
        gone = create_watch(conn, user_by_name(conn, "leaver")[0], run)
        conn.execute(text("DELETE FROM users WHERE name = 'leaver'"))
    try:
        results = check_watches(engine(url), T2)
        by_id = {r["watch"]: r for r in results}
        assert "leaver" in by_id[gone["id"]]["error"]
        assert by_id[city["near"]["id"]]["error"] is None
        r = check(url, T2)
        assert r.returncode == 1 and f"watch {gone['id']}" in r.stderr
    finally:
        with engine(url).begin() as conn:
            conn.execute(text("DELETE FROM watches WHERE id = :i"), {"i": gone["id"]})


def test_a_watch_whose_owner_became_a_planner_is_not_run(city):
    url = city["url"]
    with engine(url).begin() as conn:
        add_user(conn, "mover", "police", "mover-pass-2026", WEST_TOWN)
        run = conn.execute(text("SELECT run_id FROM watches WHERE id = :i"),
                           {"i": city["emerging"]["id"]}).scalar()
        moved = create_watch(conn, user_by_name(conn, "mover")[0], run)
        conn.execute(text("UPDATE users SET role = 'planner' WHERE name = 'mover'"))
    try:
        before = warnings_of(url)
        by_id = {r["watch"]: r for r in check_watches(engine(url), T2)}
        assert "now a planner" in by_id[moved["id"]]["error"]
        assert warnings_of(url) == before
        with engine(url).connect() as conn:
            assert "now a planner" in conn.execute(text(
                "SELECT last_error FROM watches WHERE id = :i"), {"i": moved["id"]}).scalar()
    finally:
        with engine(url).begin() as conn:
            conn.execute(text("DELETE FROM watches WHERE id = :i"), {"i": moved["id"]})


# -- risk levels of places ----------------------------------------------------------------

# a school of about 60 m x 80 m in the north of the west town, 65 m or more from any
# baseline incident
SCHOOL = shapely.box(113.0040, 28.5082, 113.0046, 28.5089)
PARK = shapely.box(113.0070, 28.5070, 113.0080, 28.5080)
GRIDS = {"WG1": shapely.box(EDGES[0], SOUTH, 113.0051, NORTH),  # the west town's halves
         "WG2": shapely.box(113.0051, SOUTH, EDGES[1], NORTH)}


def add_places(url: str) -> None:
    """A school, a park and two grids in the west town."""
    places = gpd.GeoDataFrame({"name": ["西镇小学", "西镇公园"], "category": ["school", "park"]},
                              geometry=[SCHOOL, PARK], crs="EPSG:4326")
    write_features(engine(url), LAYERS["key_areas"], clean_features(places, LAYERS["key_areas"]))
    grids = gpd.GeoDataFrame({"code": list(GRIDS), "name": ["西镇第1网格", "西镇第2网格"],
                              "kind": ["comprehensive"] * 2, "jurisdiction_code": [WEST_TOWN] * 2},
                             geometry=[shapely.MultiPolygon([g]) for g in GRIDS.values()],
                             crs="EPSG:4326")
    write_features(engine(url), LAYERS["grids"], clean_features(grids, LAYERS["grids"]))


@pytest.fixture(scope="module")
def graded_city(db_url):
    from layers.riskgrade import RiskPlacesQuery, run_risk_places

    url = fresh_database(f"{make_url(db_url).database}_warnrisk")
    migrate(url)
    build_city(url)
    add_places(url)
    baseline(url)
    with engine(url).begin() as conn:
        admin = user_by_name(conn, "townadmin")[0]
        run = run_risk_places(conn, admin, RiskPlacesQuery(WEST_TOWN, T0 - dt.timedelta(days=28),
                                                           T0))
    with engine(url).begin() as conn:
        police = user_by_name(conn, "westpolice")[0]
        watch = create_watch(conn, police, run["run_id"])
    return {"url": url, "run": run, "watch": watch}


def _school(body: dict) -> dict:
    return next(f["properties"] for f in body["key_areas"]["features"]
                if f["properties"]["name"] == "西镇小学")


def test_a_risk_places_run_becomes_a_risk_level_watch(graded_city):
    watch, run = graded_city["watch"], graded_city["run"]
    assert watch["kind"] == "risk_level" and watch["run"] == run["run_id"]
    assert watch["period_days"] == 28 and watch["jurisdiction"] == WEST_TOWN
    with engine(graded_city["url"]).connect() as conn:
        state = conn.execute(text("SELECT state FROM watches WHERE id = :i"),
                             {"i": watch["id"]}).scalar_one()
    assert len(state["places"]) == 4  # two key areas, two grids
    assert state["places"][f"key_areas:{_school_id(graded_city)}"] == _school(run)["risk_level"]


def _school_id(graded_city) -> int:
    return next(f["id"] for f in graded_city["run"]["key_areas"]["features"]
                if f["properties"]["name"] == "西镇小学")


def test_a_rising_level_is_warned_once_naming_the_place_and_levels(graded_city):
    url = graded_city["url"]
    before = _school(graded_city["run"])["risk_level"]
    assert before < 4
    r = check(url, T1)
    assert r.returncode == 0, r.stderr
    assert not [w for w in warnings_of(url) if w["place"].get("name") == "西镇小学"]
    day = T1 + dt.timedelta(days=1)
    plant(url, [((113.0041 + 0.0001 * (k % 5), 28.5083 + 0.0001 * (k // 5)),
                 day + dt.timedelta(hours=k), "criminal") for k in range(15)])
    r = check(url, T2)
    assert r.returncode == 0, r.stderr
    found = [w for w in warnings_of(url) if w["kind"] == "risk_level"]
    school = [w for w in found if w["place"]["name"] == "西镇小学"]
    assert len(school) == 1, found
    w = school[0]
    place = w["place"]
    assert place["kind"] == "key_areas" and place["id"] == _school_id(graded_city)
    assert place["category"] == "school" and place["level"] > place["level_before"]
    assert w["watch_id"] == graded_city["watch"]["id"] and w["created_at"] == T2
    point = shapely.from_wkt(w["wkt"])
    assert point.geom_type == "Point" and SCHOOL.contains(point)
    assert (point.x, point.y) == pytest.approx((place["lon"], place["lat"]))
    assert "西镇小学" in w["message_zh"] and "风险等级由" in w["message_zh"]
    assert f"{place['level_before']}级" in w["message_zh"]
    assert f"{place['level']}级" in w["message_zh"]
    assert "西镇小学" in w["message_en"] and "rose from" in w["message_en"]
    assert w["key"] == (f"key_areas:{place['id']}:{place['level_before']}>{place['level']}:"
                        f"{T2.date().isoformat()}")

    again = check(url, T2)  # the same moment: nothing twice
    assert again.returncode == 0, again.stderr
    assert "0 new warning(s)" in again.stdout
    assert [w for w in warnings_of(url) if w["kind"] == "risk_level"] == found


def test_a_risk_level_watch_needs_police_or_an_admin_and_its_own_jurisdiction(graded_city):
    from layers.errors import BadRequest, Forbidden

    with engine(graded_city["url"]).begin() as conn:
        planner = user_by_name(conn, "westplanner")[0]
        with pytest.raises(Forbidden):
            create_watch(conn, planner, graded_city["run"]["run_id"])
        east = user_by_name(conn, "eastpolice")[0]
        with pytest.raises(BadRequest, match="that you may see"):
            create_watch(conn, east, graded_city["run"]["run_id"])


def test_a_town_without_places_is_graded_to_empty_collections(graded_city):
    from layers.riskgrade import RiskPlacesQuery, run_risk_places

    with engine(graded_city["url"]).begin() as conn:
        admin = user_by_name(conn, "townadmin")[0]
        body = run_risk_places(conn, admin, RiskPlacesQuery(EAST_TOWN, T0 - dt.timedelta(
            days=28), T0))
    assert body["key_areas"]["features"] == body["grids"]["features"] == []
    assert body["summary"]["key_areas"] == {"1": 0, "2": 0, "3": 0, "4": 0}
    assert isinstance(body["run_id"], int)
