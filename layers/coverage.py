"""Camera coverage of a jurisdiction's targets, its gaps and where new cameras should go.

Cameras and buildings within reach of the jurisdiction are read, projected to the
jurisdiction's UTM zone and turned into fields of view by :mod:`geo.coverage`. A
camera's view is cached per process by (camera id, version, a stamp of the buildings
table): when one camera changes only its view is recomputed. Targets are key areas,
school safety zones, grids (area and road length) and road pieces; gaps carry a risk
from the last ``days`` of incidents (kernel density, doubled in Gi* hot cells, times
the key-area category weight, times the weight of the target's risk level when the
jurisdiction's places were graded: :data:`RISK_LEVEL_WEIGHTS`, :func:`risk_levels`).
Gaps and siting runs are saved in ``coverage_runs``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cached_property

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from geo.coverage import (
    CATEGORY_WEIGHT,
    ROAD_CORRIDOR,
    coverage_ratio,
    field_of_view,
    gap_ground,
    gap_risk,
    gaps,
    key_area_shapes,
    measure,
    risk_density,
    roads_within,
    school_zones,
    sector,
    views_over,
    watched,
)
from geo.crs import Projection
from geo.hotspots import (
    Lattice,
    benjamini_hochberg,
    classify,
    count_points,
    gi_star,
    kde,
    square_cells,
    two_sided_p,
)
from geo.siting import (
    CameraModel,
    candidate_sites,
    coverage_options,
    demand_points,
    marginal_gains,
    max_cover,
)

from .access import jurisdiction_to_analyse, subtree_codes
from .errors import SafegridError
from .hotspots import AGGREGATE_ONLY, MIN_SHOWN
from .runs import load_run, runs_of, save_run
from .users import User

__all__ = ["RISK_LEVEL_WEIGHTS", "BadCoverageRequest", "Borrowed", "CoverageQuery",
           "CoveredTargets", "Proposed", "Scene", "SitingRequest", "TARGETS", "camera_views",
           "coverage", "coverage_gaps", "covered_targets", "get_run", "grid_coverage",
           "list_runs", "look", "risk_level_factors", "risk_levels", "siting", "watching"]

TARGETS = ("key_areas", "school_zones", "grids", "roads")
SCHOOLS = ("school", "kindergarten")
REACH_M = 1000.0  # the longest camera range: cameras this far outside can see in
RISK_CELL = 100.0  # metres: lattice of the incident risk surface
SITING_SPACING = 10.0  # metres between demand points
MAX_K = 200
MAX_DEMAND = 400_000
MAX_SITES = 10_000  # candidate sites per siting run (thinned evenly beyond this)


class BadCoverageRequest(SafegridError):
    """Parameters a coverage request cannot use (HTTP 400)."""

    http_status = 400


@dataclass(frozen=True)
class Proposed:
    """A camera that is not installed (what-if), in lon/lat."""

    lon: float
    lat: float
    bearing: float
    fov: float
    range_m: float


@dataclass(frozen=True)
class CoverageQuery:
    """Which targets of which jurisdiction, and which cameras count."""

    jurisdiction: str
    target: str = "key_areas"
    school_buffer: float = 200.0  # metres around schools and kindergartens
    off: tuple[str, ...] = ()  # camera codes taken out (maintenance)
    add: tuple[Proposed, ...] = ()  # cameras added (not installed)
    planned: bool = False  # count cameras with status planned as installed
    days: int = 365  # incidents of this many days before now make the risk

    def check(self) -> None:
        """BadCoverageRequest naming the first unusable parameter."""
        if self.target not in TARGETS:
            raise BadCoverageRequest(f"unknown target {self.target!r}; targets are "
                                     f"{', '.join(TARGETS)}")
        if not (math.isfinite(self.school_buffer) and 0 < self.school_buffer <= 2000):
            raise BadCoverageRequest(f"school_buffer must be in (0, 2000] metres, got "
                                     f"{self.school_buffer!r}")
        if not 1 <= self.days <= 3660:
            raise BadCoverageRequest(f"days must be 1 to 3660, got {self.days!r}")
        for i, cam in enumerate(self.add):
            _check_camera(cam, f"add[{i}]")


def _check_camera(cam: Proposed, where: str) -> None:
    if not (-180 <= cam.lon <= 180 and -90 <= cam.lat <= 90):
        raise BadCoverageRequest(f"{where}: lon/lat ({cam.lon}, {cam.lat}) is not on Earth")
    if not 0 <= cam.bearing < 360:
        raise BadCoverageRequest(f"{where}: bearing must be in [0, 360) degrees, got "
                                 f"{cam.bearing!r}")
    if not 0 < cam.fov <= 360:
        raise BadCoverageRequest(f"{where}: fov must be in (0, 360] degrees, got {cam.fov!r}")
    if not 0 < cam.range_m <= REACH_M:
        raise BadCoverageRequest(f"{where}: range_m must be in (0, {REACH_M:g}] metres, got "
                                 f"{cam.range_m!r}")


# --- the scene: area, cameras, buildings, views -----------------------------------------

@dataclass(frozen=True)
class Borrowed:
    """Cameras and buildings read from elsewhere (another city's server), in lon/lat.

    ``cameras`` rows carry id, code, bearing, fov, range_m, status, version, lon, lat;
    their ids are made unique as ``"{source}:{id}"`` in the scene. ``stamp`` changes
    whenever what was read changes (views are cached under it).
    """

    source: str
    cameras: tuple[dict, ...] = ()
    buildings: tuple[shapely.Geometry, ...] = ()
    stamp: tuple = ()


@dataclass
class Scene:
    """An area (metric) with its projection, and the cameras that see it."""

    code: str
    area: shapely.Geometry  # metric
    projection: Projection  # lon/lat <-> the metric CRS
    # metric; id, code, bearing, fov, range_m, status, version
    cameras: gpd.GeoDataFrame = field(default_factory=gpd.GeoDataFrame)
    buildings: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    views: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    reach: shapely.Geometry | None = None  # metric: the area and its targets
    stamp: tuple = ()  # of the buildings read (views are cached under it)
    borrowed: Borrowed | None = None  # cameras and footprints from another server
    crs: str = field(init=False)  # the metric CRS, e.g. "EPSG:32649"

    def __post_init__(self) -> None:
        self.crs = self.projection.crs.to_string()

    @cached_property
    def building_tree(self) -> shapely.STRtree | None:
        """An STRtree of the footprints (built on first use), None without footprints."""
        return shapely.STRtree(self.buildings) if len(self.buildings) else None

    def to_lonlat(self, geoms: np.ndarray) -> np.ndarray:
        """Metric geometries in lon/lat, on a 1e-7 degree grid."""
        out = self.projection.unproject(np.asarray(geoms, dtype=object))
        try:
            return shapely.set_precision(out, 1e-7)
        except shapely.errors.GEOSException:  # a sliver rounding cannot keep valid
            return np.array([_rounded(g) for g in out], dtype=object)


def _rounded(geom: shapely.Geometry) -> shapely.Geometry:
    """``geom`` on a 1e-7 degree grid, valid (rounded pointwise and repaired if need be)."""
    try:
        return shapely.set_precision(geom, 1e-7)
    except shapely.errors.GEOSException:
        return shapely.make_valid(shapely.set_precision(geom, 1e-7, mode="pointwise"))


_BUILDINGS: OrderedDict[tuple, tuple] = OrderedDict()  # (crs, box) -> (stamp, footprints)
_VIEWS: OrderedDict[tuple, shapely.Geometry] = OrderedDict()  # (cam id, version, ...) -> view
_MAX_VIEWS = 200_000
# (cam id, version, crs, buildings stamp, watching) -> (GeoJSON geometry in lon/lat, lon,
# lat, area in m²): a camera's view as camera_views serves it
_SERVED: OrderedDict[tuple, tuple[dict, float, float, float]] = OrderedDict()
_MAX_AREAS = 16
_CACHE_LOCK = threading.Lock()  # the server answers from several threads


def _envelope(reach: shapely.Geometry, projection: Projection, metres: float
              ) -> tuple[float, ...]:
    """Lon/lat bounds of everything within ``metres`` of ``reach`` (metric)."""
    x0, y0, x1, y1 = reach.bounds
    x0, y0, x1, y1 = x0 - metres, y0 - metres, x1 + metres, y1 + metres
    lon, lat = projection.unproject_xy([x0, x1, x0, x1], [y0, y0, y1, y1])
    return min(lon), min(lat), max(lon), max(lat)


_BOX = "ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)"


def _box(envelope: tuple[float, ...]) -> dict:
    return dict(zip(("x0", "y0", "x1", "y1"), envelope, strict=True))


def _buildings(conn: Connection, scene: Scene, envelope: tuple[float, ...]
               ) -> tuple[tuple, np.ndarray]:
    """(stamp of the buildings table, the metric footprints within ``envelope``)."""
    stamp = tuple(conn.execute(text(
        "SELECT count(*), coalesce(sum(id::bigint * 31 + version), 0), max(updated_at) "
        "FROM buildings")).one())
    where = f"FROM buildings b WHERE b.geom && {_BOX}"
    key = (scene.crs, envelope)
    with _CACHE_LOCK:
        cached = _BUILDINGS.get(key)
        if cached is not None and cached[0] == stamp:
            _BUILDINGS.move_to_end(key)
            return stamp, cached[1]
    rows = conn.execute(text(f"SELECT ST_AsBinary(b.geom) {where}"), _box(envelope)).all()
    footprints = scene.projection.project(shapely.from_wkb([bytes(r[0]) for r in rows])) \
        if rows else np.empty(0, dtype=object)
    with _CACHE_LOCK:
        _BUILDINGS[key] = (stamp, footprints)
        while len(_BUILDINGS) > _MAX_AREAS:
            _BUILDINGS.popitem(last=False)
    return stamp, footprints


def _cameras(conn: Connection, scene: Scene, reach: shapely.Geometry,
             envelope: tuple[float, ...]) -> gpd.GeoDataFrame:
    """Cameras whose range reaches ``reach`` (metric), in metric coordinates."""
    rows = conn.execute(text(
        "SELECT c.id, c.code, c.bearing, c.fov, c.range_m, c.status, c.version, "
        f"ST_X(c.geom), ST_Y(c.geom) FROM cameras c WHERE c.geom && {_BOX} ORDER BY c.id"),
        _box(envelope)).all()
    columns = ["id", "code", "bearing", "fov", "range_m", "status", "version"]
    xy = np.column_stack(scene.projection.project_xy([r[7] for r in rows],
                                                     [r[8] for r in rows])) \
        if rows else np.empty((0, 2))
    frame = gpd.GeoDataFrame({k: [r[i] for r in rows] for i, k in enumerate(columns)},
                             geometry=shapely.points(xy) if rows else [])
    if len(frame):
        distance = shapely.distance(frame.geometry.values, reach)
        frame = frame[distance <= frame["range_m"].to_numpy(dtype=float)].reset_index(drop=True)
    return frame


def _borrow(scene: Scene, borrowed: Borrowed, reach: shapely.Geometry) -> None:
    """Add ``borrowed`` footprints and the borrowed cameras that reach ``reach``."""
    if borrowed.buildings:
        more = scene.projection.project(np.array(borrowed.buildings, dtype=object))
        scene.buildings = np.concatenate([scene.buildings, more])
    if not borrowed.cameras:
        return
    rows = borrowed.cameras
    xy = np.column_stack(scene.projection.project_xy([r["lon"] for r in rows],
                                                     [r["lat"] for r in rows]))
    columns = ["id", "code", "bearing", "fov", "range_m", "status", "version"]
    frame = gpd.GeoDataFrame({k: [r[k] for r in rows] for k in columns},
                             geometry=shapely.points(xy))
    frame["id"] = [f"{borrowed.source}:{r['id']}" for r in rows]
    distance = shapely.distance(frame.geometry.values, reach)
    frame = frame[distance <= frame["range_m"].to_numpy(dtype=float)]
    scene.cameras = frame.reset_index(drop=True) if not len(scene.cameras) else \
        gpd.GeoDataFrame(pd.concat([scene.cameras, frame], ignore_index=True),
                         geometry="geometry")


def _scene(conn: Connection, user: User, query: CoverageQuery, targets: bool = True,
           client=None) -> tuple[Scene, _Targets | None]:
    """The jurisdiction with its targets (when asked) and the cameras that can see them."""
    query.check()
    area_ll, crs = jurisdiction_to_analyse(conn, user, query.jurisdiction)
    projection = Projection(crs)
    area = projection.project(area_ll)
    scene = Scene(query.jurisdiction, area, projection)
    found = _targets(conn, scene, query) if targets else None
    reach = area if found is None or len(found.shapes) == 0 else shapely.union_all(
        [area, *shapely.buffer(found.shapes, ROAD_CORRIDOR)])
    look(conn, scene, reach, query, client)
    return scene, found


def look(conn: Connection, scene: Scene, reach: shapely.Geometry,
         query: CoverageQuery, client=None) -> None:
    """Fill ``scene`` with the cameras that can see ``reach`` (metric) and their views.

    With a ``distributed.Client``, the views are computed on its workers (a batch run:
    every view afresh, none cached).
    """
    scene.reach = reach
    # every camera that can see ``reach`` stands within REACH_M of it, and sees at most
    # REACH_M further: footprints within twice that make each view exact (and cacheable)
    stamp, scene.buildings = _buildings(conn, scene, _envelope(reach, scene.projection,
                                                               2 * REACH_M))
    scene.cameras = _cameras(conn, scene, reach, _envelope(reach, scene.projection, REACH_M))
    if scene.borrowed is not None:
        stamp = (*stamp, scene.borrowed.source, *scene.borrowed.stamp)
        _borrow(scene, scene.borrowed, reach)
    scene.stamp = stamp
    codes = set(scene.cameras["code"]) if len(scene.cameras) else set()
    unknown = set(query.off) - codes
    if unknown:
        raise BadCoverageRequest(f"off names cameras that cannot see {query.jurisdiction}: "
                                 f"{', '.join(sorted(unknown)[:5])}")
    scene.views = _views(scene, stamp, query) if client is None else \
        _views_on(scene, query, client)


def _views(scene: Scene, stamp: tuple, query: CoverageQuery) -> np.ndarray:
    """Every watching camera's view (metric): online ones, plus planned and added as asked."""
    cams = scene.cameras
    out = []
    for row, on in zip(cams.itertuples(index=False), watching(cams, query), strict=True):
        if not on:
            continue
        key = (row.id, row.version, scene.crs, stamp)
        view = _VIEWS.get(key)
        if view is None:
            view = _view(scene, row.geometry.x, row.geometry.y, float(row.bearing),
                         float(row.fov), float(row.range_m))
            with _CACHE_LOCK:
                _VIEWS[key] = view
                while len(_VIEWS) > _MAX_VIEWS:
                    _VIEWS.popitem(last=False)
        out.append(view)
    for cam in query.add:
        x, y = scene.projection.project_xy(cam.lon, cam.lat)
        out.append(_view(scene, x, y, cam.bearing, cam.fov, cam.range_m))
    return np.array(out, dtype=object)


def _views_on(scene: Scene, query: CoverageQuery, client) -> np.ndarray:
    """:func:`_views` on the workers of ``client`` (:func:`geo.scaleout.fields_of_view_dask`)."""
    from geo.scaleout import fields_of_view_dask  # Dask only for batch runs

    cams = scene.cameras[watching(scene.cameras, query)].assign(status="online")
    views = fields_of_view_dask(cams, scene.buildings, client).geometry.values.to_numpy() \
        if len(cams) else np.empty(0, dtype=object)
    added = [_view(scene, *scene.projection.project_xy(c.lon, c.lat), c.bearing, c.fov,
                   c.range_m) for c in query.add]
    return np.array([*views, *added], dtype=object)


def _view(scene: Scene, x: float, y: float, bearing: float, fov: float,
          range_m: float) -> shapely.Geometry:
    """A camera's field of view among the scene's footprints (metric)."""
    tree = scene.building_tree
    return field_of_view(x, y, bearing, fov, range_m, scene.buildings if tree else None, tree)


def watching(cameras: gpd.GeoDataFrame, query: CoverageQuery) -> np.ndarray:
    """Which cameras watch: online ones (and planned ones if asked) not switched off."""
    if len(cameras) == 0:
        return np.zeros(0, dtype=bool)
    counting = ("online", "planned") if query.planned else ("online",)
    return np.isin(cameras["status"], counting) & ~np.isin(cameras["code"], query.off)


# --- targets ------------------------------------------------------------------------

@dataclass
class _Targets:
    props: list[dict]  # per target: id, name, category ...
    shapes: np.ndarray  # metric polygons or lines
    weight: np.ndarray  # category weight for gap risk
    roads: np.ndarray | None = None  # grids: the road lines inside each
    geoms: np.ndarray | None = None  # metric, as stored (key areas: points stay points)


def _targets(conn: Connection, scene: Scene, query: CoverageQuery) -> _Targets:
    code = scene.code
    if query.target in ("key_areas", "school_zones"):
        only = " AND k.category = ANY(:schools)" if query.target == "school_zones" else ""
        rows = conn.execute(text(
            "SELECT k.id, k.name, k.category, ST_AsBinary(k.geom) FROM key_areas k, "
            "jurisdictions j WHERE j.code = :c AND ST_Intersects(k.geom, j.geom)" + only
            + " ORDER BY k.id"), {"c": code, "schools": list(SCHOOLS)}).all()
        geoms = scene.projection.project(shapely.from_wkb([bytes(r[3]) for r in rows])) if rows \
            else np.empty(0, object)
        shapes = school_zones(geoms, query.school_buffer) if query.target == "school_zones" \
            else key_area_shapes(geoms)
        props = [{"id": r[0], "name": r[1], "category": r[2]} for r in rows]
        weight = np.array([CATEGORY_WEIGHT.get(r[2], 1.0) for r in rows])
        return _Targets(props, np.asarray(shapes, dtype=object), weight,
                        geoms=np.asarray(geoms, dtype=object))
    if query.target == "grids":
        rows = conn.execute(text(
            "SELECT g.id, g.code, g.name, g.kind, ST_AsBinary(g.geom) FROM grids g "
            "WHERE g.jurisdiction_code = ANY(:codes) ORDER BY g.id"),
            {"codes": subtree_codes(conn, code)}).all()
        geoms = scene.projection.project(shapely.from_wkb([bytes(r[4]) for r in rows])) if rows \
            else np.empty(0, object)
        props = [{"id": r[0], "code": r[1], "name": r[2], "kind": r[3]} for r in rows]
        _road_props, roads = _road_lines(conn, scene)
        return _Targets(props, np.asarray(geoms, dtype=object), np.ones(len(rows)),
                        roads_within(np.asarray(geoms, dtype=object), roads),
                        np.asarray(geoms, dtype=object))
    ids_props, lines = _road_lines(conn, scene, clip=True)
    return _Targets(ids_props, lines, np.ones(len(lines)))


def _road_lines(conn: Connection, scene: Scene, clip: bool = False
                ) -> tuple[list[dict], np.ndarray]:
    rows = conn.execute(text(
        "SELECT r.id, r.name, r.class, ST_AsBinary(r.geom) FROM roads r, jurisdictions j "
        "WHERE j.code = :c AND ST_Intersects(r.geom, j.geom) ORDER BY r.id"),
        {"c": scene.code}).all()
    if not rows:
        return [], np.empty(0, object)
    lines = scene.projection.project(shapely.from_wkb([bytes(r[3]) for r in rows]))
    if clip:
        lines = np.array([_lines_only(g) for g in shapely.intersection(lines, scene.area)],
                         dtype=object)
        keep = shapely.length(lines) > 0
        rows = [r for r, k in zip(rows, keep, strict=True) if k]
        lines = lines[keep]
    props = [{"id": r[0], "name": r[1], "class": r[2]} for r in rows]
    return props, np.asarray(lines, dtype=object)


def _lines_only(geom: shapely.Geometry) -> shapely.Geometry:
    """The line parts of a clipped road, merged where they touch."""
    parts = shapely.get_parts(geom)
    parts = parts[shapely.get_dimensions(parts) == 1]
    if len(parts) == 0:
        return shapely.LineString()
    return parts[0] if len(parts) == 1 else shapely.line_merge(shapely.multilinestrings(parts))


# --- answers ------------------------------------------------------------------------

def _feature(geometry: shapely.Geometry, props: dict, fid: int | None = None) -> dict:
    out = {"type": "Feature", "geometry": json.loads(shapely.to_geojson(geometry)),
           "properties": props}
    if fid is not None:
        out["id"] = fid
    return out


def _camera_counts(scene: Scene, query: CoverageQuery) -> dict:
    status = scene.cameras["status"] if len(scene.cameras) else []
    counts = {s: int((status == s).sum()) if len(scene.cameras) else 0
              for s in ("online", "offline", "planned")}
    return {**counts, "switched_off": len(query.off), "added": len(query.add),
            "watching": int(len(scene.views))}


def _parameters(scene: Scene, query: CoverageQuery, **extra) -> dict:
    out = {"jurisdiction": query.jurisdiction, "target": query.target,
           "metric_crs": scene.crs, "planned": query.planned, "off": list(query.off),
           "add": [c.__dict__ for c in query.add]}
    if query.target == "school_zones":
        out["school_buffer"] = query.school_buffer
    out.update(extra)
    return out


def _ratios(targets: _Targets, views: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(covered part, measure of it) per target."""
    covered = watched(targets.shapes, views)
    return covered, measure(covered)


def coverage(conn: Connection, user: User, query: CoverageQuery, client=None) -> dict:
    """The targets as a FeatureCollection with ``covered_ratio``, and a summary.

    ``client`` (a ``distributed.Client``) computes the fields of view on its workers.
    """
    scene, targets = _scene(conn, user, query, client=client)
    over = views_over(targets.shapes, scene.views)  # once, for the area and the roads
    covered = shapely.intersection(targets.shapes, over)
    seen = measure(covered)
    total = measure(targets.shapes)
    ratio = coverage_ratio(targets.shapes, covered)
    unit = _unit(query)
    covered_unit = "covered_m" if query.target == "roads" else "covered_m2"
    road_total = road_seen = None
    if targets.roads is not None:
        road_total = shapely.length(targets.roads)
        road_seen = shapely.length(shapely.intersection(targets.roads, over))
    shapes_ll = scene.to_lonlat(targets.shapes)
    features = []
    for i, props in enumerate(targets.props):
        p = {**props, unit: round(float(total[i]), 1), covered_unit: round(float(seen[i]), 1),
             "covered_ratio": None if math.isnan(ratio[i]) else round(float(ratio[i]), 4)}
        if road_total is not None:
            p["road_length_m"] = round(float(road_total[i]), 1)
            p["road_covered_m"] = round(float(road_seen[i]), 1)
            p["road_covered_ratio"] = round(float(road_seen[i] / road_total[i]), 4) \
                if road_total[i] > 0 else None
        features.append(_feature(shapes_ll[i], p, props["id"]))
    whole = float(total.sum())
    summary = {"targets": len(features), "measure": unit, "total": round(whole, 1),
               "covered": round(float(seen.sum()), 1),
               "covered_ratio": round(float(seen.sum()) / whole, 4) if whole > 0 else None,
               "cameras": _camera_counts(scene, query)}
    if road_total is not None:
        length = float(road_total.sum())
        summary["road_length_m"] = round(length, 1)
        summary["road_covered_ratio"] = round(float(road_seen.sum()) / length, 4) \
            if length > 0 else None
    return {"type": "FeatureCollection", "features": features, "summary": summary,
            "parameters": _parameters(scene, query)}


def camera_views(conn: Connection, user: User, query: CoverageQuery,
                 codes: Collection[str] | None = None) -> dict:
    """Each camera near the jurisdiction with its field of view (offline: the bare sector).

    With ``codes``, only those cameras (a page patching the views that changed). A
    camera's view in lon/lat is kept per process like its metric view.
    """
    scene, _ = _scene(conn, user, query, targets=False)
    cams = scene.cameras
    views = iter(scene.views)
    rows, missing = [], []
    for i, (row, on) in enumerate(zip(cams.itertuples(index=False), watching(cams, query),
                                      strict=True)):
        view = next(views) if on else None
        if codes is not None and row.code not in codes:
            continue
        key = (row.id, row.version, scene.crs, scene.stamp, bool(on))
        rows.append((row, bool(on), key))
        if key not in _SERVED:
            missing.append((i, key, view if on else sector(
                row.geometry.x, row.geometry.y, float(row.bearing), float(row.fov),
                float(row.range_m))))
    _serve(scene, missing)
    features = []
    for row, on, key in rows:
        geometry, lon, lat, area = _SERVED[key]
        p = {"id": row.id, "code": row.code, "status": row.status,
             "bearing": float(row.bearing), "fov": float(row.fov),
             "range_m": float(row.range_m), "watching": on,
             "area_m2": round(area, 1) if on else 0.0, "lon": lon, "lat": lat}
        features.append({"type": "Feature", "geometry": geometry, "properties": p,
                         "id": row.id})
    return {"type": "FeatureCollection", "features": features,
            "summary": {"cameras": _camera_counts(scene, query)},
            "parameters": _parameters(scene, query)}


def _serve(scene: Scene, missing: list[tuple[int, tuple, shapely.Geometry]]) -> None:
    """Keep the lon/lat views (and camera positions) of ``missing`` (index, key, view)."""
    if not missing:
        return
    index = [i for i, _, _ in missing]
    shapes = scene.to_lonlat(np.array([v for _, _, v in missing], dtype=object))
    at = scene.to_lonlat(scene.cameras.geometry.values[index])
    geometries = json.loads("[" + ",".join(shapely.to_geojson(shapes)) + "]")
    with _CACHE_LOCK:
        for (_, key, view), geometry, point in zip(missing, geometries, at, strict=True):
            _SERVED[key] = (geometry, round(point.x, 7), round(point.y, 7), float(view.area))
        while len(_SERVED) > _MAX_VIEWS:
            _SERVED.popitem(last=False)


@dataclass
class _Risk:
    cells: np.ndarray  # metric lattice cells
    lattice: Lattice
    density: np.ndarray  # risk per m² per cell
    incidents: np.ndarray  # metric xy
    hot_cells: int


def _incidents(conn: Connection, scene: Scene, days: int) -> tuple[np.ndarray, np.ndarray]:
    """Metric xy and severity of the last ``days`` days' incidents within the scene's reach."""
    end = dt.datetime.now(dt.UTC)
    rows = conn.execute(text(
        f"SELECT ST_X(i.geom), ST_Y(i.geom), coalesce(i.severity, 1) FROM incidents i "
        f"WHERE i.geom && {_BOX} AND i.occurred_at >= :s AND i.occurred_at < :e"),
        {**_box(_envelope(scene.reach, scene.projection, 0.0)),
         "s": end - dt.timedelta(days=days), "e": end}).all()
    if not rows:
        return np.empty((0, 2)), np.zeros(0)
    raw = np.array([tuple(r) for r in rows], dtype=float)
    xy = np.column_stack(scene.projection.project_xy(raw[:, 0], raw[:, 1]))
    inside = shapely.contains_xy(scene.reach, xy[:, 0], xy[:, 1])
    return xy[inside], raw[inside, 2]


def _risk(conn: Connection, scene: Scene, query: CoverageQuery) -> _Risk:
    """The incident risk surface of the last ``days`` days on a square lattice."""
    xy, severity = _incidents(conn, scene, query.days)
    size = max(RISK_CELL, math.sqrt(scene.reach.area / 250_000))
    lattice = square_cells(scene.reach, size)
    density = np.zeros(len(lattice.cells))
    hot = np.zeros(len(lattice.cells), dtype=bool)
    if len(xy) >= 2:
        density = kde(lattice, xy, weights=severity)
    if len(xy) >= 3:
        z = gi_star(lattice, count_points(lattice, xy))
        label = classify(z, benjamini_hochberg(two_sided_p(z))).astype(str)
        hot = np.isin(label, ("hot_95", "hot_99"))
    return _Risk(lattice.cells.geometry.values, lattice, risk_density(density, hot), xy,
                 int(hot.sum()))


def _unit(query: CoverageQuery) -> str:
    return "length_m" if query.target == "roads" else "area_m2"


def coverage_gaps(conn: Connection, user: User, query: CoverageQuery,
                  limit: int = 1000) -> dict:
    """Uncovered pieces of the targets with ``risk`` (expected incidents), riskiest first."""
    if not 1 <= limit <= 100_000:
        raise BadCoverageRequest(f"limit must be 1 to 100000, got {limit!r}")
    scene, targets = _scene(conn, user, query)
    covered, _seen = _ratios(targets, scene.views)
    pieces, owner = gaps(targets.shapes, covered)
    risk = _risk(conn, scene, query)
    levels, graded = risk_level_factors(conn, query, targets.props)
    weight = targets.weight * np.array([RISK_LEVEL_WEIGHTS.get(v, 1.0) for v in levels])
    score = gap_risk(pieces, risk.cells, risk.density, weight[owner])
    inside = _incidents_in(pieces, risk.incidents)
    order = np.argsort(-score, kind="stable")[:limit]
    unit = _unit(query)
    shapes = scene.to_lonlat(pieces[order]) if len(order) else []
    sizes = measure(pieces)
    features = []
    for rank, (i, shape) in enumerate(zip(order, shapes, strict=True), start=1):
        target = targets.props[owner[i]]
        count = int(inside[i])
        if user.role in AGGREGATE_ONLY and count < MIN_SHOWN:
            count = None  # planners and viewers see no count below MIN_SHOWN
        p = {"rank": rank, "risk": round(float(score[i]), 4), "incidents": count,
             unit: round(float(sizes[i]), 1), "target_id": target["id"],
             "target_name": target.get("name"),
             "category": target.get("category", target.get("class", target.get("kind"))),
             "weight": float(weight[owner[i]]), "risk_level": levels[owner[i]]}
        features.append(_feature(shape, p))
    summary = {"gaps": int(len(pieces)), "shown": len(features),
               "uncovered": round(float(sizes.sum()), 1), "measure": unit,
               "risk": round(float(score.sum()), 3), "hot_cells": risk.hot_cells,
               "incidents": int(len(risk.incidents))}
    parameters = _parameters(scene, query, days=query.days, limit=limit,
                             risk="expected incidents over the gap: severity-weighted "
                                  "kernel density, doubled in Gi* hot cells (95%+), plus "
                                  "a floor, times the key-area category weight and the "
                                  "weight of the target's risk level",
                             risk_level_weights=graded)
    body = {"type": "FeatureCollection", "features": features, "summary": summary,
            "parameters": parameters}
    body["run"] = save_run(conn, "coverage_runs", user, "gaps", query.jurisdiction,
                           parameters, summary, body)
    return body


def _incidents_in(pieces: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """How many incidents lie in each gap piece (a road piece: in its corridor)."""
    if len(pieces) == 0 or len(xy) == 0:
        return np.zeros(len(pieces), dtype=np.int64)
    at, _ = shapely.STRtree(shapely.points(xy)).query(gap_ground(pieces),
                                                      predicate="contains")
    return np.bincount(at, minlength=len(pieces))


@dataclass(frozen=True)
class SitingRequest:
    """How many cameras to propose and of which model; ``spacing`` of the demand points."""

    k: int
    model: CameraModel = CameraModel()
    spacing: float = SITING_SPACING

    def check(self) -> None:
        """BadCoverageRequest naming the first unusable parameter."""
        if not 1 <= self.k <= MAX_K:
            raise BadCoverageRequest(f"k must be 1 to {MAX_K}, got {self.k!r}")
        if not (math.isfinite(self.spacing) and 2 <= self.spacing <= 200):
            raise BadCoverageRequest(f"spacing must be 2 to 200 metres, got {self.spacing!r}")


def _candidates(conn: Connection, scene: Scene, model: CameraModel) -> np.ndarray:
    """Road vertices, crossings and points along roads and key-area outlines in the area."""
    _props, roads = _road_lines(conn, scene)
    rows = conn.execute(text(
        "SELECT ST_AsBinary(k.geom) FROM key_areas k, jurisdictions j WHERE j.code = :c "
        "AND ST_Intersects(k.geom, j.geom) AND GeometryType(k.geom) LIKE '%POLYGON'"),
        {"c": scene.code}).all()
    outlines = scene.projection.project(shapely.from_wkb([bytes(r[0]) for r in rows])) if rows \
        else None
    spacing = max(10.0, model.range_m / 4)
    return candidate_sites(roads, outlines, spacing, scene.area.buffer(model.range_m / 2),
                           max_sites=MAX_SITES)


def siting(conn: Connection, user: User, query: CoverageQuery, request: SitingRequest) -> dict:
    """Proposed cameras (points with bearing, fov, range_m, gain), coverage before and after.

    ``gain`` is the expected incidents on the ground a camera newly watches (the risk of
    :func:`coverage_gaps`), ``gain_m2`` (roads: ``gain_m``) that ground; both count
    only what the cameras proposed before it do not already watch. ``before`` and
    ``after`` are the targets' covered ratios recomputed from the exact fields of view.
    """
    request.check()
    scene, targets = _scene(conn, user, query)
    covered, seen = _ratios(targets, scene.views)
    total = float(measure(targets.shapes).sum())
    pieces, owner = gaps(targets.shapes, covered)
    risk = _risk(conn, scene, query)
    spacing = request.spacing
    uncovered = float(measure(pieces).sum())
    if query.target != "roads" and uncovered / spacing ** 2 > MAX_DEMAND:
        spacing = math.sqrt(uncovered / MAX_DEMAND)
    levels, graded = risk_level_factors(conn, query, targets.props)
    factor = np.array([RISK_LEVEL_WEIGHTS.get(v, 1.0) for v in levels])
    xy, weight, ground, _ = demand_points(pieces, risk.lattice, risk.density, spacing,
                                          (targets.weight * factor)[owner])
    if len(xy) and scene.building_tree is not None:
        inside, _ = scene.building_tree.query(shapely.points(xy), predicate="within")
        free = np.ones(len(xy), dtype=bool)
        free[inside] = False
        xy, weight, ground = xy[free], weight[free], ground[free]
    sites = _candidates(conn, scene, request.model)
    matrix, options = coverage_options(sites, request.model, xy, scene.buildings,
                                       scene.building_tree)
    choice = max_cover(matrix, weight, request.k)
    grounds = marginal_gains(matrix, ground, choice.options)
    chosen = options[choice.options] if choice.options else np.empty((0, 2))
    new_views, features = [], []
    model = request.model
    unit = "gain_m" if query.target == "roads" else "gain_m2"
    for rank, ((site, bearing), gain, got) in enumerate(
            zip(chosen, choice.gains, grounds, strict=True), start=1):
        x, y = sites[int(site)]
        view = _view(scene, x, y, float(bearing), model.fov, model.range_m)
        new_views.append(view)
        lon, lat = scene.projection.unproject_xy(x, y)
        features.append(_feature(shapely.Point(round(lon, 7), round(lat, 7)), {
            "rank": rank, "bearing": float(bearing), "fov": model.fov,
            "range_m": model.range_m, "gain": round(gain, 4), unit: round(got, 1),
            "view": json.loads(shapely.to_geojson(scene.to_lonlat(np.array([view],
                                                                           dtype=object))[0]))}))
    after_seen = measure(watched(targets.shapes, np.concatenate(
        [scene.views, np.array(new_views, dtype=object)]))).sum() if new_views else seen.sum()
    before = round(float(seen.sum()) / total, 4) if total > 0 else None
    after = round(float(after_seen) / total, 4) if total > 0 else None
    summary = {"proposed": len(features), "before": before, "after": after,
               "gain": round(choice.total, 4), "demand_points": int(len(xy)),
               "candidates": int(len(sites)), "options": int(len(options))}
    parameters = _parameters(scene, query, k=request.k, fov=model.fov,
                             range_m=model.range_m, bearings=model.bearings,
                             spacing=round(spacing, 2), days=query.days,
                             risk_level_weights=graded)
    body = {"type": "FeatureCollection", "features": features, "before": before,
            "after": after, "summary": summary, "parameters": parameters}
    body["run"] = save_run(conn, "coverage_runs", user, "siting", query.jurisdiction,
                           parameters, summary, body)
    return body


def grid_coverage(conn: Connection, user: User, code: str) -> dict[int, float]:
    """Share of each grid's area under ``code`` that online cameras watch, by grid id."""
    scene, targets = _scene(conn, user, CoverageQuery(code, "grids"))
    ratio = coverage_ratio(targets.shapes, watched(targets.shapes, scene.views))
    return {p["id"]: round(float(r), 4) for p, r in zip(targets.props, ratio, strict=True)
            if not math.isnan(r)}


@dataclass(frozen=True)
class CoveredTargets:
    """A jurisdiction's targets with the share of each that watching cameras see.

    ``props`` as the coverage answer's (id, name, category...); ``shapes`` metric, as
    measured (a key area given as a point: a disc of 25 m); ``geoms`` metric, as
    stored; ``covered_ratio`` 0-1, NaN for a target of no area; ``scene`` the
    jurisdiction (metric area, projection, CRS) and its cameras.
    """

    scene: Scene
    props: list[dict]
    shapes: np.ndarray
    geoms: np.ndarray
    covered_ratio: np.ndarray


def covered_targets(conn: Connection, user: User, code: str, target: str = "key_areas"
                    ) -> CoveredTargets:
    """The ``target`` (key_areas or grids) of ``code`` and their covered share.

    Online cameras watch; scope checked as for :func:`coverage`.
    """
    scene, targets = _scene(conn, user, CoverageQuery(code, target))
    assert targets is not None
    ratio = coverage_ratio(targets.shapes, watched(targets.shapes, scene.views))
    geoms = targets.shapes if targets.geoms is None else targets.geoms
    return CoveredTargets(scene, targets.props, targets.shapes, geoms, ratio)


# A risk level's weight on the gaps of a key area or grid (1 低 ... 4 重大): a gap at a
# place of major risk counts three times one at a place of low risk.
RISK_LEVEL_WEIGHTS = {1: 1.0, 2: 1.5, 3: 2.0, 4: 3.0}
_LEVELS_OF = {"key_areas": "key_areas", "school_zones": "key_areas", "grids": "grids"}


def risk_levels(conn: Connection, code: str) -> tuple[dict | None, dict[str, dict[int, int]]]:
    """The latest saved ``risk_places`` run of ``code``: (its id and period, levels).

    Levels as ``{"key_areas": {id: level}, "grids": {id: level}}``; (None, {}) when
    the jurisdiction's places were never graded.
    """
    run = conn.execute(text(
        "SELECT id, parameters->>'from' AS start, parameters->>'to' AS end "
        "FROM hotspot_runs WHERE kind = 'risk_places' AND jurisdiction_code = :c "
        "ORDER BY id DESC LIMIT 1"), {"c": code}).mappings().first()
    if run is None:
        return None, {}
    levels: dict[str, dict[int, int]] = {"key_areas": {}, "grids": {}}
    for layer, place, level in conn.execute(text(
            "SELECT s.layer, (f->'properties'->>'id')::bigint, "
            "(f->'properties'->>'risk_level')::int FROM hotspot_runs r, "
            "(VALUES ('key_areas'), ('grids')) AS s(layer), "
            "jsonb_array_elements(r.result->s.layer->'features') AS f WHERE r.id = :i"),
            {"i": run["id"]}):
        levels[layer][place] = level
    return {"run": run["id"], "from": run["start"], "to": run["end"]}, levels


def risk_level_factors(conn: Connection, query: CoverageQuery, props: list[dict]
                       ) -> tuple[list[int | None], dict]:
    """Each target's risk level (None: not graded) and what the answer says about it.

    The levels are those of the jurisdiction's latest ``risk_places`` run
    (:func:`risk_levels`); a target's gap risk is multiplied by
    :data:`RISK_LEVEL_WEIGHTS` of its level (1 when it has none: roads, places
    added since).
    """
    layer = _LEVELS_OF.get(query.target)
    run, levels = risk_levels(conn, query.jurisdiction) if layer else (None, {})
    found = [levels.get(layer, {}).get(p["id"]) if layer else None for p in props]
    said = {"weights": {str(k): v for k, v in RISK_LEVEL_WEIGHTS.items()},
            "run": None, "graded_targets": sum(v is not None for v in found)}
    if run is None:
        said["note"] = ("roads are not graded" if layer is None else
                        "no risk_places run of the jurisdiction: every target weighs 1")
    else:
        said.update(run=run["run"], **{"from": run["from"], "to": run["to"]})
    return found, said


def list_runs(conn: Connection, user: User, jurisdiction: str | None = None) -> list[dict]:
    """Saved gap and siting runs the user may see, newest first."""
    return runs_of(conn, "coverage_runs", user, jurisdiction)


def get_run(conn: Connection, user: User, run_id: int) -> dict:
    """A saved coverage run's result as it was answered."""
    return load_run(conn, "coverage_runs", user, run_id)
