"""Reading the other city's side of a border from its server (a peer), 边界联防 across servers.

The peer is read through its OGC API – Features (``/collections/<layer>/items``) with
the token its administrator issued to us (``Authorization: Bearer``, see
:func:`layers.peers.token_of`; the token is never logged nor put in a message). Only
the bounding box of the border zone is asked for, and the peer's ``border_partner``
scope filters every collection to the zone on its side as well. Pages are followed by
their ``next`` links (same server only, a bounded number of pages), a collection read
before is revalidated with ``If-None-Match`` (a server without ETags is read afresh),
and the whole read has a bounded total time (:data:`TIMEOUT` seconds): a slow peer
never holds a request for long.

What comes back is checked strictly: a GeoJSON FeatureCollection whose features each
carry an integer ``id``, a geometry on Earth and a ``properties`` object; anything else
makes the peer unavailable for this read. What was read is kept in ``peer_collections``
and ``peer_features`` (each collection replaced whole, in one transaction); a failed
read keeps the copy kept before and marks it stale, with its time.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import requests
import shapely
from shapely.geometry import shape
from sqlalchemy import Connection, text

from .errors import PeerUnavailable
from .peers import SLOW, Peer, no_answer, record_contact, token_of

__all__ = ["CELLS", "COLLECTIONS", "MAX_PAGES", "PAGE_LIMIT", "RETRY_AFTER", "TIMEOUT",
           "PeerCollection", "PeerFeature", "TheirSide", "cached_side", "read_their_side"]

# What the border needs of the other side (jurisdictions: the row of their city)
COLLECTIONS = ("jurisdictions", "roads", "checkpoints", "cameras", "buildings", "key_areas",
               "incidents")
# A collection the peer may keep to itself by policy (its 403): read without it
OPTIONAL = ("incidents", "incident_cells")
# What a peer that keeps its incident points to itself may give instead: its incidents
# in the zone as counts per cell (see geo.cellshare), asked for with the zone's terms
CELLS = "incident_cells"
TIMEOUT = 4.0  # seconds: the whole read, every collection and page
CONNECT_TIMEOUT = 2.0  # seconds: to open one connection
PAGE_LIMIT = 5000  # features asked per page
MAX_PAGES = 200  # pages of one collection: more is not a border zone, it is a loop
# seconds: a peer that did not answer in time is not asked again this soon (its kept copy
# is used), so a frozen peer does not hold every request of ours in turn
RETRY_AFTER = 15.0


@dataclass(frozen=True)
class PeerFeature:
    """One feature of the peer: its id there, geometry (lon/lat, EPSG:4326), properties."""

    id: int
    geometry: shapely.Geometry
    properties: dict


@dataclass(frozen=True)
class PeerCollection:
    """One collection of the peer as we hold it.

    ``as_of``: when it was read (or revalidated) from the peer, None when never;
    ``stale``: the last read failed and this is the copy kept before (or nothing);
    ``error``: why it is stale or absent, None when fresh; ``etag``: the peer's ETag.
    """

    name: str
    features: tuple[PeerFeature, ...] = ()
    as_of: dt.datetime | None = None
    stale: bool = False
    error: str | None = None
    etag: str | None = None

    @property
    def refused(self) -> bool:
        """Whether the peer keeps this collection to itself (its policy), not a failure."""
        return self.as_of is None and not self.stale and self.error is not None


@dataclass(frozen=True)
class TheirSide:
    """The other side of a border as read from its server (or kept from the last read)."""

    peer: Peer
    collections: dict[str, PeerCollection] = field(default_factory=dict)

    def features(self, name: str) -> tuple[PeerFeature, ...]:
        """The features of collection ``name`` (none when it was never read)."""
        found = self.collections.get(name)
        return found.features if found is not None else ()

    @property
    def as_of(self) -> dt.datetime | None:
        """When the oldest collection was read; None when one was never read."""
        times = [c.as_of for c in self.collections.values() if not c.refused]
        return None if not times or None in times else min(times)

    @property
    def stale(self) -> bool:
        """Whether any collection is a kept copy (or absent) because the last read failed."""
        return any(c.stale for c in self.collections.values())

    @property
    def error(self) -> str | None:
        """Why their side is stale or incomplete (the first reason), None when fresh."""
        return next((c.error for c in self.collections.values() if c.error), None)

    @property
    def absent(self) -> bool:
        """Whether nothing of their side is held (never read and the peer failed)."""
        return all(c.as_of is None for c in self.collections.values())

    @property
    def stamp(self) -> tuple:
        """Changes whenever what is held changes: (collection, ETag or time, count)."""
        return tuple((c.name, c.etag or (c.as_of.isoformat() if c.as_of else None),
                      len(c.features), c.stale) for c in self.collections.values())

    def require_fresh(self) -> None:
        """PeerUnavailable unless every collection (but a policy's refusal) is fresh."""
        if self.stale:
            raise PeerUnavailable(self.error or f"peer {self.peer.name} did not answer")


class _Failed(Exception):
    """A read of one collection failed (the message), perhaps by the peer's policy.

    ``policy``: its 403 on an optional collection, read without it.
    """

    def __init__(self, message: str, policy: bool = False) -> None:
        super().__init__(message)
        self.policy = policy


def _bbox(zone_lonlat: shapely.Geometry) -> list[float]:
    """The zone's bounds (lon/lat), widened outwards to the 1e-7 degree grid."""
    x0, y0, x1, y1 = zone_lonlat.bounds
    return [math.floor(x0 * 1e7) / 1e7, math.floor(y0 * 1e7) / 1e7,
            math.ceil(x1 * 1e7) / 1e7, math.ceil(y1 * 1e7) / 1e7]


def _session(peer: Peer) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment: the peer is asked directly
    session.headers.update({"Authorization": f"Bearer {token_of(peer)}",
                            "Accept": "application/geo+json, application/json"})
    return session


def _same_server(peer: Peer, url: str) -> bool:
    mine, theirs = urlsplit(peer.url), urlsplit(url)
    return (mine.scheme, mine.netloc) == (theirs.scheme, theirs.netloc)


@dataclass(frozen=True)
class _Clock:
    """The end of a read (``time.monotonic()``) and the seconds it was given in all."""

    end: float
    budget: float


def _get(session: requests.Session, peer: Peer, url: str, clock: _Clock,
         headers: dict | None = None) -> requests.Response:
    """GET ``url`` within what is left of the read's time; _Failed naming what went wrong."""
    budget = clock.budget
    left = clock.end - time.monotonic()
    if left <= 0.05:
        raise _Failed(f"peer {peer.name} ({peer.url}) {SLOW} "
                      f"{budget:g} s")
    try:
        return session.get(url, headers=headers or {}, allow_redirects=False,
                           timeout=(min(CONNECT_TIMEOUT, left), left))
    except (requests.RequestException, OSError) as exc:
        raise _Failed(no_answer(peer.name, peer.url, exc, budget)) from None


def _message_of(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    found = (body.get("error") or body.get("message") or body.get("description")
             if isinstance(body, dict) else None)
    return f": {str(found)[:200]}" if found else ""


def _check_status(peer: Peer, name: str, response: requests.Response) -> None:
    if response.status_code in (401, 403):
        if response.status_code == 403 and name in OPTIONAL:
            raise _Failed(f"peer {peer.name} does not share {name} with us (its policy, "
                          f"HTTP 403){_message_of(response)}", policy=True)
        raise _Failed(f"peer {peer.name} refused our token (HTTP {response.status_code} on "
                      f"{name}){_message_of(response)}")
    if response.status_code != 200:
        raise _Failed(f"peer {peer.name} answered HTTP {response.status_code} to the "
                      f"{name} items{_message_of(response)}")


def _feature(peer: Peer, name: str, raw: object) -> PeerFeature:
    """One checked feature; _Failed when it is not one."""
    if not (isinstance(raw, dict) and raw.get("type") == "Feature"
            and isinstance(raw.get("properties"), dict)
            and isinstance(raw.get("geometry"), dict)
            and isinstance(raw.get("id"), int) and not isinstance(raw.get("id"), bool)):
        raise _Failed(f"peer {peer.name} answered something that is not a FeatureCollection "
                      f"(a {name} feature without id, geometry or properties)")
    try:
        geometry = shape(raw["geometry"])
    except Exception:  # noqa: BLE001 - any unreadable geometry is the peer's garbage
        geometry = None
    if geometry is None or geometry.is_empty or not _on_earth(geometry):
        raise _Failed(f"peer {peer.name} answered something that is not a FeatureCollection "
                      f"({name} feature {raw['id']} has no usable lon/lat geometry)")
    return PeerFeature(raw["id"], geometry, raw["properties"])


def _on_earth(geometry: shapely.Geometry) -> bool:
    x0, y0, x1, y1 = geometry.bounds
    return all(math.isfinite(v) for v in (x0, y0, x1, y1)) and -180 <= x0 <= x1 <= 180 \
        and -90 <= y0 <= y1 <= 90


def _page(peer: Peer, name: str, response: requests.Response) -> tuple[list, str | None]:
    """(features, next link) of one page; _Failed when it is not a FeatureCollection."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not (isinstance(body, dict) and body.get("type") == "FeatureCollection"
            and isinstance(body.get("features"), list)):
        raise _Failed(f"peer {peer.name} answered something that is not a FeatureCollection "
                      f"for {name}")
    links = body.get("links") or []
    nexts = [link.get("href") for link in links if isinstance(link, dict)
             and link.get("rel") == "next"] if isinstance(links, list) else []
    return [_feature(peer, name, f) for f in body["features"]], (nexts[0] if nexts else None)


def _fetch(session: requests.Session, peer: Peer, name: str, bbox: list[float],
           etag: str | None, clock: _Clock, terms: dict[str, str] | None = None
           ) -> tuple[list[PeerFeature] | None, str | None]:
    """(features, ETag) of collection ``name`` in ``bbox``; (None, ETag) when unchanged.

    ``terms``: more query parameters (those of :data:`CELLS`).
    """
    url = (f"{peer.url}/collections/{name}/items?bbox={','.join(f'{v:.7f}' for v in bbox)}"
           f"&limit={PAGE_LIMIT}{'&' + urlencode(terms) if terms else ''}")
    response = _get(session, peer, url, clock, {"If-None-Match": etag} if etag else None)
    if response.status_code == 304 and etag:
        return None, etag
    _check_status(peer, name, response)
    tag = response.headers.get("ETag")
    features, following = _page(peer, name, response)
    seen = {url}
    while following:
        if len(seen) >= MAX_PAGES:
            raise _Failed(f"peer {peer.name} sent more than {MAX_PAGES} pages of {name}")
        if following in seen or not _same_server(peer, following):
            raise _Failed(f"peer {peer.name} answered something that is not a "
                          f"FeatureCollection for {name} (a next link that "
                          f"{'loops' if following in seen else 'leaves its server'})")
        seen.add(following)
        response = _get(session, peer, following, clock)
        _check_status(peer, name, response)
        more, following = _page(peer, name, response)
        features.extend(more)
    ids = [f.id for f in features]
    if len(set(ids)) != len(ids):
        raise _Failed(f"peer {peer.name} answered something that is not a FeatureCollection "
                      f"for {name} (a feature id comes twice)")
    return features, tag


def cached_side(conn: Connection, peer: Peer, error: str | None = None) -> TheirSide:
    """What is kept of ``peer``'s collections; marked stale with ``error`` when given."""
    kept = {r["collection"]: r for r in conn.execute(text(
        "SELECT collection, etag, fetched_at FROM peer_collections WHERE peer = :p"),
        {"p": peer.name}).mappings()}
    names = COLLECTIONS + ((CELLS,) if CELLS in kept else ())
    features: dict[str, list[PeerFeature]] = {name: [] for name in names}
    for r in conn.execute(text(
            "SELECT collection, feature_id, ST_AsBinary(geom) AS wkb, properties "
            "FROM peer_features WHERE peer = :p ORDER BY collection, feature_id"),
            {"p": peer.name}).mappings():
        if r["collection"] in features:
            features[r["collection"]].append(PeerFeature(
                int(r["feature_id"]), shapely.from_wkb(bytes(r["wkb"])), r["properties"]))
    return TheirSide(peer, {name: PeerCollection(
        name, tuple(features[name]),
        kept[name]["fetched_at"] if name in kept else None, error is not None, error,
        kept[name]["etag"] if name in kept else None) for name in names})


def _kept_state(conn: Connection, peer: Peer) -> dict[str, tuple[list[float], str | None]]:
    return {r[0]: (list(r[1]), r[2]) for r in conn.execute(text(
        "SELECT collection, bbox, etag FROM peer_collections WHERE peer = :p"),
        {"p": peer.name}).all()}


def _store(conn: Connection, peer: Peer, name: str, bbox: list[float], etag: str | None,
           features: list[PeerFeature] | None, when: dt.datetime) -> None:
    """Keep collection ``name`` (replaced whole; ``features`` None: only revalidated)."""
    if features is None:
        conn.execute(text("UPDATE peer_collections SET fetched_at = :t WHERE peer = :p "
                          "AND collection = :c"), {"t": when, "p": peer.name, "c": name})
        return
    # the collection's row first: a concurrent read of the same collection waits here
    conn.execute(text(
        "INSERT INTO peer_collections (peer, collection, bbox, etag, fetched_at, features) "
        "VALUES (:p, :c, :b, :e, :t, :n) ON CONFLICT (peer, collection) DO UPDATE SET "
        "bbox = EXCLUDED.bbox, etag = EXCLUDED.etag, fetched_at = EXCLUDED.fetched_at, "
        "features = EXCLUDED.features"),
        {"p": peer.name, "c": name, "b": bbox, "e": etag, "t": when, "n": len(features)})
    conn.execute(text("DELETE FROM peer_features WHERE peer = :p AND collection = :c"),
                 {"p": peer.name, "c": name})
    if features:
        conn.execute(text(
            "INSERT INTO peer_features (peer, collection, feature_id, geom, properties) "
            "VALUES (:p, :c, :i, ST_GeomFromWKB(:g, 4326), CAST(:props AS jsonb))"),
            [{"p": peer.name, "c": name, "i": f.id, "g": shapely.to_wkb(f.geometry),
              "props": json.dumps(f.properties, ensure_ascii=False)} for f in features])


def _resting(peer: Peer, retry_after: float) -> bool:
    """Whether ``peer`` timed out less than ``retry_after`` seconds ago (and not since)."""
    if not retry_after or peer.last_error_at is None or SLOW not in (peer.last_error or ""):
        return False
    if peer.last_contact is not None and peer.last_contact >= peer.last_error_at:
        return False
    return (dt.datetime.now(dt.UTC) - peer.last_error_at).total_seconds() < retry_after


def _read_all(session: requests.Session, peer: Peer, bbox: list[float],
              kept: dict[str, tuple[list[float], str | None]], clock: _Clock,
              cells: dict[str, str] | None) -> tuple[dict, dict[str, str], str | None]:
    """Every collection read (or revalidated): (read, refused by policy, failure).

    When the peer refuses its incident points by policy and ``cells`` (the zone's
    terms) is given, its incidents are asked for as counts per cell (:data:`CELLS`).
    """
    read: dict[str, tuple[list[PeerFeature] | None, str | None]] = {}
    refused: dict[str, str] = {}
    names = list(COLLECTIONS)
    for name in names:
        old_box, old_tag = kept.get(name, (None, None))
        try:
            read[name] = _fetch(session, peer, name, bbox,
                                old_tag if old_box == bbox else None, clock,
                                cells if name == CELLS else None)
        except _Failed as exc:
            if not exc.policy:
                return read, refused, str(exc)
            refused[name] = str(exc)
            if name == "incidents" and cells is not None:
                names.append(CELLS)
    return read, refused, None


def read_their_side(conn: Connection, peer: Peer, zone_lonlat: shapely.Geometry, *,
                    timeout: float = TIMEOUT, retry_after: float = RETRY_AFTER,
                    cells: dict[str, str] | None = None) -> TheirSide:
    """The peer's side of the border: its collections within the zone's bounding box.

    ``zone_lonlat`` is the border zone in lon/lat (EPSG:4326); only its bounding box is
    sent. Each of :data:`COLLECTIONS` is read afresh, or revalidated by its ETag, within
    ``timeout`` seconds in all, and kept (each replaced whole, in a transaction of its
    own on ``conn``'s engine, so the caller's transaction stays read-only). When the
    peer fails (down, slow, a refused token, an answer that is not a FeatureCollection)
    the copy kept before is returned, stale and with the reason; a collection the peer
    refuses by policy (its 403 on incidents) is left out with that reason, not stale.
    A peer that refuses its incident points is asked for :data:`CELLS` instead with the
    query parameters ``cells`` (the zone's ``width``, ``tolerance`` and the period's
    ``datetime``), when given; what it held of them is dropped once it shares points.
    The outcome is recorded on the peer (:func:`layers.peers.record_contact`). A peer
    that did not answer in time less than ``retry_after`` seconds ago is not asked (0:
    always asked): the kept copy is returned, stale, with that reason.
    """
    if _resting(peer, retry_after):
        return cached_side(conn, peer, f"{peer.last_error} (asked again {retry_after:g} s "
                                       "after that)")
    clock = _Clock(time.monotonic() + timeout, timeout)
    bbox = _bbox(zone_lonlat)
    kept = _kept_state(conn, peer)
    read: dict[str, tuple[list[PeerFeature] | None, str | None]] = {}
    refused: dict[str, str] = {}
    try:
        session = _session(peer)
    except PeerUnavailable as exc:
        failure: str | None = str(exc)
    else:
        with session:
            read, refused, failure = _read_all(session, peer, bbox, kept, clock, cells)
    now = dt.datetime.now(dt.UTC)
    with conn.engine.begin() as write:
        for name, (features, tag) in read.items():
            _store(write, peer, name, bbox, tag, features, now)
        gone = set(refused) | ({CELLS} if "incidents" in read else set())
        for name in gone:  # what the peer no longer shares (or no longer needs) goes
            write.execute(text("DELETE FROM peer_collections WHERE peer = :p AND "
                               "collection = :c"), {"p": peer.name, "c": name})
        record_contact(write, peer.name, failure)
    with conn.engine.connect() as fresh:
        side = cached_side(fresh, peer)
    collections = dict(side.collections)
    for name in (*COLLECTIONS, *((CELLS,) if CELLS in collections or CELLS in refused
                                 else ())):
        if name in refused:
            collections[name] = PeerCollection(name, error=refused[name])
        elif name not in read:
            old = collections[name]
            collections[name] = PeerCollection(name, old.features, old.as_of, True,
                                               failure, old.etag)
    return TheirSide(peer, collections)
