"""What cameras really see: fields of view with building occlusion (exact 2D visibility).

A camera sees the sector given by its bearing (degrees clockwise from north), field
of view (degrees; 360 for a dome) and range (metres), minus every building footprint
and everything a footprint hides. A footprint's hidden region is the union of the
shadows of its edges: the quadrilateral between an edge and the edge pushed away from
the camera beyond the range. That is exact for polygonal footprints (no sampling);
only the range's arc is drawn as a polygon (:data:`ARC_SEGMENTS` per full circle).
A footprint that holds the camera (a camera on a wall or a roof) hides nothing.

Coordinates are metric (metres), the cameras' and buildings' CRS alike.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

__all__ = ["ARC_SEGMENTS", "CATEGORY_WEIGHT", "coverage_ratio", "field_of_view",
           "fields_of_view", "gap_ground", "gap_risk", "gaps", "key_area_shapes", "measure",
           "risk_density", "roads_within", "school_zones", "sector", "views_over",
           "watched"]

ARC_SEGMENTS = 128  # segments of a full circle's arc


def sector(x: float, y: float, bearing: float, fov: float, range_m: float) -> shapely.Polygon:
    """The area within ``range_m`` of (x, y) and ``fov`` degrees around ``bearing``."""
    if not (range_m > 0 and math.isfinite(range_m)):
        raise ValueError(f"range must be positive metres, got {range_m!r}")
    if not 0 < fov <= 360:
        raise ValueError(f"field of view must be in (0, 360] degrees, got {fov!r}")
    if fov >= 360:
        steps = ARC_SEGMENTS
        angles = np.linspace(0, 2 * math.pi, steps, endpoint=False)
        return shapely.Polygon(np.column_stack([x + range_m * np.sin(angles),
                                                y + range_m * np.cos(angles)]))
    steps = max(2, math.ceil(ARC_SEGMENTS * fov / 360))
    start = math.radians(bearing - fov / 2)
    angles = start + np.linspace(0, math.radians(fov), steps + 1)
    arc = np.column_stack([x + range_m * np.sin(angles), y + range_m * np.cos(angles)])
    return shapely.Polygon([(x, y), *arc])


def _shadows(x: float, y: float, footprints: np.ndarray, reach: float) -> np.ndarray:
    """The region ``footprints`` hide from (x, y), as edge shadows, out to ``reach``.

    The footprints are oriented (material on the left of every ring) and do not hold
    (x, y). Only edges the camera sees from outside the material cast a shadow: every
    sight line into the material crosses one of them first, so the shadows of the
    other edges lie within these and the footprint.

    Each edge is cut where the bisector of the angle it subtends meets it (the angle
    bisector theorem: at ``na / (na + nb)`` of the way), so every piece subtends less
    than 90°. A piece's shadow runs out along its two sight lines to twice the farther
    of ``reach`` and its corners' distance: the chord closing it then passes beyond
    ``reach`` × cos 45° and beyond the piece itself, so the shadow is a simple
    quadrilateral that covers everything behind the piece out to ``reach`` / √2.
    """
    parts = shapely.get_parts(footprints)
    rings = shapely.get_rings(parts[shapely.get_type_id(parts) == 3])  # polygons only
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[:-1] == ring[1:]  # consecutive vertices of one ring: an edge
    a, b = xy[:-1][same], xy[1:][same]
    da, db = a - (x, y), b - (x, y)
    na, nb = np.hypot(*da.T), np.hypot(*db.T)
    cross = da[:, 0] * db[:, 1] - da[:, 1] * db[:, 0]
    # cross < 0: the camera is right of a->b, outside the material
    ok = (na > 1e-9) & (nb > 1e-9) & (cross < -1e-12 * na * nb)
    a, b, na, nb = a[ok], b[ok], na[ok], nb[ok]
    cut = a + (b - a) * (na / (na + nb))[:, None]
    starts, ends = np.concatenate([a, cut]), np.concatenate([cut, b])
    ds, de = starts - (x, y), ends - (x, y)
    ns, ne = np.hypot(*ds.T), np.hypot(*de.T)
    far = 2.0 * np.maximum(reach, np.maximum(ns, ne))
    far_s = (x, y) + ds / ns[:, None] * far[:, None]
    far_e = (x, y) + de / ne[:, None] * far[:, None]
    # (shapely's stubs give polygons() of an array as ``Polygon | ndarray``)
    return shapely.polygons(  # type: ignore[return-value]
        np.stack([starts, ends, far_e, far_s, starts], axis=1))


def field_of_view(x: float, y: float, bearing: float, fov: float, range_m: float,
                  buildings: np.ndarray | None = None,
                  tree: shapely.STRtree | None = None) -> BaseGeometry:
    """What a camera at (x, y) sees: its sector minus footprints and their shadows."""
    view = sector(x, y, bearing, fov, range_m)
    if buildings is None or len(buildings) == 0:
        return view
    tree = tree or shapely.STRtree(buildings)
    # in input order, whatever the tree: any subset holding these gives the same view
    near = buildings[np.sort(tree.query(view, predicate="intersects"))]
    camera = shapely.Point(x, y)
    near = near[~shapely.intersects(near, camera.buffer(0.01))]  # its own wall or roof
    if len(near) == 0:
        return view
    reach = 2.0 * range_m + 1.0
    near = shapely.orient_polygons(shapely.make_valid(near))
    hidden = shapely.union_all(np.concatenate([near, _shadows(x, y, near, reach)]))
    return shapely.difference(view, hidden)


def fields_of_view(cameras: gpd.GeoDataFrame, buildings: np.ndarray | None = None
                   ) -> gpd.GeoDataFrame:
    """One polygon per camera (``bearing``, ``fov``, ``range_m``, ``status`` columns).

    Offline cameras get an empty geometry and ``online`` False: they are listed but
    watch nothing.
    """
    buildings = None if buildings is None else np.asarray(buildings, dtype=object)
    tree = shapely.STRtree(buildings) if buildings is not None and len(buildings) else None
    geoms: list[BaseGeometry] = []
    online = (cameras["status"] == "online").to_numpy() \
        if "status" in cameras else np.ones(len(cameras), dtype=bool)
    for point, bearing, fov, reach, on in zip(
            cameras.geometry.values, cameras["bearing"], cameras["fov"], cameras["range_m"],
            online, strict=True):
        if not on:
            geoms.append(shapely.Polygon())
            continue
        geoms.append(field_of_view(point.x, point.y, float(bearing), float(fov), float(reach),
                                   buildings, tree))
    return gpd.GeoDataFrame({"online": online}, geometry=geoms, crs=cameras.crs,
                            index=cameras.index)


# --- coverage of targets ----------------------------------------------------------------

def views_over(targets: np.ndarray, views: np.ndarray) -> np.ndarray:
    """Per target, the union of the views that touch it (an empty polygon for none)."""
    targets = np.asarray(targets, dtype=object)
    views = np.asarray(views, dtype=object)
    out = np.array([shapely.Polygon() for _ in range(len(targets))], dtype=object)
    if len(views) == 0 or len(targets) == 0:
        return out
    at, view = shapely.STRtree(views).query(targets, predicate="intersects")
    for i in np.unique(at):
        near = np.sort(view[at == i])  # input order: the same union from any subset
        out[i] = shapely.union_all(views[near]) if len(near) > 1 else views[near[0]]
    return out


def watched(targets: np.ndarray, views: np.ndarray) -> np.ndarray:
    """The part of each target (polygon or line) inside the union of the views."""
    targets = np.asarray(targets, dtype=object)
    return shapely.intersection(targets, views_over(targets, views))


def measure(geoms: np.ndarray) -> np.ndarray:
    """Area (m²) of polygons and length (m) of lines, element-wise."""
    geoms = np.asarray(geoms, dtype=object)
    dims = shapely.get_dimensions(geoms)
    return np.where(dims == 2, shapely.area(geoms), shapely.length(geoms))


def coverage_ratio(targets: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Covered share (0-1) of each target's area or length; NaN for empty targets."""
    total = measure(targets)
    seen = measure(covered)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.minimum(seen / np.where(total > 0, total, 1), 1.0),
                        np.nan)


def school_zones(schools: np.ndarray, buffer_m: float = 200.0) -> np.ndarray:
    """学生安全区域: each school or kindergarten footprint (or point) grown by ``buffer_m``."""
    if not (buffer_m > 0 and math.isfinite(buffer_m)):
        raise ValueError(f"school zone buffer must be positive metres, got {buffer_m!r}")
    return shapely.buffer(np.asarray(schools, dtype=object), buffer_m, quad_segs=16)


def key_area_shapes(geoms: np.ndarray, point_radius: float = 25.0) -> np.ndarray:
    """Key areas as polygons: a key area given as a point stands for a disc of ``point_radius``."""
    geoms = np.asarray(geoms, dtype=object)
    points = shapely.get_dimensions(geoms) == 0
    out = geoms.copy()
    out[points] = shapely.buffer(geoms[points], point_radius, quad_segs=16)
    return out


def roads_within(areas: np.ndarray, roads: np.ndarray) -> np.ndarray:
    """The road lines inside each area (a MultiLineString per area, maybe empty)."""
    areas = np.asarray(areas, dtype=object)
    roads = np.asarray(roads, dtype=object)
    out = np.empty(len(areas), dtype=object)
    out[:] = [shapely.MultiLineString() for _ in range(len(areas))]
    if len(roads) == 0:
        return out
    pairs = shapely.STRtree(roads).query(areas, predicate="intersects")
    pieces = shapely.intersection(areas[pairs[0]], roads[pairs[1]])
    for i in np.unique(pairs[0]):
        lines = shapely.get_parts(pieces[pairs[0] == i])
        lines = lines[shapely.get_dimensions(lines) == 1]
        out[i] = shapely.multilinestrings(lines) if len(lines) else shapely.MultiLineString()
    return out


# --- gaps and their risk -------------------------------------------------------------

MIN_GAP_AREA = 25.0  # m²: smaller uncovered slivers are not reported as gaps
MIN_GAP_LENGTH = 5.0  # m of road
ROAD_CORRIDOR = 25.0  # m either side of a road piece whose incidents count for it
HOT_FACTOR = 2.0  # risk density doubles in Gi* hot cells (95 % confidence or more)
FLOOR_SHARE = 0.1  # every place has at least this share of the mean incident density
CATEGORY_WEIGHT = {  # how much an uncovered key area of this kind matters, 1 = ordinary
    "school": 1.5, "kindergarten": 1.5, "hospital": 1.3, "station": 1.3, "railway": 1.2,
    "airport": 1.2, "port": 1.2, "border_port": 1.3, "market": 1.3, "mall": 1.2,
    "entertainment": 1.2, "government_hall": 1.2, "park": 1.0,
}


def gaps(targets: np.ndarray, covered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Uncovered pieces of the targets: (piece geometries, index of their target).

    Polygon targets give polygons of at least :data:`MIN_GAP_AREA` m², line targets line
    pieces of at least :data:`MIN_GAP_LENGTH` m.
    """
    targets = np.asarray(targets, dtype=object)
    rest = shapely.difference(targets, np.asarray(covered, dtype=object))
    parts, owner = shapely.get_parts(rest, return_index=True)
    dims = shapely.get_dimensions(parts)
    owner_dims = shapely.get_dimensions(targets)[owner]
    keep = (dims == owner_dims) & np.where(dims == 2, shapely.area(parts) >= MIN_GAP_AREA,
                                           shapely.length(parts) >= MIN_GAP_LENGTH)
    if np.any(owner_dims == 1):
        # merge touching line pieces back into runs
        merged_parts, merged_owner = [], []
        for i in np.unique(owner[keep]):
            mine = parts[keep & (owner == i)]
            if shapely.get_dimensions(targets[i]) == 1:
                runs = shapely.get_parts(shapely.line_merge(shapely.union_all(mine)))
                mine = runs[shapely.length(runs) >= MIN_GAP_LENGTH]
            merged_parts.extend(mine)
            merged_owner.extend([i] * len(mine))
        return np.array(merged_parts, dtype=object), np.array(merged_owner, dtype=np.int64)
    return parts[keep], owner[keep]


def risk_density(density: np.ndarray, hot: np.ndarray | None = None) -> np.ndarray:
    """Incident risk per square metre on each lattice cell.

    ``density`` is the cells' incident kernel density (per m²), doubled in ``hot``
    cells (Gi* hot at 95 % or more), plus a floor of :data:`FLOOR_SHARE` of the mean so
    that a gap with no incidents yet still counts by its size.
    """
    density = np.asarray(density, dtype=float)
    if hot is not None:
        density = density * np.where(np.asarray(hot, dtype=bool), HOT_FACTOR, 1.0)
    mean = float(density.mean()) if len(density) else 0.0
    return density + (FLOOR_SHARE * mean if mean > 0 else 1e-6)


def gap_ground(pieces: np.ndarray) -> np.ndarray:
    """The ground each gap piece stands for (metric).

    A polygon is itself; a road piece is its corridor of :data:`ROAD_CORRIDOR` m either side.
    """
    pieces = np.asarray(pieces, dtype=object)
    return np.where(shapely.get_dimensions(pieces) == 1,
                    shapely.buffer(pieces, ROAD_CORRIDOR, cap_style="flat"), pieces)


def gap_risk(pieces: np.ndarray, cells: np.ndarray, density: np.ndarray,
             weight: np.ndarray | None = None) -> np.ndarray:
    """Expected incidents on each gap piece: ∫ risk density over it.

    Polygon pieces integrate over their area; a line piece over its corridor of
    :data:`ROAD_CORRIDOR` m either side. ``weight`` multiplies each piece's figure
    (the key-area category weight). Cells outside the lattice count at the floor
    density (the smallest value of ``density``).
    """
    if len(pieces) == 0:
        return np.zeros(0)
    shapes = gap_ground(pieces)
    cells = np.asarray(cells, dtype=object)
    pairs = shapely.STRtree(cells).query(shapes, predicate="intersects")
    parts = shapely.area(shapely.intersection(shapes[pairs[0]], cells[pairs[1]]))
    inside = np.bincount(pairs[0], weights=parts * density[pairs[1]], minlength=len(shapes))
    outside = np.maximum(shapely.area(shapes) - np.bincount(pairs[0], weights=parts,
                                                             minlength=len(shapes)), 0)
    risk = inside + outside * float(density.min() if len(density) else 0.0)
    return risk * (1.0 if weight is None else np.asarray(weight, dtype=float))
