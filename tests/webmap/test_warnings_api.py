"""The warnings API over HTTP: watches made from saved runs, warnings listed and
acknowledged, what each role sees, and bad input (4xx naming it, nothing written).

The city of tests/layers/test_warnings.py (two towns, its users) in a database of its own,
with its own server.
"""

import datetime as dt

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.engine import make_url

from layers.db import engine, migrate
from layers.hotspots import HotspotQuery, run_hotspots
from layers.users import issue_token, user_by_name
from layers.warnings import check_watches
from tests.conftest import Server, fresh_database
from tests.layers.test_warnings import (
    EAST_TOWN,
    HOT,
    T0,
    T1,
    T2,
    USERS,
    WEST_TOWN,
    B,
    add_places,
    baseline,
    build_city,
    plant,
    watch_runs,
)

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def town(db_url, tmp_path_factory):
    url = fresh_database(f"{make_url(db_url).database}_warnapi")
    migrate(url)
    build_city(url)
    baseline(url)
    emerging, near = watch_runs(url)
    with engine(url).begin() as conn:
        admin = user_by_name(conn, "townadmin")[0]
        gi = run_hotspots(conn, admin, HotspotQuery(WEST_TOWN, T0 - dt.timedelta(days=28), T0,
                                                    cell=100.0))["run"]
        tokens = {name: issue_token(conn, name) for name in USERS}
    server = Server(url, tmp_path_factory.mktemp("warn") / "serve.log")

    def call(user, path, method="GET", **kw):
        headers = {"Authorization": f"Bearer {tokens[user]}"} if user else {}
        return requests.request(method, f"{server.url}{path}", headers=headers, timeout=120,
                                **kw)

    yield {"url": url, "call": call, "emerging": emerging, "near": near, "gi": gi}
    server.stop()


def _rows(url: str, table: str) -> int:
    with engine(url).connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()


def _acked(url: str) -> int:
    with engine(url).connect() as conn:
        return conn.execute(text("SELECT count(*) FROM warnings WHERE acknowledged_at "
                                 "IS NOT NULL")).scalar()


@pytest.mark.parametrize(("user", "body", "status", "words"), [
    ("westpolice", "run=1", 400, "application/json"),
    ("westpolice", {"run": "1"}, 400, "run must be a int"),
    ("westpolice", {"run": True}, 400, "run must be a int"),
    ("westpolice", {}, 400, "missing field(s) 'run'"),
    ("westpolice", {"run": 1, "period": 7}, 400, "unknown field(s) 'period'"),
    ("westpolice", {"run": 0}, 400, "whole number"),
    ("westpolice", {"run": 999999}, 400, "no hot-spot run 999999"),
    ("eastpolice", "emerging", 400, "that you may see"),  # a run of the west town
    ("westpolice", "gi", 400, "only emerging, near_repeat and risk_places runs"),
    ("westplanner", "emerging", 403, "police and admins"),
    ("westviewer", "emerging", 403, "police and admins"),
    ("westpartner", "emerging", 403, "police and admins"),
    (None, "emerging", 401, ""),
])
def test_bad_watches_are_refused_and_nothing_is_written(town, user, body, status, words):
    before = (_rows(town["url"], "watches"), _rows(town["url"], "audit"))
    if body in ("emerging", "gi"):
        r = town["call"](user, "/api/warnings/watches", "POST", json={"run": town[body]})
    elif isinstance(body, str):
        r = town["call"](user, "/api/warnings/watches", "POST", data=body)
    else:
        r = town["call"](user, "/api/warnings/watches", "POST", json=body)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert words in r.json()["error"]
    assert (_rows(town["url"], "watches"), _rows(town["url"], "audit")) == before


def test_police_keep_watches_of_their_own_jurisdiction(town):
    call = town["call"]
    made = [call("westpolice", "/api/warnings/watches", "POST", json={"run": town[k]})
            for k in ("emerging", "near")]
    assert [r.status_code for r in made] == [201, 201], made[0].text
    ids = {r.json()["id"] for r in made}
    listed = call("westpolice", "/api/warnings/watches").json()["watches"]
    assert {w["id"] for w in listed} == ids
    assert {w["kind"] for w in listed} == {"emerging", "near_repeat"}
    assert all(w["period_days"] == 28 and w["jurisdiction"] == WEST_TOWN for w in listed)
    assert call("eastpolice", "/api/warnings/watches").json()["watches"] == []
    assert {w["id"] for w in call("townadmin", "/api/warnings/watches").json()["watches"]} \
        == ids
    assert call("westviewer", "/api/warnings/watches").status_code == 403


def test_a_watch_of_another_jurisdiction_cannot_be_removed(town):
    call = town["call"]
    made = call("westpolice", "/api/warnings/watches", "POST", json={"run": town["emerging"]})
    watch_id = made.json()["id"]
    before = _rows(town["url"], "watches")
    r = call("eastpolice", f"/api/warnings/watches/{watch_id}", "DELETE")
    assert r.status_code == 404 and f"no watch {watch_id}" in r.json()["error"]
    assert call("westplanner", f"/api/warnings/watches/{watch_id}", "DELETE").status_code == 403
    assert _rows(town["url"], "watches") == before
    assert call("westpolice", f"/api/warnings/watches/{watch_id}", "DELETE").status_code == 204
    assert _rows(town["url"], "watches") == before - 1
    assert call("westpolice", f"/api/warnings/watches/{watch_id}", "DELETE").status_code == 404


@pytest.fixture(scope="module")
def warned(town):
    """The watches checked at T1, incidents planted, checked at T2."""
    url = town["url"]
    assert check_watches(engine(url), T1)
    day = T1 + dt.timedelta(days=1)
    plant(url, [(B, day, "criminal")]
          + [(HOT, day + dt.timedelta(minutes=k), "fraud") for k in range(12)])
    results = check_watches(engine(url), T2)
    assert all(r["error"] is None for r in results)
    return town


def _kinds(r: requests.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return sorted({f["properties"]["kind"] for f in r.json()["features"]})


def test_warnings_by_role(warned):
    call = warned["call"]
    police = call("westpolice", "/api/warnings").json()
    assert _kinds(call("westpolice", "/api/warnings")) == ["emerging_hot_spot",
                                                            "near_repeat_zone"]
    feature = police["features"][0]
    assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
    props = feature["properties"]
    assert {"id", "watch", "jurisdiction", "kind", "place", "message_zh", "message_en",
            "created_at", "until", "acknowledged_by", "acknowledged_at"} <= set(props)
    assert dt.datetime.fromisoformat(props["created_at"]) == T2
    # planners and viewers: hot-spot cells of 3 incidents or more, no risk zones
    for user in ("westplanner", "westviewer"):
        body = call(user, "/api/warnings").json()
        assert _kinds(call(user, "/api/warnings")) == ["emerging_hot_spot"]
        assert all(f["properties"]["place"]["count"] >= 3 for f in body["features"])
        assert body["withheld"] >= 1
    assert call("eastpolice", "/api/warnings").json()["features"] == []
    assert len(call("townadmin", "/api/warnings").json()["features"]) == \
        len(police["features"])
    r = call("westpartner", "/api/warnings")
    assert r.status_code == 403 and "border" in r.json()["error"]


def test_warnings_filtered_by_jurisdiction_time_and_openness(warned):
    call = warned["call"]
    everything = call("townadmin", "/api/warnings").json()["features"]
    assert call("townadmin", f"/api/warnings?jurisdiction={EAST_TOWN}").json()["features"] \
        == []
    assert len(call("townadmin", "/api/warnings?jurisdiction=990100").json()["features"]) \
        == len(everything)  # the city holds the town
    later = (T2 + dt.timedelta(seconds=1)).isoformat()
    assert call("townadmin", "/api/warnings", params={"since": later}).json()["features"] == []
    # zones end a week after their incident: none is open after that
    open_now = call("townadmin", "/api/warnings?open=true").json()["features"]
    assert all(f["properties"]["kind"] != "near_repeat_zone" for f in open_now)


@pytest.mark.parametrize(("user", "query", "status", "words"), [
    ("westpolice", "jurisdiction=990102", 403, "outside your jurisdiction"),
    ("westpolice", "jurisdiction=nowhere", 400, "unknown jurisdiction 'nowhere'"),
    ("westpolice", "since=tomorrow", 400, "'tomorrow'"),
    ("westpolice", "open=perhaps", 400, "open must be true or false"),
    ("westpolice", "kind=zone", 400, "kind"),
])
def test_bad_warning_queries(warned, user, query, status, words):
    r = warned["call"](user, f"/api/warnings?{query}")
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_acknowledging_a_warning(warned):
    call, url = warned["call"], warned["url"]
    target = call("westpolice", "/api/warnings?open=true").json()["features"][0]["id"]
    before = _acked(url)
    for user, status in (("westviewer", 403), ("westplanner", 403), ("eastpolice", 404),
                         ("westpartner", 403)):
        r = call(user, f"/api/warnings/{target}/ack", "POST")
        assert r.status_code == status, (user, r.text)
        assert _acked(url) == before
    assert call("westpolice", "/api/warnings/999999/ack", "POST").status_code == 404
    r = call("westpolice", f"/api/warnings/{target}/ack", "POST")
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["acknowledged_by"] == "westpolice"
    assert _acked(url) == before + 1
    again = call("townadmin", f"/api/warnings/{target}/ack", "POST")
    assert again.status_code == 409 and "westpolice" in again.json()["error"]
    assert _acked(url) == before + 1
    still_open = call("westpolice", "/api/warnings?open=true").json()["features"]
    assert target not in {f["id"] for f in still_open}


def test_a_risk_places_run_is_watched_and_a_rising_level_warned_to_every_role(warned):
    """Last: the town gets key areas and grids, graded over HTTP; the grading is watched."""
    call, url = warned["call"], warned["url"]
    add_places(url)
    graded = call("westpolice", "/api/risk/places", params={
        "jurisdiction": WEST_TOWN, "from": (T2 - dt.timedelta(days=28)).isoformat(),
        "to": T2.isoformat()})
    assert graded.status_code == 200, graded.text[:300]
    run = graded.json()["run_id"]
    assert call("westplanner", "/api/warnings/watches", "POST",
                json={"run": run}).status_code == 403
    made = call("westpolice", "/api/warnings/watches", "POST", json={"run": run})
    assert made.status_code == 201, made.text
    assert made.json()["kind"] == "risk_level" and made.json()["period_days"] == 28
    later = T2 + dt.timedelta(days=2)
    plant(url, [((113.0041 + 0.0001 * (k % 5), 28.5083 + 0.0001 * (k // 5)),
                 T2 + dt.timedelta(hours=k), "criminal") for k in range(15)])
    assert all(r["error"] is None for r in check_watches(engine(url), later))
    for user in ("westpolice", "westplanner", "westviewer"):
        body = call(user, "/api/warnings").json()
        risen = [f for f in body["features"] if f["properties"]["kind"] == "risk_level"]
        assert [f["properties"]["place"]["name"] for f in risen] == ["西镇小学"], user
        place = risen[0]["properties"]["place"]
        assert risen[0]["geometry"] == {"type": "Point",
                                        "coordinates": [place["lon"], place["lat"]]}
        assert place["level"] > place["level_before"]
    assert not [f for f in call("eastpolice", "/api/warnings").json()["features"]
                if f["properties"]["kind"] == "risk_level"]
