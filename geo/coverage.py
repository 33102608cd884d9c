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

__all__ = ["ARC_SEGMENTS", "field_of_view", "fields_of_view", "sector"]

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


def _shadows(x: float, y: float, footprint: shapely.Geometry, reach: float) -> list:
    """The region ``footprint`` hides from (x, y), as edge shadows, out to ``reach``."""
    out = []
    for polygon in shapely.get_parts(footprint):
        for ring in (polygon.exterior, *polygon.interiors):
            xy = np.asarray(ring.coords)
            a, b = xy[:-1], xy[1:]
            da, db = a - (x, y), b - (x, y)
            na, nb = np.hypot(*da.T), np.hypot(*db.T)
            cross = da[:, 0] * db[:, 1] - da[:, 1] * db[:, 0]
            ok = (na > 1e-9) & (nb > 1e-9) & (np.abs(cross) > 1e-12 * na * nb)
            far_a = (x, y) + da[ok] / na[ok, None] * reach
            far_b = (x, y) + db[ok] / nb[ok, None] * reach
            quads = np.stack([a[ok], b[ok], far_b, far_a, a[ok]], axis=1)
            out.extend(shapely.polygons(quads))
    return out


def field_of_view(x: float, y: float, bearing: float, fov: float, range_m: float,
                  buildings: np.ndarray | None = None,
                  tree: shapely.STRtree | None = None) -> shapely.Geometry:
    """What a camera at (x, y) sees: its sector minus footprints and their shadows."""
    view = sector(x, y, bearing, fov, range_m)
    if buildings is None or len(buildings) == 0:
        return view
    tree = tree or shapely.STRtree(buildings)
    near = buildings[tree.query(view, predicate="intersects")]
    camera = shapely.Point(x, y)
    near = near[~shapely.intersects(near, camera.buffer(0.01))]  # its own wall or roof
    if len(near) == 0:
        return view
    reach = 2.0 * range_m + 1.0
    hidden = [*near]
    for footprint in near:
        hidden.extend(_shadows(x, y, footprint, reach))
    hidden = shapely.union_all(shapely.make_valid(np.array(hidden, dtype=object)))
    return shapely.difference(view, hidden)


def fields_of_view(cameras: gpd.GeoDataFrame, buildings: np.ndarray | None = None
                   ) -> gpd.GeoDataFrame:
    """One polygon per camera (``bearing``, ``fov``, ``range_m``, ``status`` columns).

    Offline cameras get an empty geometry and ``online`` False: they are listed but
    watch nothing.
    """
    buildings = None if buildings is None else np.asarray(buildings, dtype=object)
    tree = shapely.STRtree(buildings) if buildings is not None and len(buildings) else None
    geoms = []
    online = (cameras.get("status", "online") == "online").to_numpy() \
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
