"""Joint-household units (联户): a grid's households in compact groups of 5-15.

Households at one address (identical coordinates) form one *site* and stay together.
The number of units is the one nearest ``target`` households each that keeps every
unit within ``min_size``-``max_size``. Sites are first split into that many parts of
near-equal size by recursive coordinate bisection; when every site is a single
household the parts are then improved by capacity-constrained k-means (Bradley,
Bennett & Demiriz 2000): each round assigns households to unit centres as an
assignment problem in which every unit has ``floor(n/k)`` seats it must fill and one
spare, so sizes stay within one of each other while the summed squared distance to
the centres falls. The head household (联户长) is the member nearest its unit's centre.

A unit's polygon is a tight hull of its members (their convex hull widened by
``margin``) cut to the members' Voronoi cells within the grid, so units never overlap
and each holds exactly its own households. Where a unit's cells would come apart
(another unit's household in between), the detached sites join the unit that shares
the longest edge with them, so every unit is one polygon.

Coordinates must be metric (metres), e.g. the grid's UTM zone.

References
----------
.. [1] Bradley, P. S., Bennett, K. P., & Demiriz, A. (2000). Constrained k-means
   clustering. Technical Report MSR-TR-2000-65, Microsoft Research (no DOI).
.. [2] Berger, M. J., & Bokhari, S. H. (1987). A partitioning strategy for nonuniform
   problems on multiprocessors. *IEEE Transactions on Computers*, C-36(5), 570-580.
   https://doi.org/10.1109/TC.1987.1676942 (recursive coordinate bisection)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.optimize import linear_sum_assignment

from .grids import coordinate_bisection, rook_pairs

__all__ = ["UnitPlan", "household_units", "unit_count"]

CHUNK = 240  # households solved together at most (bigger grids are bisected first)


@dataclass(frozen=True)
class UnitPlan:
    """Units of one grid.

    ``labels`` is the unit of each household, ``heads`` the head household's index per
    unit and ``polygons`` one polygon per unit (in the metric CRS of the input).
    """

    labels: np.ndarray
    heads: np.ndarray
    polygons: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        """Households per unit."""
        return np.bincount(self.labels, minlength=len(self.heads))


def unit_count(n: int, min_size: int = 5, max_size: int = 15, target: int = 10) -> int:
    """How many units ``n`` households make.

    The count whose mean size is nearest ``target`` among those that keep every unit
    within ``min_size``-``max_size``.
    """
    if n <= max_size:
        return 1 if n else 0
    low, high = math.ceil(n / max_size), max(1, n // min_size)
    candidates = {min(max(k, low), high) for k in (math.floor(n / target),
                                                   math.ceil(n / target))}
    return min(sorted(candidates), key=lambda k: abs(n / k - target))


def _refine(xy: np.ndarray, labels: np.ndarray, k: int, rounds: int = 30) -> np.ndarray:
    """Capacity-constrained k-means from ``labels``: sizes floor(n/k) or one more."""
    n = len(xy)
    low = n // k
    span = float(np.ptp(xy, axis=0).sum()) + 1.0
    bonus = 10.0 * span * span  # larger than any squared distance: must-fill seats first
    seats_per_unit = low + 1
    for _ in range(rounds):
        centres = np.array([xy[labels == j].mean(axis=0) for j in range(k)])
        d2 = ((xy[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)  # (n, k)
        cost = np.repeat(d2, seats_per_unit, axis=1)  # seat s of unit j: column j*(low+1)+s
        cost[:, np.arange(k * seats_per_unit) % seats_per_unit < low] -= bonus
        rows, cols = linear_sum_assignment(cost)
        new = np.empty(n, dtype=np.int64)
        new[rows] = cols // seats_per_unit
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


def _group(xy: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    """Sites into ``k`` compact groups of near-equal weight."""
    if k <= 1:
        return np.zeros(len(xy), dtype=np.int64)
    labels = coordinate_bisection(xy, weight.astype(float), k)
    if np.all(weight == 1) and len(xy) <= CHUNK:
        labels = _refine(xy, labels, k)
    return labels


def _assign(xy: np.ndarray, weight: np.ndarray, k: int, sizes: tuple[int, int, int]
            ) -> np.ndarray:
    """Unit per site; large sets are bisected into chunks, each planned on its own.

    ``sizes`` is (min_size, max_size, target) for the chunks' unit counts.
    """
    total = int(weight.sum())
    if total <= CHUNK or k <= 1:
        return _group(xy, weight, k)
    chunks = math.ceil(total / CHUNK)
    chunk_of = coordinate_bisection(xy, weight.astype(float), chunks)
    labels = np.empty(len(xy), dtype=np.int64)
    first = 0
    for c in range(chunks):
        sel = np.flatnonzero(chunk_of == c)
        n = int(weight[sel].sum())
        kc = max(1, unit_count(n, *sizes))
        labels[sel] = first + _group(xy[sel], weight[sel], kc)
        first += kc
    return labels


def _cells(sites: np.ndarray, frame: shapely.Geometry) -> np.ndarray:
    """The Voronoi cell of each site (in site order), clipped to ``frame``."""
    if len(sites) == 1:
        return np.array([frame], dtype=object)
    cells = shapely.get_parts(shapely.voronoi_polygons(
        shapely.multipoints(sites), extend_to=frame, ordered=True))
    cells = shapely.intersection(cells, frame)
    for i in np.flatnonzero(shapely.get_num_geometries(cells) > 1):  # cut by a bay
        parts = shapely.get_parts(cells[i])
        cells[i] = parts[np.argmax(shapely.intersects_xy(parts, *sites[i]))]
    return cells


def _connect(sites: np.ndarray, cells: np.ndarray, site_unit: np.ndarray, k: int) -> np.ndarray:
    """Make each unit's cells one piece.

    Sites in a detached piece join the unit that shares the longest edge with it.
    """
    site_unit = site_unit.copy()
    for _ in range(10):
        owned = [shapely.union_all(cells[site_unit == j]) for j in range(k)]
        moved = False
        for j in range(k):
            mine = np.flatnonzero(site_unit == j)
            parts = shapely.get_parts(owned[j])
            if len(parts) < 2:
                continue
            holder = shapely.STRtree(parts).query(shapely.points(sites[mine]),
                                                  predicate="intersects")
            held = [mine[holder[0][holder[1] == p]] for p in range(len(parts))]
            keep = int(np.argmax([len(h) for h in held]))
            for p, part in enumerate(parts):
                if p == keep or len(held[p]) == 0:
                    continue
                inside = held[p]
                shared = [0.0 if i == j else shapely.intersection(
                    part.boundary, owned[i].boundary).length for i in range(k)]
                if max(shared) > 0:
                    site_unit[inside] = int(np.argmax(shared))
                    moved = True
        if not moved:
            break
    return site_unit


def _rebalance(cells: np.ndarray, site_unit: np.ndarray, weight: np.ndarray, k: int,
               min_size: int, max_size: int) -> np.ndarray:
    """Bring unit sizes within bounds by moving single border sites.

    A site moves between adjacent units when both stay within the bounds after the
    move and the giver stays in one piece.
    """
    site_unit = site_unit.copy()
    sizes = np.bincount(site_unit, weights=weight, minlength=k)
    if np.all((sizes >= min_size) & (sizes <= max_size)):
        return site_unit
    pairs = rook_pairs(cells)
    pairs = np.vstack([pairs, pairs[:, ::-1]])
    for _ in range(4 * k):
        sizes = np.bincount(site_unit, weights=weight, minlength=k)
        bad = np.flatnonzero((sizes > max_size) | (sizes < min_size))
        if len(bad) == 0:
            break
        moved = False
        for j in bad:
            over = sizes[j] > max_size
            a, b = pairs[:, 0], pairs[:, 1]
            # over: a site of j moves to b's unit; under: b's site moves into j
            src, dst = (a, b) if over else (b, a)
            edge = site_unit[a if over else b] == j
            edge &= site_unit[b if over else a] != j
            for site, other in zip(src[edge], dst[edge], strict=True):
                giver = site_unit[site]
                taker = j if not over else site_unit[other]
                if sizes[taker] + weight[site] > max_size or \
                        sizes[giver] - weight[site] < min_size:
                    continue
                rest = cells[(site_unit == giver) & (np.arange(len(cells)) != site)]
                if len(rest) and shapely.union_all(rest).geom_type != "Polygon":
                    continue
                site_unit[site] = taker
                moved = True
                break
        if not moved:
            break
    return site_unit


def _polygons(sites: np.ndarray, site_unit: np.ndarray, cells: np.ndarray, k: int,
              margin: float) -> np.ndarray:
    """Per unit: its members' convex hull widened by ``margin``, cut to their cells."""
    out = np.empty(k, dtype=object)
    for j in range(k):
        own = shapely.union_all(cells[site_unit == j])
        hull = shapely.convex_hull(shapely.multipoints(sites[site_unit == j])).buffer(
            margin, quad_segs=4)
        shape = shapely.intersection(own, hull)
        if shape.geom_type != "Polygon":  # the hull cut a connected patch: keep the patch
            shape = own
        if shape.geom_type != "Polygon":
            shape = max(shapely.get_parts(shape), key=lambda p: p.area)
        out[j] = shape
    return out


def household_units(xy: np.ndarray, area: shapely.Geometry | None = None, *,
                    min_size: int = 5, max_size: int = 15, target: int = 10,
                    margin: float = 5.0) -> UnitPlan:
    """Group households ``xy`` (N, 2, metres) of one grid ``area`` into joint units.

    Returns
    -------
    UnitPlan
        Unit of each household, the head household of each unit and the unit polygons.
        Sizes are within ``min_size``-``max_size`` whenever the count allows (a grid
        of fewer than ``min_size`` households is one unit; an address with more than
        ``max_size`` households makes a unit of its own).
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if len(xy) == 0:
        return UnitPlan(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, object))
    sites, site_of, weight = np.unique(xy, axis=0, return_inverse=True, return_counts=True)
    site_of = site_of.ravel()
    k = unit_count(len(xy), min_size, max_size, target)
    frame = area if area is not None else shapely.box(
        *shapely.bounds(shapely.buffer(shapely.multipoints(sites), margin)))
    cells = _cells(sites, frame)
    site_unit = _assign(sites, weight, k, (min_size, max_size, target))
    site_unit = _connect(sites, cells, site_unit, int(site_unit.max()) + 1)
    site_unit = _rebalance(cells, site_unit, weight, int(site_unit.max()) + 1, min_size,
                           max_size)
    _, site_unit = np.unique(site_unit, return_inverse=True)  # drop emptied units
    k = int(site_unit.max()) + 1
    labels = site_unit[site_of]
    heads = np.empty(k, dtype=np.int64)
    for j in range(k):
        members = np.flatnonzero(labels == j)
        centre = xy[members].mean(axis=0)
        heads[j] = members[np.argmin(((xy[members] - centre) ** 2).sum(axis=1))]
    return UnitPlan(labels, heads, _polygons(sites, site_unit, cells, k, margin))
