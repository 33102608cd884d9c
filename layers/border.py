"""Border joint defence over stored layers: the picture of a shared border and patrol plans.

Two jurisdictions (usually cities) are read, projected to the UTM zone of their
middle, and handed to :mod:`geo.border`: the border line, the zone on both sides,
the road crossings and what covers them (checkpoints within 50 m, cameras whose field
of view with occlusion holds the crossing, see :mod:`layers.coverage`), the incidents
of both sides together with their hot cells (cells are laid over the whole zone, not
cut by the border) and the key areas. A patrol plan cuts the border into sectors of
balanced workload, gives them to the teams each city offers and stores each team's
route in ``patrol_routes``: on the roads within the zone's width beyond it, listing the
stops it could not reach and why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import shapely
from sqlalchemy import Connection, text

from geo.border import (
    REACH,
    TOLERANCE,
    UNCOVERED_WEIGHT,
    NotNeighbours,
    Patrol,
    border_zone,
    crossing_cover,
    crossings,
    plan_patrols,
    shared_border,
)
from geo.cellshare import CellTally, expand, tally
from geo.crs import Projection
from geo.hotspots import (
    benjamini_hochberg,
    classify,
    count_points,
    gi_star,
    square_cells,
    two_sided_p,
)

from . import edit
from .access import (
    BORDER_ZONE_M,
    Forbidden,
    border_zone_wkb,
    read_scope,
    require_within,
    require_write,
    subtree_codes,
)
from .coverage import REACH_M, Borrowed, CoverageQuery, Scene, look, watching
from .errors import UnknownJurisdiction, Unprocessable
from .hotspots import AGGREGATE_ONLY, MIN_SHOWN
from .incidents import read_incidents
from .peerclient import CELLS, RETRY_AFTER, TIMEOUT, PeerFeature, TheirSide, read_their_side
from .peers import Peer, peer_for
from .peerwrite import replace_routes
from .registry import INCIDENT_CATEGORIES, LAYERS
from .users import User
from .validate import LOCAL_TZ

__all__ = ["HOT_CELL", "READ_TABLES", "BadBorderRequest", "BorderQuery", "Neighbours",
           "border_view", "kept_border_view", "neighbour_pairs", "partner_incident_cells",
           "patrol_plan"]

MAX_WIDTH = 20_000.0
HOT_CELL = 250.0  # metres: the side of the hot-spot cells over the zone
MAX_TEAMS = 50
PEER_TIMEOUT = TIMEOUT  # seconds: a view waits this long at most for the other side
PLAN_TIMEOUT = 10.0  # seconds: a plan (asked for, and written on both) may wait longer


class BadBorderRequest(Unprocessable):
    """A border request that cannot be answered as asked (HTTP 422)."""

    http_status = 422


@dataclass(frozen=True)
class BorderQuery:
    """The two jurisdictions, the zone's width either side and the incidents' days."""

    a: str
    b: str
    width: float = 2000.0
    tolerance: float = 5.0
    days: int = 365

    def check(self) -> None:
        """BadBorderRequest naming the first unusable parameter."""
        if self.a == self.b:
            raise BadBorderRequest(f"a and b are both {self.a!r}; give two jurisdictions")
        if not (math.isfinite(self.width) and 0 < self.width <= MAX_WIDTH):
            raise BadBorderRequest(f"width must be more than 0 and at most {MAX_WIDTH:g} "
                                   f"metres, got {self.width!r}")
        if not (math.isfinite(self.tolerance) and 0 < self.tolerance <= 100):
            raise BadBorderRequest(f"tolerance must be more than 0 and at most 100 metres, "
                                   f"got {self.tolerance!r}")
        if not 1 <= self.days <= 3660:
            raise BadBorderRequest(f"days must be 1 to 3660, got {self.days!r}")


@dataclass
class _Border:
    query: BorderQuery
    names: dict[str, str]
    a: shapely.Geometry  # metric
    b: shapely.Geometry
    line: shapely.Geometry
    sides: dict[str, shapely.Geometry]  # code -> its side of the zone
    scene: Scene
    crossings: list = field(default_factory=list)
    cover: list = field(default_factory=list)
    roads: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    road_rows: list = field(default_factory=list)
    incidents: dict = field(default_factory=dict)  # xy, when, category, severity
    their: TheirSide | None = None  # the other side as read from its server (a peer)

    @property
    def zone(self) -> shapely.Geometry:
        """Both sides of the zone together (metric)."""
        return self.scene.area

    def lonlat(self, geom: shapely.Geometry) -> dict:
        return json.loads(shapely.to_geojson(self.scene.to_lonlat(np.array([geom],
                                                                          dtype=object))[0]))


def _allowed(conn: Connection, user: User, query: BorderQuery) -> None:
    if user.role == "admin":
        return
    if user.role == "border_partner":
        if {query.a, query.b} != {user.jurisdiction, user.partner}:
            raise Forbidden(f"a border partner sees only the border of {user.jurisdiction} "
                            f"and {user.partner}")
        if query.width > BORDER_ZONE_M:
            raise Forbidden(f"a border partner sees {BORDER_ZONE_M:g} m either side of the "
                            f"border at most")
        return
    require_within(conn, user, query.a)
    require_within(conn, user, query.b)


@dataclass(frozen=True)
class Neighbours:
    """Two jurisdictions of one level (cities, or districts) that share a border."""

    a: str
    a_name: str
    b: str
    b_name: str
    level: str


PAIR_LEVELS = ("city", "district")
# Whether two jurisdictions share a border, by (codes, ids and versions of both): the
# header of every map page asks.
_SHARED: dict[tuple, bool] = {}


def _metric(shapes: list[shapely.Geometry]) -> tuple[Projection, list[shapely.Geometry]]:
    """``shapes`` (lon/lat) in the UTM zone of their middle: (projection, shapes)."""
    projection = Projection.over(shapely.union_all(shapes))
    return projection, [projection.project(s) for s in shapes]


def _share_border(key: tuple, a: bytes, b: bytes) -> bool:
    """Whether the jurisdictions (WKB, lon/lat) share a border (:func:`shared_border`)."""
    if key not in _SHARED:
        _projection, (ma, mb) = _metric([shapely.from_wkb(a), shapely.from_wkb(b)])
        try:
            shared_border(ma, mb, TOLERANCE)
            found = True
        except NotNeighbours:
            found = False
        if len(_SHARED) > 4096:
            _SHARED.clear()
        _SHARED[key] = found
    return _SHARED[key]


def _scope_codes(conn: Connection, user: User) -> list[str] | None:
    """The jurisdictions a user may pair: None for all (admins)."""
    if user.role == "admin":
        return None
    if user.role == "border_partner":
        return [user.jurisdiction, user.partner]
    return subtree_codes(conn, user.jurisdiction)


def neighbour_pairs(conn: Connection, user: User) -> list[Neighbours]:
    """The pairs of neighbouring jurisdictions ``user`` may open on the border page.

    Two cities, or two districts, that share a border (:func:`geo.border.shared_border`
    at the default tolerance) and that both lie in the user's scope: anywhere for an
    admin, their own and the partner city for a border partner, their jurisdiction and
    what lies under it for the other roles. Cities first, then by code.
    """
    rows = conn.execute(text("""
        SELECT a.code AS a, a.name AS a_name, b.code AS b, b.name AS b_name, a.level,
               a.id AS a_id, a.version AS a_version, b.id AS b_id, b.version AS b_version,
               ST_AsBinary(a.geom) AS a_wkb, ST_AsBinary(b.geom) AS b_wkb
        FROM jurisdictions a JOIN jurisdictions b
             ON a.level = b.level AND a.code < b.code AND a.geom && ST_Expand(b.geom, 0.001)
        WHERE a.level = ANY(:levels)
          AND (CAST(:codes AS text[]) IS NULL OR (a.code = ANY(:codes) AND b.code = ANY(:codes)))
        ORDER BY array_position(CAST(:levels AS text[]), a.level::text), a.code, b.code"""),
        {"levels": list(PAIR_LEVELS), "codes": _scope_codes(conn, user)}).mappings().all()
    return [Neighbours(r["a"], r["a_name"], r["b"], r["b_name"], r["level"]) for r in rows
            if _share_border((r["a"], r["b"], r["a_id"], r["a_version"], r["b_id"],
                              r["b_version"]), bytes(r["a_wkb"]), bytes(r["b_wkb"]))]


def _require(conn: Connection, user: User, query: BorderQuery) -> None:
    """The checks of a border request, in order: parameters, both codes known, access."""
    query.check()
    known = set(conn.execute(text("SELECT code FROM jurisdictions WHERE code IN (:a, :b)"),
                             {"a": query.a, "b": query.b}).scalars())
    for code in (query.a, query.b):
        if code not in known:
            raise UnknownJurisdiction(f"unknown jurisdiction {code!r}")
    _allowed(conn, user, query)


def _their_boundary(their: TheirSide) -> shapely.Geometry | None:
    """The peer's own boundary of their jurisdiction (lon/lat), None when not read."""
    for f in their.features("jurisdictions"):
        if f.properties.get("code") == their.peer.b and \
                f.geometry.geom_type in ("Polygon", "MultiPolygon") and f.geometry.is_valid:
            return f.geometry
    return None


def _load(conn: Connection, user: User, query: BorderQuery,
          their: TheirSide | None = None) -> _Border:
    _require(conn, user, query)
    rows = {r["code"]: r for r in conn.execute(text(
        "SELECT code, name, ST_AsBinary(geom) AS wkb FROM jurisdictions WHERE code IN (:a, :b)"),
        {"a": query.a, "b": query.b}).mappings().all()}
    shapes = {c: shapely.from_wkb(bytes(rows[c]["wkb"])) for c in (query.a, query.b)}
    boundary = None if their is None else _their_boundary(their)
    if boundary is not None:  # the peer is the master of its boundary
        shapes[their.peer.b] = boundary
    projection, (a, b) = _metric([shapes[query.a], shapes[query.b]])
    try:
        line = shared_border(a, b, query.tolerance)
    except NotNeighbours as exc:
        raise BadBorderRequest(f"{query.a} and {query.b} are not neighbours: {exc}") from None
    side_a, side_b = border_zone(a, b, line, query.width)
    scene = Scene(f"{query.a}-{query.b}", shapely.union(side_a, side_b), projection)
    return _Border(query, {c: rows[c]["name"] for c in rows}, a, b, line,
                   {query.a: side_a, query.b: side_b}, scene, their=their)


def _peer_side(conn: Connection, user: User, query: BorderQuery,
               timeout: float = PEER_TIMEOUT, patient: bool = False) -> TheirSide | None:
    """The other side read from its server when a peer holds it (None: one database).

    The checks of the request (:func:`_require`) come first; the peer is asked only
    for the bounding box of the zone (:func:`layers.peerclient.read_their_side`),
    within ``timeout`` seconds in all; ``patient``: even when it just timed out (a
    view takes the kept copy for a while instead).
    """
    peer = peer_for(conn, query.a, query.b)
    if peer is None:
        return None
    start = (_period_start(query) - dt.timedelta(seconds=1)).astimezone(dt.UTC)
    terms = {"width": f"{query.width:g}", "tolerance": f"{query.tolerance:g}",
             "datetime": f"{start.isoformat(timespec='seconds')}/.."}
    return read_their_side(conn, peer, _zone_lonlat(_load(conn, user, query)),
                           timeout=timeout, retry_after=0.0 if patient else RETRY_AFTER,
                           cells=terms)


def _in_zone(border: _Border, features: tuple[PeerFeature, ...], metres: float = 0.0
             ) -> list[PeerFeature]:
    """The peer's ``features`` within ``metres`` of the zone (0: intersecting it)."""
    if not features:
        return []
    metric = border.scene.projection.project(np.array([f.geometry for f in features],
                                                      dtype=object))
    near = shapely.dwithin(metric, border.zone, metres) if metres else \
        shapely.intersects(metric, border.zone)
    return [f for f, keep in zip(features, near, strict=True) if keep]


def _their(border: _Border, collection: str, metres: float = 0.0) -> list[PeerFeature]:
    """The peer's features of ``collection`` in the zone; none without a peer."""
    if border.their is None:
        return []
    return _in_zone(border, border.their.features(collection), metres)


def _zone_lonlat(border: _Border) -> shapely.Geometry:
    """The zone in lon/lat (EPSG:4326), on the served 1e-7 degree grid."""
    return border.scene.to_lonlat(np.array([border.zone], dtype=object))[0]


def _zone_wkb(border: _Border) -> bytes:
    return shapely.to_wkb(_zone_lonlat(border))


def _read_roads(conn: Connection, border: _Border) -> None:
    rows = conn.execute(text(
        "SELECT r.id, r.name, r.class, ST_AsBinary(r.geom) AS wkb FROM roads r, "
        "ST_GeomFromWKB(:z, 4326) AS z WHERE r.geom && z AND ST_Intersects(r.geom, z) "
        "ORDER BY r.id"), {"z": _zone_wkb(border)}).mappings().all()
    theirs = _their(border, "roads")
    border.road_rows = [(r["id"], r["name"], r["class"]) for r in rows] + [
        (f.id, f.properties.get("name"), f.properties.get("class")) for f in theirs]
    shapes = [shapely.from_wkb(bytes(r["wkb"])) for r in rows] + [f.geometry for f in theirs]
    border.roads = border.scene.projection.project(np.array(shapes, dtype=object)) if shapes \
        else np.empty(0, dtype=object)


def _roads_near(conn: Connection, border: _Border, detour: float) -> np.ndarray:
    """The roads within ``detour`` metres of the zone (metric): where patrols may go."""
    around = shapely.buffer(border.zone, detour, quad_segs=4)
    rows = conn.execute(text(
        "SELECT ST_AsBinary(r.geom) FROM roads r, ST_GeomFromWKB(:z, 4326) AS z "
        "WHERE r.geom && z AND ST_Intersects(r.geom, z) ORDER BY r.id"),
        {"z": shapely.to_wkb(border.scene.to_lonlat(np.array([around], dtype=object))[0])}
    ).scalars().all()
    shapes = [shapely.from_wkb(bytes(r)) for r in rows] + \
        [f.geometry for f in _their(border, "roads", detour)]
    return border.scene.projection.project(np.array(shapes, dtype=object)) if shapes \
        else np.empty(0, dtype=object)


def _read_crossings(conn: Connection, border: _Border) -> None:
    border.crossings = crossings(border.roads, border.line, border.a, border.b,
                                 border.query.tolerance)
    points = np.array([[c.point.x, c.point.y] for c in border.crossings]).reshape(-1, 2)
    rows = conn.execute(text(
        "SELECT c.name, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat FROM checkpoints c, "
        "ST_GeomFromWKB(:z, 4326) AS z WHERE ST_DWithin(c.geom::geography, z::geography, 60) "
        "ORDER BY c.id"), {"z": _zone_wkb(border)}).mappings().all()
    rows = [dict(r) for r in rows] + [
        {"name": f.properties.get("name"), "lon": f.geometry.x, "lat": f.geometry.y}
        for f in _their(border, "checkpoints", 60.0) if f.geometry.geom_type == "Point"]
    checkpoints = np.column_stack(border.scene.projection.project_xy(
        [r["lon"] for r in rows], [r["lat"] for r in rows])) if rows else np.empty((0, 2))
    if border.their is not None:
        border.scene.borrowed = _borrowed(border.their)
    seeing = CoverageQuery(border.scene.code)
    look(conn, border.scene, border.zone, seeing)
    cameras = border.scene.cameras
    codes = list(cameras["code"][watching(cameras, seeing)]) if len(cameras) else []
    border.cover = crossing_cover(points, checkpoints, [r["name"] for r in rows],
                                  border.scene.views, codes)


def _their_camera(f: PeerFeature) -> dict | None:
    """A camera of the peer as the coverage scene takes it; None when it cannot see.

    The peer's numbers are checked as our own cameras' are (bearing in [0, 360), field
    of view in (0, 360], range in (0, REACH_M]): a peer's garbage costs no view.
    """
    p = f.properties
    try:
        bearing, fov, range_m = (float(p["bearing"]), float(p["fov"]), float(p["range_m"]))
    except (KeyError, TypeError, ValueError):
        return None
    if f.geometry.geom_type != "Point" or not isinstance(p.get("code"), str) or not (
            0 <= bearing < 360 and 0 < fov <= 360 and 0 < range_m <= REACH_M):
        return None
    return {"id": f.id, "code": p["code"], "bearing": bearing, "fov": fov,
            "range_m": range_m, "status": p.get("status"), "version": 0,
            "lon": f.geometry.x, "lat": f.geometry.y}


def _borrowed(their: TheirSide) -> Borrowed:
    """The peer's cameras (with what a view needs) and footprints, for the coverage scene."""
    cameras = []
    for f in their.features("cameras"):
        camera = _their_camera(f)
        if camera is not None:
            cameras.append(camera)
    buildings = tuple(f.geometry for f in their.features("buildings")
                      if f.geometry.geom_type in ("Polygon", "MultiPolygon"))
    # the views are kept under this: what they depend on only (not the peer's incidents,
    # nor when it was read)
    digest = hashlib.sha256(json.dumps(cameras, sort_keys=True, default=str).encode())
    for footprint in buildings:
        digest.update(shapely.to_wkb(footprint))
    return Borrowed(their.peer.name, tuple(cameras), buildings, (digest.hexdigest(),))


def _their_incidents(border: _Border, start: dt.datetime) -> dict:
    """The peer's incidents in the zone since ``start``: lon, lat, epoch, severity, category."""
    out: dict[str, list] = {"lon": [], "lat": [], "epoch": [], "severity": [], "category": []}
    for f in _their(border, "incidents"):
        p = f.properties
        try:
            when = dt.datetime.fromisoformat(str(p.get("occurred_at")))
        except ValueError:
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=LOCAL_TZ)
        if f.geometry.geom_type != "Point" or when < start:
            continue
        out["lon"].append(f.geometry.x)
        out["lat"].append(f.geometry.y)
        out["epoch"].append(when.timestamp())
        out["severity"].append(float(p.get("severity") or 1))
        out["category"].append(p.get("category"))
    return out


def _period_start(query: BorderQuery) -> dt.datetime:
    """The start of the incidents' period: ``days`` days before now."""
    return dt.datetime.now(dt.UTC) - dt.timedelta(days=query.days)


def _local_hours(epoch: np.ndarray) -> np.ndarray:
    local = np.asarray(epoch, dtype=float) + \
        LOCAL_TZ.utcoffset(dt.datetime.now()).total_seconds()  # no DST
    return ((local // 3600) % 24).astype(int)


def _their_cells(border: _Border) -> list[CellTally] | None:
    """The peer's incidents as counts per cell when it gives them so (None otherwise).

    A cell is used only when it is on our lattice (the zone's metric CRS and
    :data:`HOT_CELL`) and adds up (its hours and categories count its incidents).
    """
    their = border.their
    if their is None or _incidents_shared(their) != "cells":
        return None
    cells = []
    for f in their.features(CELLS):
        cell = _cell_tally(border, f.properties)
        if cell is not None:
            cells.append(cell)
    return cells


def _cell_tally(border: _Border, p: dict) -> CellTally | None:
    """One of the peer's cells as a tally; None when it is not one of our lattice's."""
    try:
        hours = tuple(int(h) for h in p["by_hour"])
        kinds = {str(k): int(v) for k, v in dict(p["by_category"]).items()}
        cell = CellTally(int(p["col"]), int(p["row"]), str(p["side"]), int(p["count"]),
                         float(p["severity"]), hours, kinds)
        fits = p["crs"] == border.scene.crs and float(p["size_m"]) == HOT_CELL
    except (KeyError, TypeError, ValueError):
        return None
    sound = (cell.count > 0 and len(hours) == 24 and min(hours) >= 0
             and sum(hours) == cell.count and sum(kinds.values()) == cell.count
             and min(kinds.values(), default=0) >= 0 and math.isfinite(cell.severity)
             and cell.severity >= 0 and cell.side in border.sides)
    return cell if fits and sound else None


def _read_incidents(conn: Connection, border: _Border) -> None:
    start = _period_start(border.query)
    incidents = read_incidents(conn, border.scene.crs, area=_zone_lonlat(border), start=start)
    xy, epoch = incidents.xy.reshape(-1, 2), incidents.epoch
    category, severity = incidents.category, incidents.severity
    theirs = _their_incidents(border, start)
    if theirs["epoch"]:
        more = np.column_stack(border.scene.projection.project_xy(theirs["lon"], theirs["lat"]))
        xy = np.concatenate([xy, more])
        epoch = np.concatenate([epoch, np.array(theirs["epoch"], dtype=float)])
        category = np.concatenate([category, np.array(theirs["category"], dtype=object)])
        severity = np.concatenate([severity, np.array(theirs["severity"], dtype=float)])
    border.incidents = {"xy": xy, "hour": _local_hours(epoch), "category": category,
                        "severity": severity, "side": _side_of(border, xy)}
    cells = _their_cells(border)
    if cells:  # the peer's incidents as stand-ins at their cells' centres
        more = expand(cells, HOT_CELL)
        for key, values in (("xy", more.xy), ("hour", more.hour), ("side", more.side),
                            ("category", more.category), ("severity", more.severity)):
            border.incidents[key] = np.concatenate([border.incidents[key], values])


def _side_of(border: _Border, xy: np.ndarray) -> np.ndarray:
    a = border.sides[border.query.a]
    inside = shapely.contains_xy(a, xy[:, 0], xy[:, 1]) if len(xy) else np.zeros(0, bool)
    return np.where(inside, border.query.a, border.query.b)


def _hot_cells(border: _Border, user: User) -> tuple[list[dict], list[tuple]]:
    """Gi* hot cells (95 %+, FDR) over the whole zone: features and (centre, count)."""
    xy = border.incidents["xy"]
    if len(xy) < 3:
        return [], []
    lattice = square_cells(border.zone, HOT_CELL)
    counts = count_points(lattice, xy)
    z = gi_star(lattice, counts)
    label = classify(z, benjamini_hochberg(two_sided_p(z))).astype(str)
    hot = np.isin(label, ("hot_95", "hot_99"))
    if user.role in AGGREGATE_ONLY:
        hot &= counts >= MIN_SHOWN
    cells = lattice.cells.geometry.values
    features, centres = [], []
    for i in np.flatnonzero(hot):
        features.append({"type": "Feature", "geometry": border.lonlat(cells[i]),
                         "properties": {"count": int(counts[i]), "z": round(float(z[i]), 3),
                                        "class": label[i]}})
        centre = cells[i].centroid
        centres.append(((centre.x, centre.y), int(counts[i])))
    return features, centres


def _incident_summary(border: _Border) -> dict:
    inc = border.incidents
    sides = inc["side"]
    return {"total": int(len(inc["xy"])), "days": border.query.days,
            "by_side": {c: int((sides == c).sum()) for c in border.sides},
            "by_category": {c: int((inc["category"] == c).sum()) for c in INCIDENT_CATEGORIES
                            if (inc["category"] == c).any()},
            "by_hour": np.bincount(inc["hour"], minlength=24).tolist()}


def _crossing_features(border: _Border) -> list[dict]:
    out = []
    sides = _side_of(border, np.array([[c.point.x, c.point.y] for c in border.crossings])
                     .reshape(-1, 2))
    for n, (c, (covered, by)) in enumerate(zip(border.crossings, border.cover, strict=True)):
        road_id, name, kind = border.road_rows[c.road]
        out.append({"type": "Feature", "id": n + 1, "geometry": border.lonlat(c.point),
                    "properties": {"road_id": road_id, "road": name, "class": kind,
                                   "covered": covered, "covered_by": by,
                                   "side": str(sides[n])}})
    return out


def _key_areas(conn: Connection, border: _Border) -> list[dict]:
    rows = conn.execute(text(
        "SELECT k.id, k.name, k.category, ST_AsGeoJSON(k.geom, 7) AS geojson, "
        "ST_X(ST_PointOnSurface(k.geom)) AS lon, ST_Y(ST_PointOnSurface(k.geom)) AS lat "
        "FROM key_areas k, ST_GeomFromWKB(:z, 4326) AS z WHERE k.geom && z "
        "AND ST_Intersects(k.geom, z) ORDER BY k.id"), {"z": _zone_wkb(border)}).mappings().all()
    rows = [dict(r) for r in rows]
    source = None if border.their is None else border.their.peer.name
    for f in _their(border, "key_areas"):
        inside = shapely.point_on_surface(f.geometry)
        rows.append({"id": f"{source}:{f.id}", "name": f.properties.get("name"),
                     "category": f.properties.get("category"),
                     "geojson": shapely.to_geojson(f.geometry), "lon": inside.x,
                     "lat": inside.y})
    at = np.column_stack(border.scene.projection.project_xy([r["lon"] for r in rows],
                                                            [r["lat"] for r in rows])) if rows \
        else np.empty((0, 2))
    sides = _side_of(border, at)
    return [{"type": "Feature", "id": r["id"], "geometry": json.loads(r["geojson"]),
             "properties": {"name": r["name"], "category": r["category"], "side": str(s)}}
            for r, s in zip(rows, sides, strict=True)]


def _owners(conn: Connection, codes: list[str], level: str) -> dict[str, str]:
    """Each jurisdiction of ``codes`` -> its ancestor (or itself) at ``level``, if any."""
    rows = conn.execute(text("""
        WITH RECURSIVE up(start, code, parent_code, level) AS (
            SELECT j.code, j.code, j.parent_code, j.level::text FROM jurisdictions j
            WHERE j.code = ANY(:codes)
            UNION ALL
            SELECT up.start, p.code, p.parent_code, p.level::text FROM up
            JOIN jurisdictions p ON p.code = up.parent_code WHERE up.level <> :level)
        SELECT start, code FROM up WHERE level = :level"""),
        {"codes": codes, "level": level}).all()
    return {r[0]: r[1] for r in rows}


def _our_cameras(conn: Connection, user: User, ids: list[int]) -> dict[int, dict]:
    """Our cameras of ``ids`` that ``user`` may read: id -> lon, lat, jurisdiction_code."""
    try:
        scope = read_scope(conn, user, LAYERS["cameras"])
    except Forbidden:
        return {}
    where = f" AND ({scope.condition})" if scope.condition else ""
    rows = conn.execute(text(
        "SELECT t.id, ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat, t.jurisdiction_code "
        f"FROM cameras t WHERE t.id = ANY(:ids){where}"),
        {"ids": ids, **scope.params}).mappings().all()
    return {r["id"]: dict(r) for r in rows}


def _camera_features(conn: Connection, user: User, border: _Border) -> list[dict]:
    """The cameras that see into the zone (ours and the peer's), as the user may see them.

    Points (lon/lat, as stored where they are kept) with code, status, bearing, fov,
    range_m, ``side`` (the jurisdiction of the pair the camera stands in, the one it
    belongs to when it stands on the border line, within the query's tolerance, or
    beyond both: of the pair's level, the peer's city for the peer's cameras) and
    ``server`` ("local", or the peer's name). Ours are those the user may read
    (:func:`layers.access.read_scope`); a border partner gets only cameras standing in
    the zone its scope allows, the peer's included.
    """
    cams = border.scene.cameras
    if not len(cams):
        return []
    ours = _our_cameras(conn, user, [int(i) for i in cams["id"] if not isinstance(i, str)])
    borrowed = border.scene.borrowed
    source = None if borrowed is None else borrowed.source
    theirs = {} if borrowed is None else {f"{source}:{c['id']}": c for c in borrowed.cameras}
    zone = shapely.from_wkb(border_zone_wkb(conn, user.jurisdiction, user.partner)) \
        if user.role == "border_partner" else None
    level = conn.execute(text("SELECT level::text FROM jurisdictions WHERE code = :c"),
                         {"c": border.query.a}).scalar_one()
    owners = _owners(conn, sorted({r["jurisdiction_code"] for r in ours.values()
                                   if r["jurisdiction_code"]}), level)
    out = []
    for row in cams.itertuples(index=False):
        seen = ours.get(row.id) if not isinstance(row.id, str) else theirs.get(row.id)
        if seen is None or (zone is not None and not zone.intersects(
                shapely.Point(seen["lon"], seen["lat"]))):
            continue
        owner = border.their.peer.b if isinstance(row.id, str) else \
            owners.get(seen["jurisdiction_code"], seen["jurisdiction_code"])
        # within the border's tolerance of the city it belongs to (on the line itself):
        # that city's side
        standing = [code for code, shape in ((border.query.a, border.a),
                                             (border.query.b, border.b))
                    if shapely.dwithin(shape, row.geometry, border.query.tolerance)]
        side = owner if owner in standing or not standing else standing[0]
        out.append({"type": "Feature", "id": row.id if isinstance(row.id, str) else int(row.id),
                    "geometry": {"type": "Point", "coordinates": [seen["lon"], seen["lat"]]},
                    "properties": {"code": row.code, "status": row.status,
                                   "bearing": float(row.bearing), "fov": float(row.fov),
                                   "range_m": float(row.range_m), "side": side,
                                   "server": source if isinstance(row.id, str) else "local"}})
    return out


def _road_cover(border: _Border) -> dict:
    lines = shapely.intersection(border.roads, border.zone) if len(border.roads) else []
    total = float(shapely.length(lines).sum()) if len(lines) else 0.0
    if total == 0 or len(border.scene.views) == 0:
        return {"road_length_m": round(total, 1), "road_covered_ratio": 0.0 if total else None}
    seen = shapely.intersection(shapely.union_all(lines), shapely.union_all(border.scene.views))
    return {"road_length_m": round(total, 1),
            "road_covered_ratio": round(float(shapely.length(seen)) / total, 4)}


def _read(conn: Connection, user: User, query: BorderQuery,
          their: TheirSide | None = None) -> _Border:
    border = _load(conn, user, query, their)
    _read_roads(conn, border)
    _read_crossings(conn, border)
    _read_incidents(conn, border)
    return border


def _when(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def _sources(query: BorderQuery, their: TheirSide | None, computed: str | None = None) -> dict:
    """Per side: which server its layers came from, as of when, stale or not and why.

    ``computed``: when our side was read (ISO 8601; default now).
    """
    now = computed or _when(dt.datetime.now(dt.UTC))
    out = {code: {"server": "local", "as_of": now, "stale": False}
           for code in (query.a, query.b)}
    if their is not None:
        peer: Peer = their.peer
        out[peer.b] = {"server": "peer", "peer": peer.name, "url": peer.url,
                       "as_of": _when(their.as_of), "stale": their.stale,
                       "error": their.error, "incidents": _incidents_shared(their)}
    return out


def _incidents_shared(their: TheirSide) -> str:
    """How the peer gives its incidents: ``points``, ``cells`` or ``none``.

    ``cells``: counts per cell only; ``none``: kept to itself, or never read.
    """
    if their.collections["incidents"].as_of is not None:
        return "points"
    cells = their.collections.get(CELLS)  # kept only while the points are not shared
    return "cells" if cells is not None and cells.as_of is not None else "none"


def border_view(conn: Connection, user: User, query: BorderQuery) -> dict:
    """The border, its zone (one feature per side), crossings, incidents, hot cells.

    ``cameras``: the cameras that see into the zone, each with the server it came from
    (:func:`_camera_features`), so every camera a crossing's ``covered_by`` names is
    among them for a user who may read it.

    When a peer (another city's server, :mod:`layers.peers`) holds one side, that
    side's layers are read from it (:func:`layers.peerclient.read_their_side`) and
    merged with ours; ``sources`` says per side where its layers came from and as of
    when (stale, with the reason, when the peer failed and a kept copy was used).
    """
    _require(conn, user, query)
    return _view(conn, user, query, _peer_side(conn, user, query))


def _view(conn: Connection, user: User, query: BorderQuery, their: TheirSide | None) -> dict:
    border = _read(conn, user, query, their)
    hot, _centres = _hot_cells(border, user)
    crossing_features = _crossing_features(border)
    uncovered = sum(not f["properties"]["covered"] for f in crossing_features)
    zone = [{"type": "Feature", "id": code, "geometry": border.lonlat(side),
             "properties": {"side": code, "name": border.names[code],
                            "area_m2": round(float(side.area), 1)}}
            for code, side in border.sides.items()]
    return {
        "a": query.a, "b": query.b, "line": border.lonlat(border.line),
        "length_m": round(float(border.line.length), 1),
        "zone": {"type": "FeatureCollection", "features": zone},
        "crossings": {"type": "FeatureCollection", "features": crossing_features},
        "incidents": _incident_summary(border),
        "hot_cells": {"type": "FeatureCollection", "features": hot},
        "key_areas": {"type": "FeatureCollection", "features": _key_areas(conn, border)},
        "cameras": {"type": "FeatureCollection",
                    "features": _camera_features(conn, user, border)},
        "coverage": {"crossings": len(crossing_features), "uncovered_crossings": uncovered,
                     **_road_cover(border)},
        "parameters": {"width": query.width, "tolerance": query.tolerance,
                       "days": query.days, "metric_crs": border.scene.crs,
                       "hot_cell": HOT_CELL},
        "sources": _sources(query, their),
    }


def partner_incident_cells(conn: Connection, user: User, query: BorderQuery,
                           start: dt.datetime | None, end: dt.datetime | None = None
                           ) -> list[dict]:
    """Our incidents in the border zone of ``query`` in [start, end), as counts per cell.

    What a border partner given cells only (``users.partner_incidents``) reads instead
    of the points: one GeoJSON feature (lon/lat) per cell of :data:`HOT_CELL` metres in
    the zone's metric CRS and per side of the border holding any incident, with the
    tally of :func:`geo.cellshare.tally` (``col``, ``row``, ``side``, ``count``,
    ``severity``, ``by_hour``, ``by_category``) and ``size_m`` and ``crs``, so the
    partner lays the same lattice. Ordered by ``id`` (row, column, side).
    """
    border = _load(conn, user, query)
    found = read_incidents(conn, border.scene.crs, area=_zone_lonlat(border), start=start,
                           end=end)
    xy = found.xy.reshape(-1, 2)
    features = []
    for t in tally(xy, _side_of(border, xy), _local_hours(found.epoch), found.category,
                   found.severity, HOT_CELL):
        box = shapely.box(t.col * HOT_CELL, t.row * HOT_CELL, (t.col + 1) * HOT_CELL,
                          (t.row + 1) * HOT_CELL)
        features.append({
            "type": "Feature", "id": (t.row * 1_000_000 + t.col) * 2 + (t.side != query.a),
            "geometry": border.lonlat(box),
            "properties": {"col": t.col, "row": t.row, "side": t.side, "count": t.count,
                           "severity": round(t.severity, 6), "by_hour": list(t.by_hour),
                           "by_category": t.by_category, "size_m": HOT_CELL,
                           "crs": border.scene.crs}})
    return sorted(features, key=lambda f: f["id"])


# The tables border_view reads: the two jurisdictions, the roads and their crossings,
# the checkpoints, the cameras with the buildings that hide their views, the incidents
# and the key areas (patrol routes are not shown by it).
READ_TABLES = ("jurisdictions", "roads", "checkpoints", "cameras", "buildings", "incidents",
               "key_areas")
KEPT_SECONDS = 300.0  # the incidents of the last N days slide with the clock
_KEPT_ANSWERS = 64
# (query, scope, versions of READ_TABLES, state of a peer's side) -> (monotonic time
# computed, JSON text without its sources, when our side was read)
_ANSWERS: OrderedDict[tuple, tuple[float, str, str]] = OrderedDict()
_ANSWERS_LOCK = threading.Lock()


def _scope(user: User) -> tuple:
    """What of the user an answer may depend on: role (aggregates), jurisdiction, partner."""
    return user.role, user.jurisdiction, user.partner


def _versions(conn: Connection) -> tuple | None:
    """The versions of :data:`READ_TABLES` (same order); None when one is not tracked.

    None too inside a transaction that has written: its versions may be rolled back.
    """
    rows = conn.execute(text("SELECT layer, version, txid_current_if_assigned() IS NULL "
                             "FROM layer_versions WHERE layer = ANY(:names)"),
                        {"names": list(READ_TABLES)}).all()
    found = {r[0]: r[1] for r in rows}
    # a transaction that has written sees versions that may yet roll back: not kept
    if len(found) < len(READ_TABLES) or not all(r[2] for r in rows):
        return None
    return tuple(found[name] for name in READ_TABLES)


def kept_border_view(conn: Connection, user: User, query: BorderQuery) -> str:
    """:func:`border_view` as JSON text, kept per process while nothing it reads changes.

    The checks (parameters, known jurisdictions, the user's access) run on every call.
    An answer is kept under the query, the user's scope (role, jurisdiction, partner:
    one scope's answer is never given to another) and the versions of every table it
    reads (:data:`READ_TABLES`, :func:`layers.features.table_version`): any write to
    one of them (through safegrid or plain SQL) makes the next call compute afresh.
    As the incidents are those of the last ``days`` days before now, an answer is also
    kept at most :data:`KEPT_SECONDS` (5 minutes): the window's start may lag that much.
    The versions are read before the answer is computed, so a write committing during
    the computation can only make the kept answer newer than its key, never older.
    At most the 64 answers used last are kept. With a peer holding the other side, the
    peer is asked on every call (revalidated by its ETags) and the answer is kept under
    the state of what was read from it too; an answer built on a stale or absent side
    is never kept.
    """
    _require(conn, user, query)
    versions = _versions(conn)
    their = _peer_side(conn, user, query)
    if their is not None and (their.stale or their.absent):
        versions = None  # never kept: the next call asks the peer again
    key = (query, _scope(user), versions, None if their is None else their.stamp)
    now = time.monotonic()
    with _ANSWERS_LOCK:
        kept = _ANSWERS.get(key) if versions is not None else None
        if kept is not None and now - kept[0] <= KEPT_SECONDS:
            _ANSWERS.move_to_end(key)
            return _with_sources(kept[1], query, their, kept[2])
    body = _view(conn, user, query, their)
    computed = next(s["as_of"] for s in body.pop("sources").values() if s["server"] == "local")
    answer = json.dumps(body, ensure_ascii=False, default=str)
    if versions is not None:
        with _ANSWERS_LOCK:
            _ANSWERS[key] = (now, answer, computed)
            _ANSWERS.move_to_end(key)
            while len(_ANSWERS) > _KEPT_ANSWERS:
                _ANSWERS.popitem(last=False)
    return _with_sources(answer, query, their, computed)


def _with_sources(answer: str, query: BorderQuery, their: TheirSide | None,
                  computed: str) -> str:
    """``answer`` (JSON text of an object) with its ``sources`` as of this call.

    A kept answer over a peer's side it has just revalidated says so.
    """
    sources = json.dumps(_sources(query, their, computed), ensure_ascii=False)
    return f'{answer[:-1]}, "sources": {sources}}}'


# --- patrol plans -------------------------------------------------------------------

def _teams(query: BorderQuery, teams: dict) -> dict[str, int]:
    if not isinstance(teams, dict) or set(teams) != {query.a, query.b}:
        raise BadBorderRequest(f"teams must give the number of teams of {query.a} and of "
                               f"{query.b}, e.g. {{\"{query.a}\": 2, \"{query.b}\": 2}}")
    for code, n in teams.items():
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_TEAMS:
            raise BadBorderRequest(f"teams of {code} must be a whole number from 0 to "
                                   f"{MAX_TEAMS}, got {n!r}")
    if sum(teams.values()) == 0:
        raise BadBorderRequest("at least one team is needed")
    return {query.a: teams[query.a], query.b: teams[query.b]}


def patrol_plan(conn: Connection, user: User, query: BorderQuery, teams: dict) -> dict:
    """Sectors of balanced workload and each team's stored patrol route.

    The plan is :func:`geo.border.plan_patrols` over the roads within the zone's width
    beyond it (a route may leave the zone by that much to join its stops), the
    crossings (and whether they are covered), incidents and hot cells; every sector and
    route lists the stops missed (``unreached``: kind, lon, lat, reason, distance_m).
    Routes earlier planned for this border are replaced.

    When a peer holds the other side, its side is read first and must be fresh (else
    :class:`PeerUnavailable`, nothing written); our teams' routes are written here (in
    the caller's transaction), the partner's on the peer
    (:func:`layers.peerwrite.replace_routes`) last: when that fails (PeerUnavailable,
    PeerConflict) the error propagates and the caller's transaction rolls ours back.
    """
    require_write(user, LAYERS["patrol_routes"])
    _require(conn, user, query)
    counts = _teams(query, teams)
    their = _peer_side(conn, user, query, PLAN_TIMEOUT, patient=True)
    if their is not None:
        their.require_fresh()
    border = _read(conn, user, query, their)
    _hot, centres = _hot_cells(border, user)
    inc = border.incidents
    plan = plan_patrols(border.line, border.sides, counts,
                        _roads_near(conn, border, query.width),
                        [[c.point.x, c.point.y] for c in border.crossings],
                        [c[0] for c in border.cover], inc["xy"], inc["hour"],
                        inc["severity"], centres, query.width, query.width)
    key = "-".join(sorted((query.a, query.b)))
    _remove_routes(conn, user, key)
    features, remote = [], []  # remote: (answer feature, route for the peer)
    for patrol in plan:
        out, route = _patrol_features(conn, user, border, patrol, key)
        features.extend(out)
        if route is not None:
            remote.append((out[-1], route))
    if their is not None:
        ids = replace_routes(their.peer, key, [route for _out, route in remote])
        for (out, _route), route_id in zip(remote, ids, strict=True):
            out["id"] = route_id
            out["properties"]["server"] = their.peer.name
    loads = [p.sector.workload for p in plan]
    summary = {"teams": counts, "sectors": len(plan),
               "length_m": round(float(border.line.length), 1),
               "balance": round(max(loads) / min(loads), 4) if min(loads) > 0 else None,
               "incidents": int(len(inc["xy"])),
               "uncovered_crossings": sum(not c[0] for c in border.cover)}
    return {"type": "FeatureCollection", "features": features, "summary": summary,
            "parameters": {"a": query.a, "b": query.b, "width": query.width,
                           "tolerance": query.tolerance, "days": query.days,
                           "uncovered_weight": UNCOVERED_WEIGHT, "detour_m": query.width,
                           "reach_m": REACH, "metric_crs": border.scene.crs}}


def _remove_routes(conn: Connection, user: User, key: str) -> None:
    layer = LAYERS["patrol_routes"]
    for route_id in conn.execute(text("SELECT id FROM patrol_routes WHERE border = :k"),
                                 {"k": key}).scalars().all():
        edit.delete(conn, user, layer, route_id, None)


def _unreached(border: _Border, patrol: Patrol) -> list[dict]:
    """The stops the team's route misses: kind, where (lon, lat), reason, metres to a road."""
    out = []
    for stop in patrol.unreached:
        lon, lat = border.scene.projection.unproject_xy(*stop.point)
        out.append({"kind": stop.kind, "lon": round(lon, 7), "lat": round(lat, 7),
                    "reason": stop.reason,
                    "distance_m": None if stop.distance is None else round(stop.distance, 1)})
    return out


def _patrol_features(conn: Connection, user: User, border: _Border, patrol: Patrol,
                     key: str) -> tuple[list[dict], dict | None]:
    """The sector's feature and the team's route; both list the stops missed.

    The route is stored here, unless the team's city is held by a peer: then it is
    returned (second) to be written there.
    """
    sector = patrol.sector
    common = {"city": patrol.city, "team": patrol.team,
              "workload": round(sector.workload, 3), "hours": patrol.hours,
              "stops": patrol.stops, "stops_reached": patrol.reached,
              "unreached": _unreached(border, patrol)}
    out = [{"type": "Feature", "geometry": border.lonlat(sector.line),
            "properties": {"kind": "sector", **common,
                           "from_m": round(sector.start, 1), "to_m": round(sector.end, 1),
                           "length_m": round(sector.end - sector.start, 1),
                           "crossings": patrol.crossings, "uncovered": patrol.uncovered}}]
    if patrol.route.is_empty:
        return out, None
    name = f"{border.names[patrol.city]}第{patrol.team}巡逻队"
    feature = {"type": "Feature", "geometry": border.lonlat(patrol.route),
               "properties": {"name": name, "border": key, "team": patrol.team,
                              "workload": round(sector.workload, 3), "hours": patrol.hours,
                              "jurisdiction_code": patrol.city}}
    theirs = border.their is not None and patrol.city == border.their.peer.b
    route_id = None if theirs else edit.create(conn, user, LAYERS["patrol_routes"], feature).id
    out.append({"type": "Feature", "id": route_id, "geometry": feature["geometry"],
                "properties": {"kind": "route", **common, "name": name,
                               "length_m": round(float(patrol.route.length), 1)}})
    return out, feature if theirs else None
