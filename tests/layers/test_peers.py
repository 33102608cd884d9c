"""Registering another city's server (a peer): against a real safegrid server whose
``border_partner`` token is the realistic peer token, and against tiny real servers on
loopback that refuse, hang or answer garbage. Every refusal writes nothing."""

import os
import socket
import stat
from contextlib import ExitStack

import pytest
from sqlalchemy import text

from layers.errors import Conflict, NotFound, PeerUnavailable
from layers.peers import (
    PeerError,
    add_peer,
    check_answers,
    list_peers,
    peer_for,
    peers_dir,
    record_contact,
    remove_peer,
    token_of,
)

from ..peerhelp import Answering, always, serving

pytestmark = pytest.mark.db

A, B = "430100", "430300"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A SAFEGRID_HOME of the test's own (never ./var)."""
    monkeypatch.setenv("SAFEGRID_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def partner_token(tokens):
    return tokens["partner"]


def _nothing_written(db, home, name):
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM peers WHERE name = :n"),
                            {"n": name}).scalar_one() == 0
        assert peer_for(conn, A, B) is None
    assert not (home / "peers" / f"{name}.token").exists()
    assert not list((home / "peers").glob("*")) if (home / "peers").exists() else True


def _add(db, name, url, token, a=A, b=B):
    with db.begin() as conn:
        return add_peer(conn, name, url, a, b, token, "tester")


# what a server that is not a safegrid peer may answer
GARBAGE = always(200, b"<html><body>not an API</body></html>", "text/html")
NOT_FEATURES = always(200, b'{"type": "Feature", "geometry": null, "properties": {}}',
                      "application/json")
FORBIDDING = always(403, b"{}", "application/json")


@pytest.fixture
def garbage_server():
    """``garbage_server(answer)``: the URL of a real HTTP server on loopback saying it."""
    with ExitStack() as stack:
        yield lambda answer: stack.enter_context(serving(Answering(answer))).url


def test_add_list_record_remove_against_a_real_server(db, server, partner_token, home):
    old = os.umask(0)  # the file must be 0600 whatever the umask
    try:
        peer = _add(db, "xiangtan", server + "/", partner_token)
    finally:
        os.umask(old)
    try:
        assert (peer.name, peer.url, peer.a, peer.b) == ("xiangtan", server, A, B)
        path = home / "peers" / "xiangtan.token"
        assert peers_dir() == home.resolve() / "peers"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert token_of(peer) == token_of("xiangtan") == partner_token
        assert partner_token not in repr(peer)
        with db.begin() as conn:
            assert peer_for(conn, B, A) == peer_for(conn, A, B) == peer
            assert [p.name for p in list_peers(conn)] == ["xiangtan"]
            assert peer.last_contact is None and peer.last_error is None
            record_contact(conn, "xiangtan", "timed out after 3 s")
            record_contact(conn, "xiangtan")
            again = peer_for(conn, A, B)
        assert again.last_error == "timed out after 3 s"
        assert again.last_contact is not None and again.last_error_at is not None
        # the same name or the same border again: refused, the first one untouched
        with pytest.raises(Conflict, match="already exists"):
            _add(db, "xiangtan", server, partner_token)
        with pytest.raises(Conflict, match="already has a peer"):
            _add(db, "other", server, partner_token, a=B, b=A)
        assert not (home / "peers" / "other.token").exists()
        assert token_of("xiangtan") == partner_token
    finally:
        with db.begin() as conn:
            remove_peer(conn, "xiangtan")
    _nothing_written(db, home, "xiangtan")
    with db.begin() as conn, pytest.raises(NotFound):
        remove_peer(conn, "xiangtan")
    with pytest.raises(PeerUnavailable, match="token file"):
        token_of("xiangtan")
    # a token file left without its row (the database was reset) is removed too
    orphan = home / "peers" / "orphan.token"
    orphan.write_text("sg_left_behind\n")
    with db.begin() as conn:
        remove_peer(conn, "orphan")
    assert not orphan.exists()


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "http://", "127.0.0.1:8000", "",
                                 "http://host:99999", "http://u:p@127.0.0.1:8000",
                                 "http://127.0.0.1:8000/?x=1"])
def test_bad_urls_are_refused(db, demo_small, url, home):
    with pytest.raises(PeerError, match="URL"):
        _add(db, "bad", url, "sg_whatever")
    _nothing_written(db, home, "bad")


@pytest.mark.parametrize(("name", "border", "token", "message"), [
    ("Bad Name", (A, B), "sg_x", "peer name"),
    ("x" * 41, (A, B), "sg_x", "peer name"),
    ("ok", (A, A), "sg_x", "must differ"),
    ("ok", (A, "990000"), "sg_x", "990000"),
    ("ok", ("990000", B), "sg_x", "990000"),
    ("ok", (A, B), "   ", "token is empty"),
    ("ok", (A, B), "sg_a b", "one line"),
])
def test_bad_names_borders_and_tokens_are_refused(db, demo_small, server, name, border, token,
                                                  message, home):
    with pytest.raises(PeerError, match=message):
        _add(db, name, server, token, *border)
    _nothing_written(db, home, "ok")


def test_jurisdictions_without_a_shared_border_are_refused(db, server, partner_token, home):
    with db.connect() as conn:  # a community of A that does not reach B
        far = conn.execute(text(
            "SELECT a.code FROM jurisdictions a, jurisdictions b WHERE b.code = :b "
            "AND a.level = 'community' AND a.code LIKE '4301%' "
            "AND ST_Distance(a.geom::geography, b.geom::geography) > 1000 LIMIT 1"),
            {"b": B}).scalar_one()
    with pytest.raises(PeerError, match="do not share a border"):
        _add(db, "ok", server, partner_token, a=far)
    _nothing_written(db, home, "ok")


def test_refused_connection_names_the_problem(db, demo_small, home):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PeerUnavailable, match="could not be reached") as err:
        _add(db, "down", f"http://127.0.0.1:{port}", "sg_secret_token_1")
    assert "sg_secret_token_1" not in str(err.value) and "down" in str(err.value)
    _nothing_written(db, home, "down")


def test_wrong_token_is_refused(db, server, home):
    with pytest.raises(PeerUnavailable, match="refused the token \\(HTTP 401\\)") as err:
        _add(db, "wrong", server, "sg_not_a_token_of_theirs")
    assert "sg_not_a_token_of_theirs" not in str(err.value)
    _nothing_written(db, home, "wrong")


def test_a_forbidding_peer_is_refused(db, demo_small, garbage_server, home):
    with pytest.raises(PeerUnavailable, match="refused the token \\(HTTP 403\\)") as err:
        _add(db, "closed", garbage_server(FORBIDDING), "sg_secret_token_4")
    assert "sg_secret_token_4" not in str(err.value)
    _nothing_written(db, home, "closed")


@pytest.mark.parametrize("answer", [GARBAGE, NOT_FEATURES], ids=["html", "not-features"])
def test_garbage_answers_are_refused(db, demo_small, garbage_server, answer, home):
    url = garbage_server(answer)
    with pytest.raises(PeerUnavailable, match="not a GeoJSON FeatureCollection") as err:
        _add(db, "junk", url, "sg_secret_token_2")
    assert "sg_secret_token_2" not in str(err.value)
    _nothing_written(db, home, "junk")


def test_a_peer_that_hangs_times_out_in_bounded_time():
    import time

    with socket.socket() as s:  # accepts connections (backlog) and never answers
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        t0 = time.monotonic()
        with pytest.raises(PeerUnavailable, match="did not answer within 0.5 s") as err:
            check_answers("slow", f"http://127.0.0.1:{s.getsockname()[1]}", "sg_secret_3",
                          timeout=0.5)
        assert time.monotonic() - t0 < 3
    assert "sg_secret_3" not in str(err.value)
