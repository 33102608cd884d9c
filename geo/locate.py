"""Which polygon covers each point, for many points at once.

Import assigns every point to its leaf jurisdiction; doing it here with an STRtree over
the polygons, instead of a join in the database, costs a fraction of a second for 10^5
points. The database's own point-in-polygon test and GEOS's can disagree by a rounding
error for a point within about 1e-14 degrees of an edge, so the points that lie close
to any boundary (:data:`BOUNDARY_TOLERANCE`) are reported for the caller to decide with
the database's test; everywhere else both answers are the same.
"""

from __future__ import annotations

import numpy as np
import shapely

__all__ = ["BOUNDARY_TOLERANCE", "covering_pairs", "first_cover", "near_boundary"]

# Degrees (about 0.1 mm): far above the rounding error of a point-in-polygon test on
# lon/lat coordinates, far below the 1e-7 degree grid geometries are stored on.
BOUNDARY_TOLERANCE = 1e-9


def covering_pairs(points: np.ndarray, polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(point index, polygon index) for every polygon that covers a point (boundary included).

    Both arrays are sorted by point, then polygon. Missing polygons cover nothing.
    """
    tree = shapely.STRtree(np.asarray(polygons, dtype=object))
    point_ix, polygon_ix = tree.query(np.asarray(points, dtype=object), predicate="intersects")
    order = np.lexsort((polygon_ix, point_ix))
    return point_ix[order], polygon_ix[order]


def first_cover(point_ix: np.ndarray, polygon_ix: np.ndarray, n_points: int) -> np.ndarray:
    """The lowest polygon index covering each of ``n_points`` points, -1 where none does.

    Takes the pairs of :func:`covering_pairs`; with the polygons in the order of their
    codes, a point on the border of two polygons goes to the lower code.
    """
    first = np.full(n_points, -1, dtype=np.int64)
    if len(point_ix):
        starts = np.r_[True, point_ix[1:] != point_ix[:-1]]
        first[point_ix[starts]] = polygon_ix[starts]
    return first


def near_boundary(points: np.ndarray, polygons: np.ndarray,
                  tolerance: float = BOUNDARY_TOLERANCE) -> np.ndarray:
    """Whether each point lies within ``tolerance`` (degrees) of a boundary of ``polygons``.

    The boundaries are cut into single segments, so each point is measured against the
    few segments next to it only.
    """
    points = np.asarray(points, dtype=object)
    rings = shapely.get_parts(shapely.boundary(
        np.asarray([p for p in polygons if p is not None], dtype=object)))
    coords, ring_ix = shapely.get_coordinates(rings, return_index=True)
    same = ring_ix[1:] == ring_ix[:-1]
    near = np.zeros(len(points), dtype=bool)
    if not same.any() or not len(points):
        return near
    segments = shapely.linestrings(np.stack([coords[:-1][same], coords[1:][same]], axis=1))
    # (shapely's stubs give linestrings() of an array as ``LineString | ndarray``)
    tree = shapely.STRtree(segments)  # type: ignore[arg-type]
    hits = tree.query(points, predicate="dwithin", distance=tolerance)[0]
    near[hits] = True
    return near
