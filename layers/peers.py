"""Peers: the safegrid servers of neighbouring cities, one per shared border (边界联防).

A peer is registered for the border between one of our jurisdictions (``a``) and one of
theirs (``b``) with a token their administrator issued to a ``border_partner`` user of
theirs, so their server itself filters what it serves us to the border zone. The row is
kept in table ``peers`` (migration 0013); the token is kept out of the database, in
``$SAFEGRID_HOME/peers/<name>.token`` (directory 0700, file 0600, created with those
modes). The token never appears in a message, a log line or a listing.

:func:`add_peer` checks everything, and that the peer answers its OGC API with that
token, before writing anything.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Connection, text

from .cluster import managed_cluster
from .errors import BadRequest, Conflict, NotFound, PeerUnavailable

__all__ = ["CONTACT_TIMEOUT_S", "SLOW", "Peer", "PeerError", "add_peer", "check_answers",
           "list_peers", "no_answer", "peer_for", "peers_dir", "record_contact", "remove_peer",
           "token_of"]

CONTACT_TIMEOUT_S = 5.0  # the longest add_peer waits for the peer's first answer
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_ERROR = 500  # characters of a peer's last error kept
SLOW = "did not answer within"  # how a peer's timeout is said (and recognised in last_error)


class PeerError(BadRequest):
    """A peer cannot be added or found as asked (a bad name, URL or border), HTTP 400."""


@dataclass(frozen=True)
class Peer:
    """Another city's server for the border between our ``a`` and their ``b``.

    ``url`` is the base URL of its server without a trailing slash; the times are
    timezone-aware (UTC as stored).
    """

    name: str
    url: str
    a: str
    b: str
    added_at: dt.datetime
    last_contact: dt.datetime | None
    last_error: str | None
    last_error_at: dt.datetime | None


_COLUMNS = "name, url, a, b, added_at, last_contact, last_error, last_error_at"


def _peer(row) -> Peer:
    return Peer(row.name, row.url, row.a, row.b, row.added_at, row.last_contact,
                row.last_error, row.last_error_at)


def peers_dir() -> Path:
    """The directory of the peers' token files: ``$SAFEGRID_HOME/peers`` (default ./var)."""
    return managed_cluster().home / "peers"


def _token_path(name: str) -> Path:
    if not NAME.match(name):
        raise PeerError(f"peer name {name!r} must be 1-40 lower-case letters, digits, '-' "
                        "or '_', starting with a letter or digit")
    return peers_dir() / f"{name}.token"


def peer_for(conn: Connection, a: str, b: str) -> Peer | None:
    """The peer registered for the border of ``a`` and ``b`` (either order), or None.

    The caller checks which side is ours (``Peer.a``).
    """
    row = conn.execute(text(
        f"SELECT {_COLUMNS} FROM peers WHERE (a = :a AND b = :b) OR (a = :b AND b = :a)"),
        {"a": a, "b": b}).first()
    return None if row is None else _peer(row)


def list_peers(conn: Connection) -> list[Peer]:
    """Every registered peer, by name."""
    rows = conn.execute(text(f"SELECT {_COLUMNS} FROM peers ORDER BY name"))
    return [_peer(r) for r in rows]


def token_of(peer: Peer | str) -> str:
    """The token we present to ``peer`` (a :class:`Peer` or its name).

    Raises :class:`PeerUnavailable` when its token file is missing or empty.
    """
    name = peer.name if isinstance(peer, Peer) else peer
    path = _token_path(name)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if not token:
        raise PeerUnavailable(f"peer {name}: its token file {path} is missing; remove the "
                              "peer and add it again with a token from its administrator")
    return token


def record_contact(conn: Connection, name: str, error: str | None = None) -> None:
    """Record how the last exchange with peer ``name`` went, at the database's now().

    ``error`` None: a successful contact (``last_contact``); else the error (kept to
    500 characters) and its time (``last_error``, ``last_error_at``). The caller commits.
    """
    if error is None:
        conn.execute(text("UPDATE peers SET last_contact = now() WHERE name = :n"),
                     {"n": name})
    else:
        conn.execute(text("UPDATE peers SET last_error = :e, last_error_at = now() "
                          "WHERE name = :n"), {"n": name, "e": error[:MAX_ERROR]})


def add_peer(conn: Connection, name: str, url: str, a: str, b: str, token: str,
             added_by: str) -> Peer:
    """Register ``name`` at ``url`` as the server holding ``b`` across our border with ``a``.

    Checks the name, the URL (http or https, with a host), that ``a`` and ``b`` are stored
    jurisdictions sharing a border and not registered yet, and then that the peer answers
    ``GET {url}/collections/jurisdictions/items?limit=1`` with a GeoJSON FeatureCollection
    when given ``token`` (within :data:`CONTACT_TIMEOUT_S`). Any failure raises
    (:class:`PeerError`, :class:`Conflict`, :class:`PeerUnavailable`) with nothing
    written. Then writes the row (in the caller's transaction) and the 0600 token file.
    """
    path = _token_path(name)
    base = _checked_url(url)
    token = (token or "").strip()
    if not token:
        raise PeerError(f"peer {name}: the token is empty")
    if any(c.isspace() or not c.isprintable() for c in token):
        raise PeerError(f"peer {name}: the token must be one line without spaces")
    _check_border(conn, a, b)
    if conn.execute(text("SELECT 1 FROM peers WHERE name = :n"), {"n": name}).first():
        raise Conflict(f"a peer called {name!r} already exists; remove it first")
    taken = peer_for(conn, a, b)
    if taken is not None:
        raise Conflict(f"the {a}-{b} border already has a peer ({taken.name}); remove it first")
    check_answers(name, base, token)
    row = conn.execute(text(
        "INSERT INTO peers (name, url, a, b, added_by) VALUES (:n, :u, :a, :b, :by) "
        f"RETURNING {_COLUMNS}"), {"n": name, "u": base, "a": a, "b": b, "by": added_by}).one()
    _write_token(path, token)
    return _peer(row)


def remove_peer(conn: Connection, name: str) -> None:
    """Remove peer ``name``: its row, what was cached from it (cascade), its token file.

    A token file left without its row (a database reset since) is removed too.
    """
    path = _token_path(name)
    removed = conn.execute(text("DELETE FROM peers WHERE name = :n"), {"n": name}).rowcount
    if not removed and not path.exists():
        raise NotFound(f"no peer called {name!r}")
    path.unlink(missing_ok=True)


def _checked_url(url: str) -> str:
    """``url`` without a trailing slash, or :class:`PeerError` when it is not http(s)."""
    try:
        parts = urlsplit((url or "").strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        host = None
    if parts.scheme not in ("http", "https") or not host:
        raise PeerError(f"peer URL {url!r} must be http:// or https:// with a host, e.g. "
                        "http://10.1.2.3:8000")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise PeerError(f"peer URL {url!r} must be the server's base URL, without a query, "
                        "fragment or user name")
    return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")


def _check_border(conn: Connection, a: str, b: str) -> None:
    """:class:`PeerError` unless ``a`` and ``b`` are stored jurisdictions that touch."""
    from .access import BORDER_TOLERANCE_M  # with the geometry libraries: not for listing

    if a == b:
        raise PeerError(f"--border {a}-{b}: the two sides must differ")
    for code, side in ((a, "ours"), (b, "theirs")):
        if not conn.execute(text("SELECT 1 FROM jurisdictions WHERE code = :c"),
                            {"c": code}).first():
            known = "a jurisdiction in this database" if side == "ours" else \
                "a neighbour whose boundary this database holds"
            raise PeerError(f"--border {a}-{b}: {code} ({side}) is not {known}")
    touch = conn.execute(text(
        "SELECT ST_Intersects(ST_Boundary(a.geom), ST_Buffer(b.geom::geography, :t)::geometry)"
        " FROM jurisdictions a, jurisdictions b WHERE a.code = :a AND b.code = :b"),
        {"a": a, "b": b, "t": BORDER_TOLERANCE_M}).scalar()
    if not touch:
        raise PeerError(f"--border {a}-{b}: {a} and {b} do not share a border")


def check_answers(name: str, url: str, token: str,
                  timeout: float = CONTACT_TIMEOUT_S) -> None:
    """:class:`PeerUnavailable` unless the peer at ``url`` serves its jurisdictions to ``token``.

    The message names the peer and the problem, never the token.
    """
    import requests  # not for listing or removing peers

    probe = f"{url}/collections/jurisdictions/items"
    try:
        r = requests.get(probe, params={"limit": 1}, timeout=timeout, allow_redirects=False,
                         headers={"Authorization": f"Bearer {token}",
                                  "Accept": "application/geo+json"})
    except (requests.RequestException, OSError) as exc:
        raise PeerUnavailable(f"{no_answer(name, url, exc, timeout)}; nothing was "
                              "written") from None
    if r.status_code in (401, 403):
        raise PeerUnavailable(f"peer {name} at {url} refused the token (HTTP {r.status_code}); "
                              "ask its administrator for a border_partner token; nothing was "
                              "written")
    if r.status_code != 200:
        raise PeerUnavailable(f"peer {name} at {url} answered HTTP {r.status_code} to "
                              f"{probe}; is it a safegrid server? nothing was written")
    try:
        body = r.json()
    except (ValueError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict) or body.get("type") != "FeatureCollection" \
            or not isinstance(body.get("features"), list):
        raise PeerUnavailable(f"peer {name} at {url} answered {probe} with something that is "
                              "not a GeoJSON FeatureCollection; is it a safegrid server? "
                              "nothing was written")


def no_answer(name: str, url: str, exc: Exception, waited: float) -> str:
    """Why a request to peer ``name`` at ``url`` got no answer, in words (no token in it).

    ``exc`` is what ``requests`` raised (or an OSError), ``waited`` the seconds allowed.
    """
    import requests  # loaded already by the request that failed

    where = f"peer {name} ({url})"
    if isinstance(exc, requests.Timeout):
        return f"{where} {SLOW} {waited:g} s"
    if isinstance(exc, requests.ConnectionError):
        return f"{where} could not be reached (connection refused or no such host)"
    return f"{where} could not be asked ({type(exc).__name__})"


def _write_token(path: Path, token: str) -> None:
    """Write ``token`` to ``path`` with mode 0600 from its creation (directory 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    partial = path.with_suffix(".token.partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
