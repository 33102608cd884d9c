"""Reading the other city's side of a border from its server (layers.peerclient).

The peer is a real ``safegrid serve`` (the shared test server, holding Xiangtan 430300)
read with the token of a border_partner user of Xiangtan's for Changsha 430100, as
Xiangtan's administrator would issue one; we are Changsha. What it serves is checked
against PostGIS (the features of the zone's bounding box within its partner scope),
kept in peer_features, revalidated by ETag. Small loopback servers play a peer that
answers garbage, refuses the token, keeps its incidents to itself, loops its pages,
answers slowly or is not there: each gives its reason, the kept copy marked stale, and
nothing kept is lost.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import shapely
from sqlalchemy import text

from layers.access import border_zone_wkb
from layers.peerclient import COLLECTIONS, cached_side, read_their_side
from layers.peers import Peer, peer_for, peers_dir

from ..peerhelp import Answering, serving

pytestmark = pytest.mark.db

A, B = "430100", "430300"  # ours, theirs
READER = "xt.reader"  # Xiangtan's border partner for Changsha, on the peer


@pytest.fixture(scope="module")
def reader_token(db, demo_small) -> Iterator[str]:
    """A token of Xiangtan's border_partner user for Changsha (jurisdiction B, partner A)."""
    from layers.users import add_user, issue_token, remove_user

    with db.begin() as conn:
        add_user(conn, READER, "border_partner", "xt-reader-2026", B, A)
        token = issue_token(conn, READER)
    yield token
    with db.begin() as conn:
        remove_user(conn, READER)


@contextmanager
def registered(db, url: str, token: str, home, monkeypatch, name: str) -> Iterator[Peer]:
    """Peer ``name`` at ``url`` (a row in peers, its token in a 0600 file), removed after."""
    monkeypatch.setenv("SAFEGRID_HOME", str(home))
    folder = peers_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    (folder / f"{name}.token").write_text(token + "\n")
    (folder / f"{name}.token").chmod(0o600)
    with db.begin() as conn:
        conn.execute(text("INSERT INTO peers (name, url, a, b, added_by) VALUES "
                          "(:n, :u, :a, :b, 'test')"), {"n": name, "u": url, "a": A, "b": B})
    try:
        yield Peer(name, url, A, B, dt.datetime.now(dt.UTC), None, None, None)
    finally:
        with db.begin() as conn:
            conn.execute(text("DELETE FROM peers WHERE name = :n"), {"n": name})


@pytest.fixture(scope="module")
def zone(db, demo_small) -> shapely.Geometry:
    """The A-B border zone (lon/lat) as the peer's border_partner scope draws it."""
    with db.connect() as conn:
        return shapely.from_wkb(border_zone_wkb(conn, B, A))


def kept(db, name: str) -> dict[str, list[int]]:
    """What peer_features holds of peer ``name``: collection -> feature ids."""
    with db.connect() as conn:
        rows = conn.execute(text("SELECT collection, feature_id FROM peer_features "
                                 "WHERE peer = :p ORDER BY 1, 2"), {"p": name}).all()
    out: dict[str, list[int]] = {}
    for collection, fid in rows:
        out.setdefault(collection, []).append(fid)
    return out


def peer_row(db, name: str):
    with db.connect() as conn:
        return conn.execute(text("SELECT last_contact, last_error, last_error_at FROM peers "
                                 "WHERE name = :n"), {"n": name}).one()


def test_the_zone_is_read_kept_and_revalidated(db, server, live_server, reader_token, zone,
                                               tmp_path, monkeypatch):
    with registered(db, server, reader_token, tmp_path, monkeypatch, "xt-read") as peer:
        side = read_their_side(db.connect(), peer, zone)
        assert not side.stale and side.error is None and side.as_of is not None
        # what the peer holds in the zone's box and its scope, by PostGIS
        with db.connect() as conn:
            for name in ("roads", "checkpoints", "cameras", "buildings", "key_areas",
                         "incidents"):
                expected = conn.execute(text(
                    f"SELECT id FROM {name} t WHERE ST_Intersects(t.geom, ST_GeomFromWKB(:z, "
                    "4326)) AND ST_Intersects(t.geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, "
                    "4326)) ORDER BY id"), {"z": shapely.to_wkb(zone), **dict(zip(
                        ("x0", "y0", "x1", "y1"), zone.bounds, strict=True))}).scalars().all()
                assert [f.id for f in side.features(name)] == expected, name
                assert expected or name == "checkpoints", f"the demo has {name} in the zone"
        assert B in {f.properties["code"] for f in side.features("jurisdictions")}
        assert kept(db, "xt-read") == {c: [f.id for f in side.features(c)]
                                       for c in COLLECTIONS if side.features(c)}
        for f in side.features("roads"):  # nothing outside the zone was served
            assert f.geometry.intersects(zone.buffer(1e-7))
        assert peer_row(db, "xt-read").last_contact is not None

        served = live_server.output().count(" 304 ")
        again = read_their_side(db.connect(), peer, zone)
        assert again.as_of > side.as_of and not again.stale
        assert {c: [f.id for f in again.features(c)] for c in COLLECTIONS} == \
            {c: [f.id for f in side.features(c)] for c in COLLECTIONS}
        tags = {c.name: c.etag for c in side.collections.values()}
        assert all(tags.values()), tags  # the peer's ETags: each collection answers 304
        deadline = time.monotonic() + 5  # the server's access log is written after answering
        while live_server.output().count(" 304 ") < served + len(COLLECTIONS) and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        assert live_server.output().count(" 304 ") >= served + len(COLLECTIONS)
        assert again.stamp == side.stamp  # nothing changed there: the same state
        # a road written there inside the zone is read at once, and its removal too
        at = zone.representative_point()
        with db.begin() as conn:
            road = conn.execute(text(
                "INSERT INTO roads (geom, name, class) VALUES (ST_SetSRID(ST_MakeLine("
                "ST_MakePoint(:x - 0.001, :y), ST_MakePoint(:x + 0.001, :y)), 4326), "
                "'对端新路', 'local') RETURNING id"), {"x": at.x, "y": at.y}).scalar_one()
        try:
            changed = read_their_side(db.connect(), peer, zone)
            assert road in [f.id for f in changed.features("roads")]
            assert changed.stamp != again.stamp and road in kept(db, "xt-read")["roads"]
        finally:
            with db.begin() as conn:
                conn.execute(text("DELETE FROM roads WHERE id = :i"), {"i": road})
        gone = read_their_side(db.connect(), peer, zone)
        assert road not in [f.id for f in gone.features("roads")]
        assert road not in kept(db, "xt-read")["roads"]


def _features(path: str, zone: shapely.Geometry) -> list[dict]:
    """One small feature per collection, inside the zone."""
    at = zone.representative_point()
    if "/jurisdictions/" in path:
        return []
    return [{"type": "Feature", "id": 7, "geometry": shapely.geometry.mapping(at),
             "properties": {"name": "假", "code": "F-7", "bearing": 0, "fov": 90,
                            "range_m": 50, "status": "online", "class": "local",
                            "category": "fraud", "occurred_at": "2026-11-01T10:00:00+08:00"}}]


def _fine(zone):
    return lambda path: (200, {"type": "FeatureCollection", "features": _features(path, zone),
                               "links": []})


@pytest.mark.parametrize("answer, reason", [
    (lambda path: (200, b"<html>hello</html>"), "not a FeatureCollection"),
    (lambda path: (200, {"type": "FeatureCollection", "features": [{"id": 1}]}),
     "not a FeatureCollection"),
    (lambda path: (200, {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": 1, "properties": {},
         "geometry": {"type": "Point", "coordinates": [500, 30]}}]}), "no usable lon/lat"),
    (lambda path: (401, {"error": "unknown token"}), "refused our token (HTTP 401"),
    (lambda path: (500, b"oops"), "answered HTTP 500"),
])
def test_a_peer_failing_keeps_the_copy_and_says_why(db, demo_small, zone, tmp_path,
                                                    monkeypatch, answer, reason):
    with serving(Answering(_fine(zone))) as fake, \
            registered(db, fake.url, "tok-sekret-1", tmp_path, monkeypatch, "fake") as peer:
        first = read_their_side(db.connect(), peer, zone)
        assert not first.stale and first.features("roads")[0].id == 7
        before = kept(db, "fake")
        assert before["roads"] == [7]
        assert set(fake.tokens) == {"Bearer tok-sekret-1"}
        fake.answer = answer
        later = read_their_side(db.connect(), peer, zone)
        assert later.stale and reason in later.error, later.error
        assert "fake" in later.error and "tok-sekret-1" not in later.error
        assert later.as_of == first.as_of  # the kept copy, with its time
        assert later.features("roads")[0].id == 7
        assert kept(db, "fake") == before  # a failed read destroys nothing
        row = peer_row(db, "fake")
        assert reason in row.last_error and row.last_error_at is not None
        with pytest.raises(Exception, match="fake"):
            later.require_fresh()


def test_a_peer_keeping_its_incidents_is_read_without_them(db, demo_small, zone, tmp_path,
                                                           monkeypatch):
    def answer(path):
        if "/incidents/" in path:
            return 403, {"error": "role border_partner may not read incidents"}
        return _fine(zone)(path)

    with serving(Answering(answer)) as fake, \
            registered(db, fake.url, "tok", tmp_path, monkeypatch, "fake") as peer:
        side = read_their_side(db.connect(), peer, zone)
    assert not side.stale and side.as_of is not None
    assert side.features("incidents") == () and side.collections["incidents"].refused
    assert "does not share incidents" in side.error
    side.require_fresh()  # a policy is not a failure


def test_pages_are_followed_on_the_same_server_only_and_never_in_a_loop(
        db, demo_small, zone, tmp_path, monkeypatch):
    at = shapely.geometry.mapping(zone.representative_point())

    def paged(path):
        n = int(path.split("after=")[1]) if "after=" in path else 0
        link = [{"rel": "next", "href": f"{fake.url}/collections/roads/items?after={n + 1}"}]
        return 200, {"type": "FeatureCollection", "links": link if n < 2 else [],
                     "features": [{"type": "Feature", "id": n, "geometry": at,
                                   "properties": {}}]}

    with serving(Answering(paged)) as fake, \
            registered(db, fake.url, "tok", tmp_path, monkeypatch, "fake") as peer:
        side = read_their_side(db.connect(), peer, zone)
        assert [f.id for f in side.features("roads")] == [0, 1, 2]
        assert all("bbox=" in p for p in fake.paths if "after=" not in p)
        fake.answer = lambda path: (200, {
            "type": "FeatureCollection", "features": [],
            "links": [{"rel": "next", "href": f"{fake.url}/collections/roads/items?after=1"}]})
        assert "loops" in read_their_side(db.connect(), peer, zone).error
        fake.answer = lambda path: (200, {
            "type": "FeatureCollection", "features": [],
            "links": [{"rel": "next", "href": "http://elsewhere.invalid/items?after=1"}]})
        side = read_their_side(db.connect(), peer, zone)
        assert "leaves its server" in side.error
        assert [f.id for f in side.features("roads")] == [0, 1, 2]  # kept


def test_a_slow_peer_is_given_up_in_bounded_time_and_a_missing_one_is_said(
        db, demo_small, zone, tmp_path, monkeypatch):
    with serving(Answering(_fine(zone), delay=30)) as fake, \
            registered(db, fake.url, "tok", tmp_path, monkeypatch, "slow") as peer:
        started = time.monotonic()
        # a bound of 1 s instead of the default 4 s: the same give-up, sooner
        side = read_their_side(db.connect(), peer, zone, timeout=1.0)
        took = time.monotonic() - started
        assert 0.9 <= took < 1.0 + 1.0, took
        assert side.stale and side.absent and "did not answer within" in side.error
        assert kept(db, "slow") == {}
        # asked again at once, it is not asked: the kept copy (none) and the reason
        with db.connect() as conn:
            again_peer = peer_for(conn, A, B)
        asked = len(fake.paths)
        started = time.monotonic()
        again = read_their_side(db.connect(), again_peer, zone)
        assert time.monotonic() - started < 1.0
        assert len(fake.paths) == asked
        assert again.stale and "asked again 15 s after that" in again.error
    with serving(Answering(_fine(zone))) as fake:
        url = fake.url
    with registered(db, url, "tok", tmp_path, monkeypatch, "gone") as peer:
        side = read_their_side(db.connect(), peer, zone)
        assert side.absent and "could not be reached" in side.error
        assert cached_side(db.connect(), peer).absent
