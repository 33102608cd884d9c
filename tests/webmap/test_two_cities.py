"""Two cities, two servers: the border of Changsha (430100, server A) and Xiangtan
(430300, server B), each a one-city installation (``safegrid demo --only``) with its own
database, B registered on A as the peer of that border (``safegrid peers add ...
--token-stdin`` with a token of B's border_partner user for Changsha).

- ``/api/border`` on A equals the one-database answer (the reference database holding
  both cities, same data): line, zone, crossings with their cover, incidents, hot cells,
  key areas, coverage. What differs, and why: ``sources`` (A local, B from the peer), and
  the ids of B's key areas, given as ``"xiangtan:<id on B>"`` (ids of two databases may
  collide; the demo gives each feature the same id in every database). A camera of B's
  over a crossing covers it on A's answer.
- A joint patrol plan lands on both servers: A's routes in A's database, B's on B,
  readable there by B's police; sectors and routes as the one-database plan.
- B stopped: the border answers within the bounded time with B's side from the kept copy,
  stale since when it was read; with nothing kept, our side alone and why; a plan is
  refused (502) and nothing written.
- A wrong token, a peer that answers garbage: clear errors, nothing written (A's
  peer_features untouched, no routes on either side). A plan B refuses while it is
  written there (a route changed there meanwhile: 409; B failing: 502) leaves both
  sides' routes as they were.
- What leaves a city is the zone: B's access log shows only zone-box requests by its
  border partner, and every feature A received intersects the zone in B's database.
- B gives its incidents as counts per cell only (``users.partner_incidents = cells``):
  A is refused the points, reads ``incident_cells``, and its border is still the
  one-database border.
- The border page (headless Chromium, by mouse): the legend names each side's server
  and time, the partner's side dashed and its cameras hollow; cells only is said; B
  stopped, the old copy is said and the plan refused.

The times (two servers cold, warm, one database) are printed (``-s``) and not asserted
beyond the bound on a peer that is down.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import stat
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import shapely
from sqlalchemy import create_engine, text

from layers.access import border_zone_wkb
from layers.border import PLAN_TIMEOUT, BorderQuery, border_view, patrol_plan
from layers.db import engine
from layers.peerclient import CELLS, COLLECTIONS, TIMEOUT
from layers.users import set_partner_incidents, user_by_name

from ..peerhelp import Answering, Relay, always, serving
from . import twocities
from .borderpage import STATE, clock, dashed_sides, open_popup, shot, swatch_borders
from .browser import logged_in, wait_for

pytestmark = pytest.mark.db

A, B = "430100", "430300"
KEY = f"{A}-{B}"
PEER = "xiangtan"
BORDER = f"/api/border?a={A}&b={B}"
TEAMS = {A: 2, B: 2}


two_cities = twocities.two_cities


@pytest.fixture(scope="module")
def cities(two_cities):
    """The two servers, B registered on A (``safegrid peers add xiangtan URL --border
    430100-430300 --token-stdin`` with A's SAFEGRID_HOME, by the fixture) as the peer
    of the A-B border; its token file readable by the owner only, never printed."""
    listed = two_cities.a.cli("peers", "list")
    assert listed.returncode == 0 and PEER in listed.stdout and KEY in listed.stdout
    token_file = two_cities.a.home / "peers" / f"{PEER}.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == two_cities.b.tokens["peer"]
    assert two_cities.b.tokens["peer"] not in listed.stdout + listed.stderr
    return two_cities


def get(cities, path: str, server: str = "a", user: str = "admin") -> requests.Response:
    return (cities.a if server == "a" else cities.b).get(user, path)


def plan(cities) -> requests.Response:
    return requests.post(cities.a.url + "/api/border/patrols",
                         json={"a": A, "b": B, "teams": TEAMS}, timeout=60,
                         headers={"Authorization": f"Bearer {cities.a.tokens['admin']}"})


def reference(cities, a: str = A, b: str = B) -> dict:
    """The one-database answer (both cities in the reference database), as sent."""
    with engine(cities.reference_url).connect() as conn:
        body = border_view(conn, user_by_name(conn, "admin")[0], BorderQuery(a, b))
    return json.loads(json.dumps(body, ensure_ascii=False, default=str))


def peer_features(cities) -> list[tuple]:
    """What A keeps of B: (collection, id, geometry as WKT, properties) in order."""
    with engine(cities.a.db_url).connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT collection, feature_id, ST_AsText(geom), properties::text "
            "FROM peer_features WHERE peer = :p ORDER BY 1, 2"), {"p": PEER})]


def routes(db_url: str) -> list[tuple]:
    """(id, name, version) of the border's patrol routes in a database."""
    with engine(db_url).connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT id, name, version FROM patrol_routes WHERE border = :k ORDER BY id"),
            {"k": KEY})]


def _same_geometry(ours: dict, theirs: dict, tolerance: float = 2e-7) -> bool:
    a, b = shapely.geometry.shape(ours), shapely.geometry.shape(theirs)
    return a.geom_type == b.geom_type and a.hausdorff_distance(b) <= tolerance


def _collection(body: dict, name: str, id_of=lambda f: f.get("id")) -> dict:
    return {id_of(f): f for f in body[name]["features"]}


def _check_equal(two: dict, one: dict) -> None:
    """``two`` (two servers) is ``one`` (one database) but for sources and B's ids."""
    for name in ("a", "b", "length_m", "incidents", "coverage", "parameters"):
        assert two[name] == one[name], name
    assert _same_geometry(two["line"], one["line"])
    for name, id_of in (("zone", lambda f: f["id"]), ("crossings", lambda f: f["id"]),
                        ("hot_cells", lambda f: json.dumps(f["properties"]) + json.dumps(
                            [round(c, 6) for c in shapely.geometry.shape(
                                f["geometry"]).centroid.coords[0]])),
                        ("key_areas", lambda f: str(f["id"]).removeprefix(f"{PEER}:"))):
        ours, theirs = _collection(two, name, id_of), _collection(one, name, id_of)
        assert ours.keys() == theirs.keys(), name
        assert ours, f"the demo border has {name}"
        for key, feature in ours.items():
            assert feature["properties"] == theirs[key]["properties"], (name, key)
            assert _same_geometry(feature["geometry"], theirs[key]["geometry"]), (name, key)
    _check_cameras(two, one)
    b_areas = [f for f in two["key_areas"]["features"] if str(f["id"]).startswith(PEER)]
    assert b_areas and all(f["properties"]["side"] == B for f in b_areas)
    assert any(f["properties"]["covered"] for f in two["crossings"]["features"])
    assert any(not f["properties"]["covered"] for f in two["crossings"]["features"])


def _check_cameras(two: dict, one: dict) -> None:
    """The cameras of ``two`` are those of ``one``, B's from the peer (``server``).

    B serves its border partner only the cameras standing in the zone: one of B's
    outside it that sees in is listed by the one database only.
    """
    ours = {f["properties"]["code"]: f for f in two["cameras"]["features"]}
    theirs = {f["properties"]["code"]: f for f in one["cameras"]["features"]}
    assert ours and set(ours) <= set(theirs)
    assert all(theirs[c]["properties"]["side"] == B for c in set(theirs) - set(ours))
    for code, f in ours.items():
        p, q = dict(f["properties"]), dict(theirs[code]["properties"])
        assert p.pop("server") == (PEER if p["side"] == B else "local"), code
        assert q.pop("server") == "local"
        assert p == q, code
        assert f["geometry"] == theirs[code]["geometry"], code
        assert str(f["id"]).startswith(f"{PEER}:") == (p["side"] == B), code
    assert {f["properties"]["server"] for f in ours.values()} == {"local", PEER}


def test_the_two_server_border_is_the_one_database_border(cities):
    with engine(cities.a.db_url).begin() as conn:  # cold: nothing kept of B
        conn.execute(text("DELETE FROM peer_collections WHERE peer = :p"), {"p": PEER})
    started = time.perf_counter()
    cold = get(cities, BORDER)
    cold_s = time.perf_counter() - started
    assert cold.status_code == 200, cold.text[:300]
    one_s = []
    for _ in range(2):  # the first in this process computes the cameras' views afresh
        one_started = time.perf_counter()
        one = reference(cities)
        one_s.append(time.perf_counter() - one_started)
    _check_equal(cold.json(), one)
    sources = cold.json()["sources"]
    assert sources[A]["server"] == "local" and not sources[A]["stale"]
    assert sources[B]["server"] == "peer" and sources[B]["peer"] == PEER
    assert sources[B]["url"] == cities.b.url and not sources[B]["stale"]
    assert sources[B]["error"] is None
    read_at = dt.datetime.fromisoformat(sources[B]["as_of"])
    assert abs((dt.datetime.now(dt.UTC) - read_at).total_seconds()) < 60
    warm = []
    for _ in range(3):
        started = time.perf_counter()
        again = get(cities, BORDER)
        warm.append(time.perf_counter() - started)
        assert again.status_code == 200
        _check_equal(again.json(), one)
    # the pair the other way round: the same, B still from the peer
    reverse = get(cities, f"/api/border?a={B}&b={A}").json()
    _check_equal(reverse, reference(cities, B, A))
    assert reverse["sources"][B]["server"] == "peer" and not reverse["sources"][B]["stale"]
    assert reverse["sources"][A]["server"] == "local"
    print(f"\nborder {KEY}: two servers over HTTP cold {cold_s:.2f} s, warm (revalidated) "
          f"{min(warm):.2f}-{max(warm):.2f} s; one database in-process cold {one_s[0]:.2f} s, "
          f"warm {one_s[1]:.2f} s")


CAMERA = ("INSERT INTO cameras (geom, code, bearing, fov, range_m, status, "
          "jurisdiction_code) VALUES (ST_SetSRID(ST_MakePoint(:x, :y), 4326), "
          f"'XT-BORDER-TEST', 0, 360, 60, 'online', '{B}')")


def test_a_crossing_watched_by_the_other_citys_camera_is_covered(cities):
    before = get(cities, BORDER).json()
    crossing = next(f for f in before["crossings"]["features"]
                    if not f["properties"]["covered"])
    x, y = crossing["geometry"]["coordinates"]
    # a camera of B's (in B's database, and the same in the one database) over it
    for url in (cities.b.db_url, cities.reference_url):
        with engine(url).begin() as conn:
            conn.execute(text(CAMERA), {"x": x, "y": y})
    try:
        after = get(cities, BORDER).json()
        watched = next(f for f in after["crossings"]["features"] if f["id"] == crossing["id"])
        assert watched["properties"]["covered"]
        assert "XT-BORDER-TEST" in watched["properties"]["covered_by"]
        assert after["coverage"]["uncovered_crossings"] == \
            before["coverage"]["uncovered_crossings"] - 1
        _check_equal(after, reference(cities))
        # the camera is on A's map, from B's server, where B's database has it
        listed = {f["properties"]["code"]: f for f in after["cameras"]["features"]}
        camera = listed["XT-BORDER-TEST"]
        with engine(cities.b.db_url).connect() as conn:
            on_b = conn.execute(text(
                "SELECT id, ST_X(geom), ST_Y(geom), status, range_m FROM cameras "
                "WHERE code = 'XT-BORDER-TEST'")).one()
        assert camera["id"] == f"{PEER}:{on_b[0]}"
        assert camera["geometry"]["coordinates"] == [on_b[1], on_b[2]]
        assert (camera["properties"]["server"], camera["properties"]["side"],
                camera["properties"]["status"], camera["properties"]["range_m"]) == \
            (PEER, B, on_b[3], on_b[4])
        for f in after["crossings"]["features"]:  # each covering camera is on the map
            cams = [c for c in f["properties"]["covered_by"] if c in listed]
            posts = set(f["properties"]["covered_by"]) - set(cams)
            assert all(not p.isascii() for p in posts), posts  # checkpoints' names
    finally:
        for url in (cities.b.db_url, cities.reference_url):
            with engine(url).begin() as conn:
                conn.execute(text("DELETE FROM cameras WHERE code = 'XT-BORDER-TEST'"))
    assert get(cities, BORDER).json()["crossings"] == before["crossings"]


def test_the_patrol_plan_lands_on_both_servers(cities):
    r = plan(cities)
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    with engine(cities.reference_url).connect() as conn:
        outer = conn.begin()
        one = patrol_plan(conn, user_by_name(conn, "admin")[0], BorderQuery(A, B), TEAMS)
        outer.rollback()
    assert body["summary"] == one["summary"]

    def shapes(features):
        return sorted((f["properties"]["kind"], f["properties"]["city"],
                       f["properties"]["team"], json.dumps(f["geometry"])) for f in features)

    assert shapes(body["features"]) == shapes(one["features"])
    ours = [f for f in body["features"] if f["properties"]["kind"] == "route"]
    on_a = routes(cities.a.db_url)
    on_b = routes(cities.b.db_url)
    assert [f["id"] for f in ours if f["properties"]["city"] == A] == [r[0] for r in on_a]
    assert [f["id"] for f in ours if f["properties"]["city"] == B] == [r[0] for r in on_b]
    assert {f["properties"].get("server") for f in ours if f["properties"]["city"] == B} \
        == {PEER}
    assert len(on_a) == len(on_b) == 2
    # B's officers see B's routes in their own system
    seen = get(cities, f"/collections/patrol_routes/items?border={KEY}", "b", "police")
    assert seen.status_code == 200
    assert sorted(f["id"] for f in seen.json()["features"]) == [r[0] for r in on_b]
    # planning again replaces both sides' routes of this border, nothing else
    again = plan(cities)
    assert again.status_code == 200
    assert not {r[0] for r in routes(cities.a.db_url)} & {r[0] for r in on_a}
    assert not {r[0] for r in routes(cities.b.db_url)} & {r[0] for r in on_b}
    assert len(routes(cities.a.db_url)) == len(routes(cities.b.db_url)) == 2


def test_a_peer_that_stops_gives_its_kept_side_stale_and_no_plan(cities):
    fresh = get(cities, BORDER)
    assert fresh.status_code == 200 and not fresh.json()["sources"][B]["stale"]
    kept, on_a = peer_features(cities), routes(cities.a.db_url)
    cities.stop_b()
    try:
        started = time.perf_counter()
        down = get(cities, BORDER)
        took = time.perf_counter() - started
        assert down.status_code == 200 and took < TIMEOUT + 3, took
        body = down.json()
        source = body["sources"][B]
        assert source["stale"] and source["as_of"] == fresh.json()["sources"][B]["as_of"]
        assert PEER in source["error"] and "could not be reached" in source["error"]
        for name in ("crossings", "incidents", "hot_cells", "coverage", "key_areas"):
            assert body[name] == fresh.json()[name], name  # their side from the copy
        refused = plan(cities)
        assert refused.status_code == 502 and PEER in refused.json()["error"]
        assert routes(cities.a.db_url) == on_a and peer_features(cities) == kept
        # nothing kept: our side alone, and why
        with engine(cities.a.db_url).begin() as conn:
            conn.execute(text("DELETE FROM peer_collections WHERE peer = :p"), {"p": PEER})
        alone = get(cities, BORDER).json()
        assert alone["sources"][B]["as_of"] is None and alone["sources"][B]["stale"]
        assert "could not be reached" in alone["sources"][B]["error"]
        assert alone["incidents"]["by_side"][B] == 0 < alone["incidents"]["by_side"][A]
        assert not any(str(f["id"]).startswith(PEER) for f in alone["key_areas"]["features"])
    finally:
        cities.start_b()
    back = get(cities, BORDER).json()
    assert not back["sources"][B]["stale"] and back["incidents"] == fresh.json()["incidents"]


def test_a_frozen_peer_is_given_up_within_the_bound(cities):
    # the bound is on the wait for B: an answer may take what an answer with B awake
    # takes (on a busy machine, seconds) on top of it
    started = time.perf_counter()
    fresh = get(cities, BORDER).json()
    normal = time.perf_counter() - started
    on_a, on_b = routes(cities.a.db_url), routes(cities.b.db_url)
    os.kill(cities.b.proc.pid, signal.SIGSTOP)  # B takes connections and answers nothing
    try:
        started = time.perf_counter()
        frozen = get(cities, BORDER)
        took = time.perf_counter() - started
        started = time.perf_counter()
        resting = get(cities, BORDER)  # B is not asked again so soon: at once, the copy
        rest_took = time.perf_counter() - started
        started = time.perf_counter()
        refused = plan(cities)  # a plan waits longer for B's side, then is refused
        plan_took = time.perf_counter() - started
    finally:
        os.kill(cities.b.proc.pid, signal.SIGCONT)
    assert rest_took < TIMEOUT / 2 + normal, (rest_took, normal)
    assert resting.json()["sources"][B]["stale"]
    assert "asked again" in resting.json()["sources"][B]["error"]
    assert resting.json()["crossings"] == fresh["crossings"]
    assert refused.status_code == 502 and "did not answer within" in refused.json()["error"]
    assert plan_took < PLAN_TIMEOUT + 3 + normal, (plan_took, normal)
    assert routes(cities.a.db_url) == on_a and routes(cities.b.db_url) == on_b
    print(f"\nborder {KEY} with B frozen: answered in {took:.2f} s (bound {TIMEOUT:g} s), "
          f"then in {rest_took:.2f} s from the copy; a plan refused after {plan_took:.2f} s "
          f"(with B awake: {normal:.2f} s)")
    assert frozen.status_code == 200 and took < TIMEOUT + 1.5 + normal, (took, normal)
    source = frozen.json()["sources"][B]
    assert source["stale"] and "did not answer within" in source["error"]
    assert frozen.json()["crossings"] == fresh["crossings"]
    # B is asked again once the pause after its time-out is over (a plan asked at once)
    assert plan(cities).status_code == 200
    assert not get(cities, BORDER).json()["sources"][B]["stale"]  # back


GARBAGE = always(200, b"<html><body>router login</body></html>", "text/html")


def test_a_wrong_token_or_a_garbage_peer_is_said_and_nothing_written(cities):
    assert get(cities, BORDER).status_code == 200
    kept, on_a, on_b = peer_features(cities), routes(cities.a.db_url), routes(cities.b.db_url)
    token_file = cities.a.home / "peers" / f"{PEER}.token"
    good = token_file.read_text()
    with serving(Answering(GARBAGE)) as garbage:
        _wrong_token_or_garbage(cities, garbage.url, good, kept, on_a, on_b)


def _wrong_token_or_garbage(cities, garbage_url: str, good: str, kept: list,
                            on_a: list, on_b: list) -> None:
    token_file = cities.a.home / "peers" / f"{PEER}.token"
    try:
        # adding a peer with a wrong token or at a URL answering garbage: refused, no row
        for url, token, why in ((cities.b.url, "sg_wrong", "refused the token"),
                                (garbage_url, "sg_any", "not a GeoJSON FeatureCollection")):
            added = cities.a.cli("peers", "add", "other", url, "--border", f"{A}-430200",
                                 "--token-stdin", input=token + "\n")
            assert added.returncode != 0
            assert len(added.stderr.strip().splitlines()) == 1, added.stderr
            assert why in added.stderr, added.stderr
            assert token not in added.stderr + added.stdout
        assert "other" not in cities.a.cli("peers", "list").stdout
        # the peer's token no longer valid there
        token_file.write_text("sg_wrong\n")
        body = get(cities, BORDER).json()
        assert body["sources"][B]["stale"]
        assert "refused our token (HTTP 401" in body["sources"][B]["error"]
        refused = plan(cities)
        assert refused.status_code == 502 and "refused our token" in refused.json()["error"]
        token_file.write_text(good)
        # the peer's address now answers garbage
        with engine(cities.a.db_url).begin() as conn:
            conn.execute(text("UPDATE peers SET url = :u WHERE name = :p"),
                         {"u": garbage_url, "p": PEER})
        body = get(cities, BORDER).json()
        assert "not a FeatureCollection" in body["sources"][B]["error"]
        assert plan(cities).status_code == 502
        assert peer_features(cities) == kept
        assert routes(cities.a.db_url) == on_a and routes(cities.b.db_url) == on_b
    finally:
        token_file.write_text(good)
        with engine(cities.a.db_url).begin() as conn:
            conn.execute(text("UPDATE peers SET url = :u WHERE name = :p"),
                         {"u": cities.b.url, "p": PEER})


def _refusing(kept: set[int], refuse: dict[str, str]):
    """A relay's meddling: DELETE of the routes ``kept`` gets 412 (changed there
    meanwhile) or POST gets 503 (B failing), as ``refuse["method"]`` says."""
    def meddle(method: str, path: str):
        last = path.split("?")[0].rsplit("/", 1)[-1]
        if method == refuse["method"] and (
                method == "POST" or (last.isdigit() and int(last) in kept)):
            return (412 if method == "DELETE" else 503, {"error": "refused by the relay"},
                    "application/json")
        return None
    return meddle


def test_a_plan_the_peer_refuses_is_written_nowhere(cities):
    assert plan(cities).status_code == 200
    on_a, on_b = routes(cities.a.db_url), routes(cities.b.db_url)
    assert len(on_a) == len(on_b) == 2
    refuse = {"method": "DELETE"}
    with serving(Relay(cities.b.url, _refusing({r[0] for r in on_b}, refuse))) as relay:
        _refused_plan(cities, relay.url, refuse, on_a, on_b)


def _refused_plan(cities, relay_url: str, refuse: dict, on_a: list, on_b: list) -> None:
    with engine(cities.a.db_url).begin() as conn:
        conn.execute(text("UPDATE peers SET url = :u WHERE name = :p"),
                     {"u": relay_url, "p": PEER})
    try:
        conflict = plan(cities)  # a route of B's changed there meanwhile: 409
        assert conflict.status_code == 409, conflict.text[:300]
        assert PEER in conflict.json()["error"] and "changed" in conflict.json()["error"]
        assert routes(cities.a.db_url) == on_a and routes(cities.b.db_url) == on_b
        refuse["method"] = "POST"  # B fails while the routes are written there: 502
        failed = plan(cities)
        assert failed.status_code == 502, failed.text[:300]
        assert PEER in failed.json()["error"]
        assert routes(cities.a.db_url) == on_a and routes(cities.b.db_url) == on_b
    finally:
        with engine(cities.a.db_url).begin() as conn:
            conn.execute(text("UPDATE peers SET url = :u WHERE name = :p"),
                         {"u": cities.b.url, "p": PEER})


def test_what_leaves_a_city_is_the_zone(cities):
    assert get(cities, BORDER).status_code == 200
    with engine(cities.b.db_url).connect() as conn:
        zone = shapely.from_wkb(border_zone_wkb(conn, B, A))
        outside = {name: set(conn.execute(text(
            f"SELECT id FROM {name} t WHERE t.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, "
            "4326) AND NOT ST_Intersects(t.geom, ST_GeomFromWKB(:z, 4326))"),
            {"z": shapely.to_wkb(zone), **dict(zip(("x0", "y0", "x1", "y1"), zone.bounds,
                                                   strict=True))}).scalars())
            for name in ("roads", "buildings", "cameras", "incidents")}
        received = peer_features(cities)
        assert received
        for collection, fid, _wkt, _props in received:
            inside = conn.execute(text(
                f"SELECT ST_Intersects(geom, ST_GeomFromWKB(:z, 4326)) FROM {collection} "
                "WHERE id = :i"), {"z": shapely.to_wkb(zone), "i": fid}).scalar_one()
            assert inside, (collection, fid)
            assert fid not in outside.get(collection, ())
    assert any(outside.values()), "B holds features in the zone's box outside the zone"
    # B's access log: its border partner asked only for items within the zone's box
    asked = [line for line in cities.b.access_log().splitlines()
             if "safegrid.access" in line and line.rstrip().endswith(f" peer_{A}")]
    # (GET only: what B served; the POSTs and DELETEs are our plan's routes written there)
    items = [line.split()[5] for line in asked
             if line.split()[4] == "GET" and "/items" in line.split()[5]]
    assert items, "B logged the partner's requests"
    west, south, east, north = zone.bounds
    for path in items:
        query = parse_qs(urlsplit(path).query)
        layer = path.split("/")[2]
        if layer == "patrol_routes":  # our plan's routes there: this border's, one by one
            assert query.get("border") == [KEY] or path.split("?")[0].split("/")[-1].isdigit(), \
                path
            continue
        assert layer in (*COLLECTIONS, CELLS), path
        if query == {"limit": ["1"]} and layer == "jurisdictions":
            continue  # the check of `peers add` that the token is taken
        x0, y0, x1, y1 = (float(v) for v in query["bbox"][0].split(","))
        assert x0 <= west + 1e-4 and y0 <= south + 1e-4, path
        assert x1 >= east - 1e-4 and y1 >= north - 1e-4, path
        assert (x1 - x0) * (y1 - y0) <= (east - west + 1e-3) * (north - south + 1e-3), path


# --- the two-server set-up itself: each server holds its own city only, and the token a
# city's server presents to the other sees only the border zone there


def _setup_features(city, user, layer, **params):
    r = city.get(user, f"/collections/{layer}/items", params={"limit": 10000, **params})
    assert r.status_code == 200, r.text
    return r.json()["features"]


def test_each_server_holds_its_own_city(two_cities):
    print(f"two cities set up in {two_cities.setup_seconds:.1f} s: {two_cities.steps}")
    for city, prefix, others in ((two_cities.a, "4301", {"430200", B}),
                                 (two_cities.b, "4303", {"430200", A})):
        for layer in ("cameras", "roads", "incidents", "households"):
            codes = {f["properties"]["jurisdiction_code"]
                     for f in _setup_features(city, "admin", layer)}
            assert codes and all(c.startswith(prefix) for c in codes), (city.code, layer)
        juris = _setup_features(city, "admin", "jurisdictions")
        outside = {f["properties"]["code"] for f in juris
                   if not f["properties"]["code"].startswith(prefix)}
        assert outside == others
        # a token of one installation means nothing to the other
        other = two_cities.b if city is two_cities.a else two_cities.a
        r = other.get("admin", "/collections/cameras/items",
                      headers={"Authorization": f"Bearer {city.tokens['admin']}"})
        assert r.status_code == 401
    listed = two_cities.a.cli("peers", "list")
    assert listed.returncode == 0 and "xiangtan" in listed.stdout
    assert two_cities.b.url in listed.stdout and two_cities.b.tokens["peer"] not in listed.stdout


def test_the_peer_token_sees_only_the_zone(two_cities):
    b = two_cities.b
    db = create_engine(b.db_url)
    with db.connect() as conn:
        zone = shapely.from_wkb(border_zone_wkb(conn, B, A))
        total = conn.execute(text("SELECT count(*) FROM cameras")).scalar_one()
    db.dispose()
    for layer in ("cameras", "roads", "checkpoints", "key_areas"):
        seen = _setup_features(b, "peer", layer)
        assert seen, layer
        for f in seen:
            assert shapely.geometry.shape(f["geometry"]).intersects(zone.buffer(1e-9)), layer
    cameras = _setup_features(b, "peer", "cameras")
    assert 0 < len(cameras) < total
    # exactly the cameras of the zone, as the database sees them
    box = ",".join(map(str, zone.bounds))
    inside = [f for f in _setup_features(b, "admin", "cameras", bbox=box)
              if shapely.geometry.shape(f["geometry"]).intersects(zone)]
    assert sorted(f["id"] for f in cameras) == sorted(f["id"] for f in inside)


def test_b_stops_and_comes_back_on_the_same_url(two_cities):
    url = two_cities.b.url
    two_cities.stop_b()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/healthz", timeout=2)
    two_cities.start_b()
    assert two_cities.b.url == url
    assert two_cities.b.get("peer", "/collections/cameras/items").status_code == 200


def _b_gives(cities, incidents: str) -> None:
    """B's administrator decides what A's server is given of B's incidents."""
    with engine(cities.b.db_url).begin() as conn:
        set_partner_incidents(conn, f"peer_{A}", incidents)


def test_a_peer_giving_cells_only_gives_the_same_border(cities):
    """B gives its incidents as counts per cell only: A is refused B's points, reads the
    cells, and its border (incidents per side, hour and category, hot cells, crossings)
    is still the one-database border; a plan is still made and lands on both."""
    _b_gives(cities, "cells")
    try:
        started = len(cities.b.access_log())
        body = get(cities, BORDER).json()
        _check_equal(body, reference(cities))
        assert body["sources"][B]["incidents"] == "cells"
        assert not body["sources"][B]["stale"]
        assert "does not share incidents" in body["sources"][B]["error"]
        reverse = get(cities, f"/api/border?a={B}&b={A}").json()
        _check_equal(reverse, reference(cities, B, A))
        kept = {collection for collection, *_ in peer_features(cities)}
        assert CELLS in kept and "incidents" not in kept
        asked = [line.split() for line in cities.b.access_log()[started:].splitlines()
                 if "safegrid.access" in line and line.rstrip().endswith(f" peer_{A}")]
        served = {(words[5].split("?")[0], words[6]) for words in asked}
        assert ("/collections/incidents/items", "403") in served
        assert (f"/collections/{CELLS}/items", "200") in served
        assert all(status != "200" for path, status in served if "/incidents/" in path)
        made = plan(cities)
        assert made.status_code == 200, made.text[:300]
        assert made.json()["summary"]["incidents"] == body["incidents"]["total"]
        cities.stop_b()  # the kept cells stand in for B's incidents, marked stale
        try:
            kept = get(cities, BORDER).json()
        finally:
            cities.start_b()
        assert kept["sources"][B]["stale"] and kept["sources"][B]["incidents"] == "cells"
        assert kept["incidents"] == body["incidents"]
        assert kept["hot_cells"] == body["hot_cells"]
    finally:
        _b_gives(cities, "points")
    again = get(cities, BORDER).json()
    assert again["sources"][B]["incidents"] == "points"
    assert "incidents" in {collection for collection, *_ in peer_features(cities)}
    assert CELLS not in {collection for collection, *_ in peer_features(cities)}


@pytest.mark.browser
def test_the_border_page_says_which_server_each_side_came_from(cities):
    """In the browser, by mouse: the legend names each side's server and time, the
    partner's side dashed and its cameras hollow (key and popup), the plan lands on both
    servers; a partner giving cells only is said under its line (Chinese, English); B
    stopped: the old copy is said (role=alert) and the plan refused with 502."""
    a, b = cities.a, cities.b
    with logged_in(a.url, "admin", "/map/border?a=430100&b=430300&width=1500") as page:
        page.wait_for_selector("#sg-message.ok")
        drawn = page.evaluate(f"{STATE}.state.border")
        ours, theirs = drawn["sources"]["430100"], drawn["sources"]["430300"]
        assert ours["server"] == "local" and not ours["stale"]
        assert (theirs["server"], theirs["peer"], theirs["url"], theirs["stale"]) == \
            ("peer", "xiangtan", b.url, False)
        names = {f["properties"]["side"]: f["properties"]["name"]
                 for f in drawn["zone"]["features"]}
        lines = page.locator("#sg-sources div").all_text_contents()
        assert lines == [
            "数据来源",
            f" {names['430100']}一侧：本地 (本服务器) · 截至 {clock(ours['as_of'])}",
            f" {names['430300']}一侧：对方服务器 xiangtan ({b.url}) · 截至 "
            f"{clock(theirs['as_of'])}"], lines
        assert page.locator(".sg-source-warn").count() == 0
        assert dashed_sides(page) == {"430100": False, "430300": True}
        assert swatch_borders(page)[:2] == ["", "dashed"]  # the key matches the map
        shot(page, "border-two-servers.png")

        # the cameras: Xiangtan's (read from its server) hollow, said in the key and popup
        cameras = drawn["cameras"]["features"]
        theirs = {f["properties"]["code"]: f for f in cameras
                  if f["properties"]["server"] == "xiangtan"}
        assert theirs and len(theirs) < len(cameras)
        assert page.locator("path.sg-camera").count() == len(cameras)
        assert page.locator("path.sg-camera-peer").count() == len(theirs)
        key = page.locator("#sg-legend div").all_text_contents()
        assert " 摄像机 (本服务器)" in key and " 对方服务器 xiangtan 的摄像机 (空心)" in key
        hollow = page.eval_on_selector("#sg-legend .sg-key-camera-peer",
                                       "s => getComputedStyle(s).backgroundColor")
        assert hollow == "rgb(255, 255, 255)"
        popup = open_popup(page, "path.sg-camera-peer")
        assert "数据来源对方服务器 xiangtan" in popup, popup
        code = next(c for c in theirs if c in popup)
        with engine(b.db_url).connect() as conn:  # the camera as Xiangtan's database has it
            lon, lat = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM cameras "
                                         "WHERE code = :c"), {"c": code}).one()
        assert theirs[code]["geometry"]["coordinates"] == [lon, lat]
        shot(page, "border-two-servers-camera.png")
        page.click(".leaflet-popup-close-button")

        # the plan lands on both servers: Xiangtan's team's route on Xiangtan's server
        page.fill("#sg-teams-a", "1")
        page.fill("#sg-teams-b", "1")
        page.click("#sg-plan")
        wait_for(page, f"{STATE}.state.plan !== null")
        page.wait_for_selector("#sg-message.ok")
        on_b = b.get("admin", "/collections/patrol_routes/items?border=430100-430300").json()
        assert [f["properties"]["jurisdiction_code"] for f in on_b["features"]] == ["430300"]
        shot(page, "border-two-servers-plan.png")

        # B now gives its incidents as counts per cell only: said under its line
        _b_gives(cities, "cells")
        try:
            page.click("#sg-show")
            wait_for(page, f"{STATE}.state.border.sources['430300'].incidents === 'cells'")
            page.wait_for_selector("#sg-message.ok")
            assert page.text_content(".sg-source-note") == \
                "ⓘ 对方警情仅按 250 米网格计数共享 (不含单起警情的位置)"
            assert page.locator(".sg-source-warn").count() == 0
            shot(page, "border-two-servers-cells.png")
        finally:
            _b_gives(cities, "points")
        page.click("#sg-show")
        wait_for(page, f"{STATE}.state.border.sources['430300'].incidents === 'points'")
        assert page.locator(".sg-source-note").count() == 0

        cities.stop_b()
        try:
            page.click("#sg-show")
            wait_for(page, f"{STATE}.state.border.sources['430300'].stale")
            page.wait_for_selector("#sg-message.ok")
            kept = page.evaluate(f"{STATE}.state.border.sources['430300']")
            assert page.text_content(".sg-source-warn") == \
                f"⚠ 对方数据暂不可用，显示 {clock(kept['as_of'])} 的缓存"
            assert page.get_attribute(".sg-source-warn", "role") == "alert"
            shot(page, "border-two-servers-stale.png")
            page.click("#sg-plan")
            page.wait_for_selector("#sg-message.error")
            said = page.text_content("#sg-message")
            assert said.startswith("未完成 (502)：对方市的服务器未能完成，方案未写入（"), said
            assert "xiangtan" in said
            shot(page, "border-two-servers-stale-plan.png")

            page.click("#sg-panel a:has-text('English')")
            page.wait_for_url("**lang=en**")
            page.wait_for_selector(".sg-source-warn")
            kept = page.evaluate(f"{STATE}.state.border.sources['430300']")
            assert page.text_content(".sg-source-warn") == (
                "⚠ the partner's data are unavailable for now: showing the copy of "
                f"{clock(kept['as_of'])}")
            assert f"partner server xiangtan ({b.url}) · as of" in \
                page.text_content("#sg-sources")
            shot(page, "border-two-servers-stale-en.png")
        finally:
            cities.start_b()
        assert page.errors == []
    _b_gives(cities, "cells")
    try:
        with logged_in(a.url, "admin", "/map/border?a=430100&b=430300&lang=en") as page:
            page.wait_for_selector("#sg-message.ok")
            assert page.text_content(".sg-source-note") == (
                "ⓘ the partner shares its incidents only as counts per 250 m cell (no "
                "single incident's place)")
            assert page.errors == []
    finally:
        _b_gives(cities, "points")
