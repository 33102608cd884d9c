"""Joint patrol routes written to a peer's server (OGC API - Features, Part 4).

A joint patrol plan across two servers keeps each city's teams' routes in that city's
own system: ours locally, the partner's on the peer. :func:`replace_routes` replaces the
peer's routes of one border (property ``border``, e.g. ``"430100-430300"``) with new ones,
through the peer's API as its ``border_partner`` user (the token its administrator
issued, :func:`layers.peers.token_of`), so the peer checks every route against its own
rules and scope (the border zone) and keeps an audit row of each change.

The order keeps the peer's officers from ever seeing the border without routes, and a
failure from leaving half a plan: the routes of the border are listed and each one's
ETag read; the new routes are created; then the old ones are deleted with ``If-Match``.
When a creation fails, the routes created so far are deleted again. When a deletion
finds a route changed on the peer since it was read (its 412), the change is not
overwritten: the new routes are deleted again, old routes deleted before it are put
back (same geometry and fields, new ids), and :class:`~layers.errors.PeerConflict`
names the route. A peer that cannot be reached, times out, refuses the token or answers
what its API does not promise raises :class:`~layers.errors.PeerUnavailable` naming the
peer and the problem. The token is sent to the peer's own URL only and never appears in
a message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests

from .errors import PeerConflict, PeerUnavailable
from .peers import Peer, no_answer, token_of

__all__ = ["COLLECTION", "replace_routes", "routes_on_peer"]

COLLECTION = "patrol_routes"
PAGE = 1000  # routes asked for per page
MAX_PAGES = 100  # a peer whose `next` links never end is not followed for ever
MAX_BODY = 20 * 1024 * 1024  # bytes of one answer read at most
GEOJSON = "application/geo+json"


@dataclass(frozen=True)
class Answer:
    """A peer's answer: HTTP status, headers, body (bytes) and reason phrase."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes
    reason: str


class _Link:
    """Requests to one peer with its token, errors turned into :class:`PeerUnavailable`."""

    def __init__(self, peer: Peer, timeout: float):
        self.peer = peer
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy from the environment sees the token
        self.session.headers["Authorization"] = f"Bearer {token_of(peer)}"
        self.session.headers["Accept"] = f"{GEOJSON}, application/json"

    def where(self) -> str:
        return f"peer {self.peer.name} ({self.peer.url})"

    def send(self, method: str, path: str, what: str, **kw) -> Answer:
        """``method`` on the peer's ``path``; the answer, whatever its status, or raises.

        Raises PeerUnavailable when there is no usable answer: no connection, no answer
        within the timeout, a redirect, a refused token (401/403), too many requests,
        a server error or an answer too large. ``what`` says what was being done.
        """
        try:
            with self.session.request(method, self.peer.url + path, timeout=self.timeout,
                                      allow_redirects=False, stream=True, **kw) as r:
                body = bytearray()
                for chunk in r.iter_content(64 * 1024):
                    body += chunk
                    if len(body) > MAX_BODY:
                        raise PeerUnavailable(f"{self.where()} answered more than "
                                              f"{MAX_BODY} bytes while {what}")
                answer = Answer(r.status_code, r.headers, bytes(body), r.reason or "")
        except (requests.RequestException, OSError) as exc:
            raise PeerUnavailable(f"{no_answer(self.peer.name, self.peer.url, exc, self.timeout)}"
                                  f" while {what}") from None
        self._check_status(answer, what)
        return answer

    def _check_status(self, r: Answer, what: str) -> None:
        status = r.status_code
        if status == 401:
            raise PeerUnavailable(
                f"{self.where()} refused our token while {what} (HTTP 401: {_reason(r)}); "
                "ask its administrator for a token of a border_partner user for our city")
        if status == 403:
            raise PeerUnavailable(f"{self.where()} refused us while {what} (HTTP 403: "
                                  f"{_reason(r)})")
        if status == 429:
            wait = r.headers.get("Retry-After", "?")
            raise PeerUnavailable(f"{self.where()} is busy (HTTP 429) while {what}; try "
                                  f"again in {wait} s")
        if 300 <= status < 400 or status >= 500:
            raise PeerUnavailable(f"{self.where()} answered HTTP {status} while {what}"
                                  + (f" (to {r.headers['Location']})"
                                     if "Location" in r.headers else ""))

    def json(self, r: Answer, what: str) -> object:
        """The answer's JSON, or PeerUnavailable saying it is not JSON."""
        try:
            return json.loads(r.content)
        except (UnicodeDecodeError, ValueError):
            start = r.content[:60].decode("utf-8", "replace")
            raise PeerUnavailable(f"{self.where()} answered something that is not JSON while "
                                  f"{what} (HTTP {r.status_code}, starting {start!r}); is "
                                  "it a safegrid server?") from None


def _reason(r: Answer) -> str:
    """The peer's own words for a refusal ({error} or {message}), else the HTTP reason."""
    try:
        data = json.loads(r.content)
    except (UnicodeDecodeError, ValueError):
        data = None
    if isinstance(data, dict):
        said = data.get("error") or data.get("message") or data.get("description")
        if said:
            problems = data.get("problems")
            if isinstance(problems, list) and problems:
                said = f"{said}: " + "; ".join(
                    str(p.get("reason", p)) if isinstance(p, dict) else str(p)
                    for p in problems[:5])
            return str(said)[:300]
    return r.reason or "no reason given"


def _after(href: object) -> int | None:
    """The ``after`` of a ``next`` link (only the query is taken, never its host)."""
    if not isinstance(href, str):
        return None
    values = parse_qs(urlsplit(href).query).get("after")
    if not values or not values[0].isdigit():
        return None
    return int(values[0])


def _page(link: _Link, border_key: str, after: int | None) -> tuple[list[dict], int | None]:
    """One page of the border's routes and the ``after`` of the next (None: the last)."""
    what = f"listing the patrol routes of border {border_key}"
    params = {"border": border_key, "limit": PAGE}
    if after is not None:
        params["after"] = after
    r = link.send("GET", f"/collections/{COLLECTION}/items", what, params=params)
    if r.status_code != 200:
        raise PeerUnavailable(f"{link.where()} answered HTTP {r.status_code} while {what} "
                              f"({_reason(r)})")
    body = link.json(r, what)
    if not isinstance(body, dict) or body.get("type") != "FeatureCollection" \
            or not isinstance(body.get("features"), list):
        raise PeerUnavailable(f"{link.where()} answered something that is not a GeoJSON "
                              f"FeatureCollection while {what}")
    features = body["features"]
    for f in features:
        if not (isinstance(f, dict) and isinstance(f.get("id"), int)
                and isinstance(f.get("properties"), dict)):
            raise PeerUnavailable(f"{link.where()} answered a feature without a whole-number "
                                  f"id or properties while {what}")
    links = body.get("links") if isinstance(body.get("links"), list) else []
    nxt = next((_after(x.get("href")) for x in links
                if isinstance(x, dict) and x.get("rel") == "next"), None)
    if nxt is not None and after is not None and nxt <= after:
        nxt = None  # a link that does not move on
    return features, nxt


def _listed(link: _Link, border_key: str) -> list[dict]:
    """Every route of border ``border_key`` the peer serves us, by id."""
    found: dict[int, dict] = {}
    after = None
    for _ in range(MAX_PAGES):
        features, after = _page(link, border_key, after)
        for f in features:
            # a peer that ignored the filter must not lose other borders' routes
            if f["properties"].get("border") == border_key:
                found[f["id"]] = f
        if after is None or not features:
            break
    return [found[i] for i in sorted(found)]


def routes_on_peer(peer: Peer, border_key: str, *, timeout: float = 5.0) -> list[dict]:
    """The patrol routes of border ``border_key`` on ``peer``, as GeoJSON Feature dicts.

    All of them the peer serves our token (its border zone), following its ``next``
    links; coordinates in EPSG:4326, ``id`` the peer's feature id. ``timeout`` in seconds
    bounds each request. Raises :class:`PeerUnavailable` when the peer does not answer
    usably.
    """
    return _listed(_Link(peer, timeout), border_key)


def _etag(link: _Link, route_id: int, name: str) -> str:
    """The ETag of route ``route_id`` as the peer serves it now ("" when it is gone)."""
    what = f"reading route {name!r} (id {route_id})"
    r = link.send("GET", f"/collections/{COLLECTION}/items/{route_id}", what)
    if r.status_code == 404:
        return ""
    etag = r.headers.get("ETag", "")
    if r.status_code != 200 or not etag.startswith('"'):
        raise PeerUnavailable(f"{link.where()} answered HTTP {r.status_code} "
                              f"{'without a strong ETag ' if r.status_code == 200 else ''}"
                              f"while {what}")
    return etag


def _create(link: _Link, feature: dict) -> tuple[int, str]:
    """POST one route; its id and ETag on the peer, or raises."""
    name = (feature.get("properties") or {}).get("name", "?")
    what = f"creating route {name!r}"
    r = link.send("POST", f"/collections/{COLLECTION}/items", what,
                  data=json.dumps(feature, ensure_ascii=False).encode("utf-8"),
                  headers={"Content-Type": GEOJSON})
    if r.status_code != 201:
        raise PeerUnavailable(f"{link.where()} refused route {name!r} (HTTP {r.status_code}: "
                              f"{_reason(r)})")
    body = link.json(r, what)
    new_id = body.get("id") if isinstance(body, dict) else None
    if not isinstance(new_id, int):
        tail = r.headers.get("Location", "").rstrip("/").rsplit("/", 1)[-1]
        new_id = int(tail) if tail.isdigit() else None
    if new_id is None:
        raise PeerUnavailable(f"{link.where()} created route {name!r} but did not say its id")
    return new_id, r.headers.get("ETag", "")


def _delete(link: _Link, route_id: int, etag: str, name: str) -> int:
    """DELETE a route with ``If-Match: etag`` (none when empty); the HTTP status."""
    headers = {"If-Match": etag} if etag else {}
    r = link.send("DELETE", f"/collections/{COLLECTION}/items/{route_id}",
                  f"deleting route {name!r} (id {route_id})", headers=headers)
    if r.status_code not in (204, 200, 404, 412):
        raise PeerUnavailable(f"{link.where()} refused to delete route {name!r} (id "
                              f"{route_id}; HTTP {r.status_code}: {_reason(r)})")
    return r.status_code


def _undo(link: _Link, created: list[tuple[int, str]]) -> list[int]:
    """Delete the routes we created (best effort); the ids that could not be deleted."""
    left = []
    for route_id, etag in created:
        try:
            _delete(link, route_id, etag, f"#{route_id}")
        except PeerUnavailable:
            left.append(route_id)
    return left


def _undone(left: list[int]) -> str:
    return (f"; routes {left} created on the peer could not be deleted again: remove "
            "them there" if left else "")


def _snapshot(feature: dict) -> dict:
    """A listed route as a new Feature: its geometry and stored fields (not its version)."""
    props = {k: v for k, v in feature["properties"].items() if k != "version" and v is not None}
    return {"type": "Feature", "geometry": feature["geometry"], "properties": props}


def _name(feature: dict) -> str:
    return str(feature["properties"].get("name") or f"#{feature['id']}")


def replace_routes(peer: Peer, border_key: str, features: list[dict], *,
                   timeout: float = 5.0) -> list[int]:
    """Replace the patrol routes of border ``border_key`` on ``peer`` with ``features``.

    ``features`` are GeoJSON Features of layer ``patrol_routes`` (LineString in EPSG:4326;
    properties name, border, team, workload, hours, jurisdiction_code). Only routes
    whose ``border`` is ``border_key`` are replaced; ``timeout`` in seconds bounds each
    request. Returns the ids the new routes have on the peer.

    Raises :class:`PeerUnavailable` (nothing of the plan left on the peer) or
    :class:`PeerConflict` when a route was changed on the peer meanwhile (the change is
    kept, the plan not applied).
    """
    link = _Link(peer, timeout)
    old = [(f, _etag(link, f["id"], _name(f))) for f in _listed(link, border_key)]
    old = [(f, etag) for f, etag in old if etag]  # gone meanwhile: nothing to delete
    created: list[tuple[int, str]] = []
    try:
        for feature in features:
            created.append(_create(link, feature))
    except PeerUnavailable as exc:
        raise PeerUnavailable(f"{exc}; the plan was not written to peer {peer.name}"
                              + _undone(_undo(link, created))) from None
    deleted: list[dict] = []
    for feature, etag in old:
        try:
            status = _delete(link, feature["id"], etag, _name(feature))
        except PeerUnavailable as exc:
            _restore(link, created, deleted)
            raise PeerUnavailable(f"{exc}; the plan was not written to peer {peer.name}") \
                from None
        if status == 412:
            _restore(link, created, deleted)
            raise PeerConflict(
                f"route {_name(feature)!r} (id {feature['id']}) of border {border_key} was "
                f"changed on peer {peer.name} ({peer.url}) since it was read: the change is "
                "kept and the new plan was not written there; look at the route and plan "
                "again")
        deleted.append(feature)
    return [route_id for route_id, _etag_ in created]


def _restore(link: _Link, created: list[tuple[int, str]], deleted: list[dict]) -> None:
    """Take a plan back: delete the new routes, put back the old ones deleted (best effort)."""
    _undo(link, created)
    for feature in deleted:
        try:
            _create(link, _snapshot(feature))
        except PeerUnavailable:
            pass  # the peer's audit keeps the route as it was
