"""Hot spots and camera coverage for province-sized data on Dask.

Hot spots: counting is the only step whose cost grows with the number of incidents:
each partition of points is counted into the lattice on a worker (a point's cell is
found by arithmetic, :meth:`geo.hotspots.Lattice.locate`) and the per-partition counts
are summed. Gi*, the space-time cube and the categories then run on the counts, which
are as large as the lattice, not as the incidents. The results equal the
single-process ones exactly (a test checks it).

Points come as a ``dask_geopandas.GeoDataFrame`` (metric CRS) or a dask DataFrame with
``x`` and ``y`` columns (metres) and, for the cube, a ``time`` column (datetime64).

Coverage: a camera's field of view (its sector minus the building footprints and their
shadows, :func:`geo.coverage.field_of_view`) is the expensive step. The cameras are cut
into spatially compact batches (in Hilbert-curve order); each batch goes to a worker
with only the footprints within range of its cameras, and the views come back in the
cameras' order, equal to :func:`geo.coverage.fields_of_view`'s. Covered ratios of
targets go the same way: each batch of targets with the views that touch it.

Pass a ``distributed.Client`` (a LocalCluster, or one connected to a scheduler
address) to run on it; without one the current Dask scheduler is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .coverage import coverage_ratio, fields_of_view, watched
from .emerging import emerging_hotspots
from .hotspots import (
    Lattice,
    benjamini_hochberg,
    classify,
    count_points_by,
    gi_star,
    two_sided_p,
)

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

__all__ = ["count_points_dask", "coverage_ratio_dask", "cube_dask", "emerging_hotspots_dask",
           "fields_of_view_dask", "gi_star_dask"]


def _xy(part: pd.DataFrame) -> np.ndarray:
    if hasattr(part, "geometry") and "x" not in part.columns:
        return np.column_stack([part.geometry.x.to_numpy(), part.geometry.y.to_numpy()])
    return part[["x", "y"]].to_numpy(dtype=float)


def _counts(part: pd.DataFrame, lattice: Lattice) -> np.ndarray:
    at = lattice.locate(_xy(part))
    return np.bincount(at[at >= 0], minlength=len(lattice.cells))


def _total(parts: list[np.ndarray]) -> np.ndarray:
    return np.sum(parts, axis=0)


def _run(points: dd.DataFrame, fn: Callable[..., np.ndarray], *args: Any,
         client: Client | None = None) -> np.ndarray:
    """``fn(partition, *args)`` on every partition, summed."""
    tasks = [dask.delayed(fn)(part, *args) for part in points.to_delayed()]
    total = dask.delayed(_total)(tasks)
    return client.compute(total).result() if client is not None else total.compute()


def count_points_dask(lattice: Lattice, points: dd.DataFrame,
                      client: Client | None = None) -> np.ndarray:
    """Points per cell, counted partition by partition on Dask."""
    return _run(points, _counts, lattice, client=client).astype(np.int64)


def gi_star_dask(lattice: Lattice, points: dd.DataFrame, neighbours: str | float = "queen",
                 client: Client | None = None) -> dict[str, np.ndarray]:
    """Counts, Gi* z, two-sided p, FDR-corrected p and classes, counting on Dask."""
    counts = count_points_dask(lattice, points, client)
    z = gi_star(lattice, counts, neighbours)
    p = two_sided_p(z)
    p_fdr = benjamini_hochberg(p)
    return {"count": counts, "z": z, "p": p, "p_fdr": p_fdr, "class": classify(z, p_fdr)}


def _cube_part(part: pd.DataFrame, lattice: Lattice, edges: np.ndarray) -> np.ndarray:
    step = np.searchsorted(edges, part["time"].to_numpy(dtype="datetime64[ns]"),
                           side="right") - 1
    return count_points_by(lattice, _xy(part), step, len(edges) - 1).ravel()


def cube_dask(lattice: Lattice, points: dd.DataFrame, edges: np.ndarray,
              client: Client | None = None) -> np.ndarray:
    """The (steps, cells) count cube for time-step ``edges`` (datetime64), on Dask."""
    edges = np.asarray(edges, dtype="datetime64[ns]")
    flat = _run(points, _cube_part, lattice, edges, client=client)
    return flat.astype(np.int64).reshape(len(edges) - 1, len(lattice.cells))


def emerging_hotspots_dask(lattice: Lattice, points: dd.DataFrame, edges: np.ndarray,
                           neighbours: str | float = "queen", time_window: int = 1,
                           client: Client | None = None) -> dict[str, np.ndarray]:
    """:func:`geo.emerging.emerging_hotspots` with the cube counted on Dask."""
    cube = cube_dask(lattice, points, edges, client)
    return emerging_hotspots(lattice, cube.astype(float), neighbours, time_window)


# --- camera coverage ---------------------------------------------------------------

def _compute(tasks: list[Any], client: Client | None = None) -> list[Any]:
    """The results of delayed ``tasks``, on ``client`` when given."""
    if client is not None:
        return client.gather(client.compute(tasks))
    return list(dask.compute(*tasks))


def _batches(geoms: np.ndarray, size: int) -> list[np.ndarray]:
    """Positions of ``geoms`` cut into batches of about ``size``, each compact in space.

    Consecutive runs along the Hilbert curve through the geometries' centres; every
    batch keeps its positions in ascending order.
    """
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size!r}")
    if len(geoms) == 0:
        return []
    centres = shapely.centroid(np.asarray(geoms, dtype=object))
    blank = shapely.is_missing(centres) | shapely.is_empty(centres)
    if blank.all():
        order = np.arange(len(geoms))
    else:  # empty geometries go anywhere: with the first centre
        centres[blank] = centres[~blank][0]
        order = np.argsort(gpd.GeoSeries(centres).hilbert_distance().to_numpy(), kind="stable")
    count = -(-len(geoms) // size)
    return [np.sort(part) for part in np.array_split(order, count)]


def _near(tree: shapely.STRtree, geoms: np.ndarray, distance: np.ndarray | None = None
          ) -> np.ndarray:
    """Positions (ascending) of the tree's geometries that touch any of ``geoms``.

    With ``distance`` (per geometry, CRS units): those within it instead.
    """
    if distance is None:
        pairs = tree.query(geoms, predicate="intersects")
    else:
        pairs = tree.query(geoms, predicate="dwithin", distance=distance)
    return np.unique(pairs[1])


def fields_of_view_dask(cameras: gpd.GeoDataFrame, buildings: np.ndarray | None = None,
                        client: Client | None = None, batch: int = 500) -> gpd.GeoDataFrame:
    """:func:`geo.coverage.fields_of_view` on Dask: one task per batch of cameras.

    ``cameras`` (points in a metric CRS; ``bearing`` and ``fov`` in degrees, ``range_m``
    in metres, ``status``) and ``buildings`` (footprint polygons, same CRS) as for the
    single-process function, whose result this equals: same index, ``online`` column and
    geometries. ``batch`` is the number of cameras per task; each task gets only the
    footprints within its cameras' range (plus 1 m).
    """
    buildings = np.empty(0, dtype=object) if buildings is None else \
        np.asarray(buildings, dtype=object)
    points = cameras.geometry.values.to_numpy()
    tree = shapely.STRtree(buildings) if len(buildings) else None
    reach = cameras["range_m"].to_numpy(dtype=float) + 1.0
    parts = _batches(points, batch)
    tasks = [dask.delayed(fields_of_view)(
        cameras.iloc[part], buildings[_near(tree, points[part], reach[part])] if tree
        else None) for part in parts]
    online = np.zeros(len(cameras), dtype=bool)
    geoms = np.empty(len(cameras), dtype=object)
    for part, views in zip(parts, _compute(tasks, client), strict=True):
        online[part] = views["online"].to_numpy()
        geoms[part] = views.geometry.values.to_numpy()
    return gpd.GeoDataFrame({"online": online}, geometry=geoms, crs=cameras.crs,
                            index=cameras.index)


def _ratios(targets: np.ndarray, views: np.ndarray) -> np.ndarray:
    return coverage_ratio(targets, watched(targets, views))


def coverage_ratio_dask(targets: np.ndarray, views: np.ndarray, client: Client | None = None,
                        batch: int = 2000) -> np.ndarray:
    """Covered share (0-1, NaN for empty targets) of each target, on Dask.

    Equals ``coverage_ratio(targets, watched(targets, views))`` (:mod:`geo.coverage`):
    targets (polygons or lines, metric CRS) in batches of ``batch``, each with the
    views (polygons, same CRS) that touch it.
    """
    targets = np.asarray(targets, dtype=object)
    views = np.asarray(views, dtype=object)
    if len(targets) == 0 or len(views) == 0:
        return _ratios(targets, views)
    tree = shapely.STRtree(views)
    parts = _batches(targets, batch)
    tasks = [dask.delayed(_ratios)(targets[part], views[_near(tree, targets[part])])
             for part in parts]
    out = np.empty(len(targets))
    for part, ratios in zip(parts, _compute(tasks, client), strict=True):
        out[part] = ratios
    return out
