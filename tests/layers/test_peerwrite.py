"""Patrol routes written to a peer's server through its OGC API - Features, Part 4.

The peer is a real ``safegrid serve`` (the shared test server, holding Xiangtan 430300)
with a border_partner user of Xiangtan's for Changsha 430100, as Xiangtan's administrator
would issue one; we are Changsha. A relay in front of it lets a Xiangtan officer change
a route between our reading it and our deleting it; small loopback servers play a peer
that answers garbage, answers nothing or is not there.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import time
from collections.abc import Iterator

import numpy as np
import pytest
import requests
import shapely
from pyproj import Transformer
from sqlalchemy import text

from layers.access import border_zone_wkb
from layers.errors import PeerConflict, PeerUnavailable
from layers.peers import Peer, peers_dir
from layers.peerwrite import replace_routes, routes_on_peer

from ..peerhelp import Answering, Relay, always, serving

pytestmark = pytest.mark.db

A, B = "430100", "430300"  # ours, theirs
KEY = f"{A}-{B}"
PARTNER = "xt.partner"  # Xiangtan's border partner for Changsha, on the peer
TO_METRES = Transformer.from_crs(4326, 32649, always_xy=True)
TO_LONLAT = Transformer.from_crs(32649, 4326, always_xy=True)


@pytest.fixture(scope="module")
def partner_token(db, demo_small) -> Iterator[str]:
    """A token of Xiangtan's border_partner user for Changsha (jurisdiction B, partner A)."""
    from layers.users import add_user, issue_token, remove_user

    with db.begin() as conn:
        add_user(conn, PARTNER, "border_partner", "xt-partner-2026", B, A)
        token = issue_token(conn, PARTNER)
    yield token
    with db.begin() as conn:
        remove_user(conn, PARTNER)


@pytest.fixture(scope="module")
def kept_routes(db, demo_small) -> Iterator[None]:
    """The patrol routes are put back as they were after this module."""
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE kept_peer_routes AS SELECT * FROM patrol_routes"))
    yield
    with db.begin() as conn:
        conn.execute(text("DELETE FROM patrol_routes"))
        conn.execute(text("INSERT INTO patrol_routes SELECT * FROM kept_peer_routes"))
        conn.execute(text("DROP TABLE kept_peer_routes"))


def as_peer(url: str, token: str, home, monkeypatch, name: str = "xiangtan") -> Peer:
    """Peer ``name`` at ``url`` whose token file (0600, in ``home``) holds ``token``."""
    monkeypatch.setenv("SAFEGRID_HOME", str(home))
    folder = peers_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{name}.token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return Peer(name, url, A, B, dt.datetime.now(dt.UTC), None, None, None)


@pytest.fixture
def peer(server, partner_token, kept_routes, tmp_path, monkeypatch) -> Peer:
    """The test server as Changsha's peer for the A-B border, with the partner's token."""
    return as_peer(server, partner_token, tmp_path, monkeypatch)


def _metric(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(TO_METRES.transform(*xy.T)))


def _lonlat(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(TO_LONLAT.transform(*xy.T)))


@pytest.fixture(scope="module")
def places(db, demo_small) -> dict:
    """Metric (UTM 49N) zone, Xiangtan's side of it and a start point on that side."""
    with db.connect() as conn:
        zone = shapely.from_wkb(border_zone_wkb(conn, B, A))
        city = shapely.from_wkb(bytes(conn.execute(text(
            "SELECT ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"), {"c": B}
        ).scalar_one()))
    zone, city = _metric(zone), _metric(city)
    side = zone.intersection(city)
    return {"zone": zone, "city": city, "side": side, "start": side.representative_point()}


def route(places: dict, name: str, team: int, beyond_m: float = 1000.0) -> dict:
    """A Xiangtan team's route from inside the zone to ``beyond_m`` metres past its edge."""
    start, city, zone = places["start"], places["city"], places["zone"]
    towards = shapely.Point(city.centroid.x - start.x, city.centroid.y - start.y)
    unit = (towards.x / towards.distance(shapely.Point(0, 0)),
            towards.y / towards.distance(shapely.Point(0, 0)))
    shift = (team - 1) * 150.0  # side by side, across the way in
    first = shapely.Point(start.x - unit[1] * shift, start.y + unit[0] * shift)
    steps = [shapely.Point(first.x + unit[0] * d, first.y + unit[1] * d)
             for d in range(0, 20_000, 50)]
    end = next(p for p in steps if p.distance(zone) >= beyond_m)
    line = shapely.LineString([first, end])
    return {"type": "Feature", "geometry": shapely.geometry.mapping(_lonlat(line)),
            "properties": {"name": name, "border": KEY, "team": team, "workload": 1.5,
                           "hours": "20:00-02:00", "jurisdiction_code": B}}


def stored(db, where: str = "border = :k", **params) -> dict[int, tuple]:
    """Routes in the peer's database: id -> (name, version, border, updated_by)."""
    with db.connect() as conn:
        rows = conn.execute(text(f"SELECT id, name, version, border, updated_by, hours "
                                 f"FROM patrol_routes WHERE {where} ORDER BY id"),
                            {"k": KEY, **params})
        return {r.id: (r.name, r.version, r.border, r.updated_by, r.hours) for r in rows}


def audit_rows(db) -> int:
    with db.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM audit")).scalar_one()


def test_replacing_twice_leaves_the_second_set_and_other_borders_alone(db, peer, places):
    others = stored(db, "border <> :k")
    assert others, "the demo has routes of other borders"
    first = [route(places, "湘潭第1巡逻队", 1), route(places, "湘潭第2巡逻队", 2)]
    # the route leaves the zone by a kilometre: the peer's scope (the zone) still takes it
    assert _metric(shapely.geometry.shape(first[0]["geometry"])).difference(
        places["zone"]).length > 900
    ids = replace_routes(peer, KEY, first)
    assert len(ids) == 2
    on_peer = routes_on_peer(peer, KEY)
    assert [f["id"] for f in on_peer] == ids
    assert [f["properties"]["name"] for f in on_peer] == ["湘潭第1巡逻队", "湘潭第2巡逻队"]
    assert {v[3] for v in stored(db).values()} == {PARTNER}  # audited as the partner

    second = [route(places, "湘潭第1巡逻队(新)", 1, beyond_m=1800)]
    again = replace_routes(peer, KEY, second)
    now = stored(db)
    assert list(now) == again and now[again[0]][0] == "湘潭第1巡逻队(新)"
    assert not set(ids) & set(now)
    assert [f["id"] for f in routes_on_peer(peer, KEY)] == again
    assert stored(db, "border <> :k") == others  # nothing else touched


@pytest.mark.parametrize("nth", [1, 2])
def test_a_route_changed_on_the_peer_meanwhile_is_a_conflict_and_kept(
        db, server, tokens, peer, places, nth, tmp_path, monkeypatch):
    planned = replace_routes(peer, KEY, [route(places, "湘潭第1巡逻队", 1),
                                         route(places, "湘潭第2巡逻队", 2)])
    changed: list[int] = []

    def officer_edits(path: str) -> None:  # a Xiangtan officer moves the patrol's hours
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        r = requests.get(server + path, headers=admin, timeout=30)
        feature = r.json()
        feature["properties"]["hours"] = "08:00-12:00"
        feature.pop("links", None)
        put = requests.put(server + path, headers={**admin, "If-Match": r.headers["ETag"],
                                                   "Content-Type": "application/geo+json"},
                           data=json.dumps(feature), timeout=30)
        assert put.status_code == 200, put.text
        changed.append(feature["id"])

    deletes: list[str] = []

    def meanwhile(method: str, path: str) -> None:  # before the nth DELETE reaches the peer
        if method == "DELETE":
            deletes.append(path)
            if len(deletes) == nth:
                officer_edits(path)

    before = audit_rows(db)
    with serving(Relay(server, meanwhile)) as relay:
        via = as_peer(relay.url, peer_token(peer), tmp_path, monkeypatch)
        with pytest.raises(PeerConflict) as refused:
            replace_routes(via, KEY, [route(places, "新方案", 1)])
    name = stored(db)[changed[0]][0]
    assert f"route {name!r} (id {changed[0]})" in str(refused.value)
    assert "xiangtan" in str(refused.value)
    now = stored(db)
    # the officer's change is kept; the new plan is not there; the old plan is whole
    assert now[changed[0]][4] == "08:00-12:00"
    assert sorted(v[0] for v in now.values()) == ["湘潭第1巡逻队", "湘潭第2巡逻队"]
    if nth == 1:  # refused at the first deletion: nothing was deleted
        assert list(now) == planned
    else:  # the first one deleted before it is put back (a new id)
        assert changed[0] in now and len(set(now) - set(planned)) == 1
    assert audit_rows(db) > before  # every step, the undoing too, is in the peer's audit


def peer_token(peer: Peer) -> str:
    from layers.peers import token_of

    return token_of(peer)


def test_a_wrong_token_is_refused_and_nothing_is_written(db, server, places, kept_routes,
                                                         tmp_path, monkeypatch):
    before, audited = stored(db), audit_rows(db)
    wrong = as_peer(server, "not-a-token-of-theirs", tmp_path, monkeypatch)
    started = time.monotonic()
    with pytest.raises(PeerUnavailable) as refused:
        replace_routes(wrong, KEY, [route(places, "不该写入", 1)])
    message = str(refused.value)
    assert "peer xiangtan" in message and "401" in message and server in message
    assert "not-a-token" not in message
    assert time.monotonic() - started < 5
    assert stored(db) == before and audit_rows(db) == audited


def test_a_route_the_peer_refuses_midway_leaves_nothing_of_the_plan(db, peer, places):
    planned = replace_routes(peer, KEY, [route(places, "湘潭第1巡逻队", 1)])
    # the second route lies in Xiangtan, away from the zone: the peer's scope refuses it
    far = route(places, "越界路线", 2)
    away = places["city"].difference(places["zone"].buffer(600)).representative_point()
    deep = shapely.LineString([away, shapely.Point(away.x, away.y + 100)])
    assert deep.distance(places["zone"]) > 500 and places["city"].contains(deep)
    far["geometry"] = shapely.geometry.mapping(_lonlat(deep))
    with pytest.raises(PeerUnavailable) as refused:
        replace_routes(peer, KEY, [route(places, "新方案第1队", 1), far])
    message = str(refused.value)
    assert "refused" in message and "越界路线" in message and "403" in message, message
    assert "the plan was not written to peer xiangtan" in message
    now = stored(db)
    assert list(now) == planned  # the first new route was deleted again, the old kept
    with db.connect() as conn:
        made = conn.execute(text(
            "SELECT count(*) FROM audit WHERE layer = 'patrol_routes' AND action = 'insert' "
            "AND after->'properties'->>'name' = '新方案第1队'")).scalar_one()
    assert made == 1  # it was written, then taken back


@pytest.mark.parametrize(("status", "kind", "body", "said"), [
    (200, "text/html", b"<html><body>It works!</body></html>", "not JSON"),
    (200, "application/json", b'[1, 2, 3]', "not a GeoJSON FeatureCollection"),
    (200, "application/geo+json", b'{"type": "FeatureCollection", "features": [{"id": "x"}]}',
     "without a whole-number id"),
    (500, "text/plain", b"Internal Server Error", "HTTP 500"),
    (302, "text/html", b"", "HTTP 302"),
])
def test_a_peer_answering_garbage_is_unavailable(places, tmp_path, monkeypatch, status, kind,
                                                 body, said):
    with serving(Answering(always(status, body, kind))) as httpd:
        url = httpd.url
        odd = as_peer(url, "some-token", tmp_path, monkeypatch)
        with pytest.raises(PeerUnavailable) as refused:
            replace_routes(odd, KEY, [route(places, "不该写入", 1)])
        with pytest.raises(PeerUnavailable):
            routes_on_peer(odd, KEY)
    assert said in str(refused.value) and f"peer xiangtan ({url})" in str(refused.value)


def test_a_silent_peer_times_out_and_a_missing_one_is_said(places, tmp_path, monkeypatch):
    with serving(Answering(always(200, b"{}", "application/json"), delay=3)) as httpd:
        url = httpd.url
        silent = as_peer(url, "some-token", tmp_path, monkeypatch)
        started = time.monotonic()
        with pytest.raises(PeerUnavailable) as refused:
            replace_routes(silent, KEY, [route(places, "不该写入", 1)], timeout=0.5)
        assert time.monotonic() - started < 2
        assert "did not answer within 0.5 s" in str(refused.value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    gone = as_peer(closed, "some-token", tmp_path, monkeypatch)
    with pytest.raises(PeerUnavailable) as refused:
        replace_routes(gone, KEY, [route(places, "不该写入", 1)])
    assert "could not be reached" in str(refused.value)
