"""Hot spots for province-sized incident sets on Dask.

Counting is the only step whose cost grows with the number of incidents: each
partition of points is counted into the lattice on a worker (a point's cell is found
by arithmetic, :meth:`geo.hotspots.Lattice.locate`) and the per-partition counts are
summed. Gi*, the space-time cube and the categories then run on the counts, which are
as large as the lattice, not as the incidents. The results equal the single-process
ones exactly (a test checks it).

Points come as a ``dask_geopandas.GeoDataFrame`` (metric CRS) or a dask DataFrame with
``x`` and ``y`` columns (metres) and, for the cube, a ``time`` column (datetime64).
Pass a ``distributed.Client`` (a LocalCluster, or one connected to a scheduler
address) to run on it; without one the current Dask scheduler is used.
"""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd

from .emerging import emerging_hotspots
from .hotspots import (
    Lattice,
    benjamini_hochberg,
    classify,
    count_points_by,
    gi_star,
    two_sided_p,
)

__all__ = ["count_points_dask", "cube_dask", "emerging_hotspots_dask", "gi_star_dask"]


def _xy(part: pd.DataFrame) -> np.ndarray:
    if hasattr(part, "geometry") and "x" not in part.columns:
        return np.column_stack([part.geometry.x.to_numpy(), part.geometry.y.to_numpy()])
    return part[["x", "y"]].to_numpy(dtype=float)


def _counts(part: pd.DataFrame, lattice: Lattice) -> np.ndarray:
    at = lattice.locate(_xy(part))
    return np.bincount(at[at >= 0], minlength=len(lattice.cells))


def _total(parts: list) -> np.ndarray:
    return np.sum(parts, axis=0)


def _run(points, fn, *args, client=None) -> np.ndarray:
    """``fn(partition, *args)`` on every partition, summed."""
    tasks = [dask.delayed(fn)(part, *args) for part in points.to_delayed()]
    total = dask.delayed(_total)(tasks)
    return client.compute(total).result() if client is not None else total.compute()


def count_points_dask(lattice: Lattice, points, client=None) -> np.ndarray:
    """Points per cell, counted partition by partition on Dask."""
    return _run(points, _counts, lattice, client=client).astype(np.int64)


def gi_star_dask(lattice: Lattice, points, neighbours: str | float = "queen",
                 client=None) -> dict:
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


def cube_dask(lattice: Lattice, points, edges: np.ndarray, client=None) -> np.ndarray:
    """The (steps, cells) count cube for time-step ``edges`` (datetime64), on Dask."""
    edges = np.asarray(edges, dtype="datetime64[ns]")
    flat = _run(points, _cube_part, lattice, edges, client=client)
    return flat.astype(np.int64).reshape(len(edges) - 1, len(lattice.cells))


def emerging_hotspots_dask(lattice: Lattice, points, edges: np.ndarray,
                           neighbours: str | float = "queen", time_window: int = 1,
                           client=None) -> dict:
    """:func:`geo.emerging.emerging_hotspots` with the cube counted on Dask."""
    cube = cube_dask(lattice, points, edges, client)
    return emerging_hotspots(lattice, cube.astype(float), neighbours, time_window)
