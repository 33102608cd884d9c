"""Where new cameras buy the most: a maximal-covering location problem (MCLP).

Demand points sample the uncovered parts of the targets, each weighted by its risk
(expected incidents on the ground it stands for). Options are a candidate site (road
vertices and intersections, points along roads and key-area perimeters) with one
of the camera model's bearings. An option covers the demand points in its field of
view with building occlusion (:func:`geo.coverage.field_of_view`). :func:`max_cover`
picks ``k`` options by lazy greedy (the marginal gain of an option only falls as
others are chosen, so a stale upper bound that still tops the heap is exact) and then
improves the choice by swaps until no single swap gains.

Coordinates are metric (metres); bearings are degrees clockwise from north.

References
----------
Church, R. and ReVelle, C. (1974). The maximal covering location problem. *Papers of the
    Regional Science Association* 32(1), 101-118. doi:10.1007/BF01942293
Minoux, M. (1978). Accelerated greedy algorithms for maximizing submodular set functions.
    In *Optimization Techniques*, Lecture Notes in Control and Information Sciences 7,
    234-243. Springer, Berlin. doi:10.1007/BFb0006528
Teitz, M. B. and Bart, P. (1968). Heuristic methods for estimating the generalized vertex
    median of a weighted graph. *Operations Research* 16(5), 955-961.
    doi:10.1287/opre.16.5.955
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from scipy import sparse
from scipy.spatial import cKDTree
from shapely.geometry.base import BaseGeometry

from .coverage import ROAD_CORRIDOR, field_of_view
from .hotspots import Lattice

__all__ = ["CameraModel", "Choice", "candidate_sites", "coverage_options", "demand_points",
           "marginal_gains", "max_cover"]


@dataclass(frozen=True)
class CameraModel:
    """The camera to install: field of view (degrees), range (m), bearings tried per site."""

    fov: float = 90.0
    range_m: float = 60.0
    bearings: int = 8

    def __post_init__(self) -> None:
        if not 0 < self.fov <= 360:
            raise ValueError(f"fov must be in (0, 360] degrees, got {self.fov!r}")
        if not (0 < self.range_m <= 1000 and math.isfinite(self.range_m)):
            raise ValueError(f"range_m must be in (0, 1000] metres, got {self.range_m!r}")
        if not 1 <= self.bearings <= 72:
            raise ValueError(f"bearings must be 1 to 72, got {self.bearings!r}")

    @property
    def headings(self) -> np.ndarray:
        """The bearings tried (one for a dome)."""
        if self.fov >= 360:
            return np.zeros(1)
        return np.arange(self.bearings) * (360.0 / self.bearings)


def candidate_sites(roads: np.ndarray, perimeters: np.ndarray | None = None,
                    spacing: float = 30.0, area: BaseGeometry | None = None,
                    max_sites: int | None = None) -> np.ndarray:
    """Candidate camera positions (n × 2, metres).

    Every vertex and crossing of the noded road network, points every ``spacing`` m
    along roads and along key-area outlines (``perimeters``), inside ``area`` if given,
    without duplicates closer than 0.5 m. Beyond ``max_sites`` they are thinned
    evenly: one per cell of the finest square lattice (sides growing by a quarter from
    ``spacing``) that keeps no more.
    """
    lines = [g for g in np.asarray(roads, dtype=object) if g is not None and not g.is_empty]
    parts: list[np.ndarray] = []
    if lines:
        noded = shapely.node(shapely.MultiLineString(
            [p for g in lines for p in shapely.get_parts(g)]))
        parts.append(shapely.get_coordinates(shapely.segmentize(noded, spacing)))
    if perimeters is not None and len(perimeters):
        rings = shapely.boundary(np.asarray(perimeters, dtype=object))
        parts.append(shapely.get_coordinates(shapely.segmentize(rings, spacing)))
    if not parts:
        return np.empty((0, 2))
    xy = np.vstack(parts)
    if area is not None:
        xy = xy[shapely.covers(area, shapely.points(xy))]
    _, first = np.unique(np.round(xy * 2), axis=0, return_index=True)
    xy = xy[np.sort(first)]
    cell = spacing
    while max_sites is not None and len(xy) > max_sites:
        _, first = np.unique(np.floor(xy / cell), axis=0, return_index=True)
        xy = xy[np.sort(first)]
        cell *= 1.25
    return xy


def demand_points(pieces: np.ndarray, lattice: Lattice | None, density: np.ndarray | None,
                  spacing: float = 10.0, weight: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample points of gap pieces: (xy, risk weight, ground each stands for, piece index).

    Polygons are sampled at the centres of a ``spacing`` square lattice (a piece too small to hold a
    lattice point gets its representative point); lines every ``spacing`` m along them.
    A point's ground is ``spacing``² m² (or the small piece's area) for polygons and
    ``spacing`` m for lines; its weight is that ground (a line's with its corridor of
    :data:`~geo.coverage.ROAD_CORRIDOR` m each side) times the risk density of its
    lattice cell (the lowest density outside the lattice) times the piece's ``weight``.
    """
    pieces = np.asarray(pieces, dtype=object)
    xy_parts, ground_parts, owner_parts = [], [], []
    for i, piece in enumerate(pieces):
        if shapely.get_dimensions(piece) == 2:
            x0, y0, x1, y1 = piece.bounds
            gx = (np.arange(math.floor(x0 / spacing), math.ceil(x1 / spacing)) + 0.5) * spacing
            gy = (np.arange(math.floor(y0 / spacing), math.ceil(y1 / spacing)) + 0.5) * spacing
            grid = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
            pts = grid[shapely.contains_xy(piece, grid[:, 0], grid[:, 1])]
            if len(pts) == 0:
                pts = shapely.get_coordinates(piece.representative_point())
                ground = np.array([piece.area])
            else:
                ground = np.full(len(pts), spacing * spacing)
        else:
            length = piece.length
            at = np.arange(spacing / 2, length, spacing) if length > spacing else \
                np.array([length / 2])
            pts = shapely.get_coordinates(shapely.line_interpolate_point(piece, at))
            ground = np.full(len(pts), min(spacing, length))
        xy_parts.append(pts)
        ground_parts.append(ground)
        owner_parts.append(np.full(len(pts), i))
    if not xy_parts:
        return np.empty((0, 2)), np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    xy = np.vstack(xy_parts)
    ground = np.concatenate(ground_parts)
    owner = np.concatenate(owner_parts).astype(np.int64)
    line = shapely.get_dimensions(pieces)[owner] == 1
    risk = np.ones(len(xy))
    if lattice is not None and density is not None and len(density):
        at = lattice.locate(xy)
        risk = np.where(at >= 0, density[np.maximum(at, 0)], float(np.min(density)))
    w = ground * np.where(line, 2 * ROAD_CORRIDOR, 1.0) * risk
    if weight is not None:
        w = w * np.asarray(weight, dtype=float)[owner]
    return xy, w, ground, owner


def coverage_options(sites: np.ndarray, model: CameraModel, demand_xy: np.ndarray,
                     buildings: np.ndarray | None = None,
                     tree: shapely.STRtree | None = None
                     ) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Which demand points each option sees: (options × demand 0/1 matrix, options).

    ``options`` has one row (site index, bearing) per site and heading of ``model``.
    Visibility is the exact occluded view of :func:`~geo.coverage.field_of_view`;
    ``tree`` is an STRtree of ``buildings`` when the caller has one.
    """
    sites = np.asarray(sites, dtype=float).reshape(-1, 2)
    demand_xy = np.asarray(demand_xy, dtype=float).reshape(-1, 2)
    headings = model.headings
    buildings = None if buildings is None else np.asarray(buildings, dtype=object)
    if tree is None and buildings is not None and len(buildings):
        tree = shapely.STRtree(buildings)
    # one list of demand indices per site (scipy-stubs type the answer for one point only)
    near: Sequence[Any] | np.ndarray = cKDTree(demand_xy).query_ball_point(sites, model.range_m) \
        if len(demand_xy) else [[] for _ in range(len(sites))]
    rows, cols = [], []
    for s, (x, y) in enumerate(sites):
        idx = np.asarray(near[s], dtype=np.int64)
        if len(idx) == 0:
            continue
        view = field_of_view(x, y, 0.0, 360.0, model.range_m, buildings if tree else None, tree)
        pts = demand_xy[idx]
        idx = idx[shapely.contains_xy(view, pts[:, 0], pts[:, 1])]
        if len(idx) == 0:
            continue
        d = demand_xy[idx] - (x, y)
        angle = np.degrees(np.arctan2(d[:, 0], d[:, 1])) % 360
        at_site = np.hypot(d[:, 0], d[:, 1]) < 1e-9
        for h, bearing in enumerate(headings):
            if model.fov >= 360:
                seen = idx
            else:
                off = np.abs((angle - bearing + 180) % 360 - 180)
                seen = idx[(off <= model.fov / 2 + 1e-9) | at_site]
            rows.append(np.full(len(seen), s * len(headings) + h))
            cols.append(seen)
    n_options = len(sites) * len(headings)
    options = np.column_stack([np.repeat(np.arange(len(sites)), len(headings)),
                               np.tile(headings, len(sites))])
    if rows:
        r, c = np.concatenate(rows), np.concatenate(cols)
    else:
        r = c = np.zeros(0, dtype=np.int64)
    matrix = sparse.csr_matrix((np.ones(len(r), dtype=np.float64), (r, c)),
                               shape=(n_options, len(demand_xy)))
    return matrix, options


@dataclass
class Choice:
    """Chosen options in order, each one's marginal gain, and the total gain."""

    options: list[int]
    gains: list[float]

    @property
    def total(self) -> float:
        """The summed weight of the demand the chosen options cover."""
        return float(sum(self.gains))


def marginal_gains(matrix: sparse.csr_matrix, weights: np.ndarray, order: list[int]
                   ) -> list[float]:
    """What each option in ``order`` adds to the ones before it (summed ``weights``)."""
    covered = np.zeros(matrix.shape[1], dtype=bool)
    gains = []
    for j in order:
        cols = matrix.indices[matrix.indptr[j]:matrix.indptr[j + 1]]
        fresh = cols[~covered[cols]]
        gains.append(float(weights[fresh].sum()))
        covered[fresh] = True
    return gains


def max_cover(matrix: sparse.csr_matrix, weights: np.ndarray, k: int, improve: bool = True,
              max_passes: int = 20) -> Choice:
    """Choose up to ``k`` options (rows of ``matrix``) covering the most demand weight.

    Lazy greedy, then (``improve``) swaps of one chosen option for the best other one
    while a swap gains more than 1e-9 of the total. The choice comes in greedy order
    (each adds the most to those before it, so gains never rise). Options that add
    nothing are not chosen, so fewer than ``k`` may come back.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k!r}")
    matrix = sparse.csr_matrix(matrix)
    weights = np.asarray(weights, dtype=float)
    upper = matrix @ weights
    heap = [(-g, j) for j, g in enumerate(upper) if g > 0]
    heapq.heapify(heap)
    covered = np.zeros(matrix.shape[1], dtype=bool)
    chosen: list[int] = []
    while heap and len(chosen) < k:
        _, j = heapq.heappop(heap)
        cols = matrix.indices[matrix.indptr[j]:matrix.indptr[j + 1]]
        gain = float(weights[cols[~covered[cols]]].sum())
        if gain <= 0:
            continue
        if heap and gain < -heap[0][0] - 1e-12:
            heapq.heappush(heap, (-gain, j))
            continue
        chosen.append(j)
        covered[cols] = True
    if improve and len(chosen) > 0:
        chosen = _greedy_order(matrix, weights, _swap_improve(matrix, weights, chosen,
                                                              max_passes))
    return Choice(chosen, marginal_gains(matrix, weights, chosen))


def _greedy_order(matrix: sparse.csr_matrix, weights: np.ndarray, chosen: list[int]
                  ) -> list[int]:
    """The chosen options ordered so that each adds the most to those before it."""
    rest, order = list(chosen), []
    covered = np.zeros(matrix.shape[1], dtype=bool)
    while rest:
        gains = [weights[c[~covered[c]]].sum() for c in
                 (matrix.indices[matrix.indptr[j]:matrix.indptr[j + 1]] for j in rest)]
        j = rest.pop(int(np.argmax(gains)))
        order.append(j)
        covered[matrix.indices[matrix.indptr[j]:matrix.indptr[j + 1]]] = True
    return order


def _swap_improve(matrix: sparse.csr_matrix, weights: np.ndarray, chosen: list[int],
                  max_passes: int) -> list[int]:
    chosen = list(chosen)
    count = np.asarray(matrix[chosen].sum(axis=0)).ravel()
    tol = 1e-9 * max(float(weights @ (count > 0)), 1e-300)
    for _ in range(max_passes):
        improved = False
        for slot in range(len(chosen)):
            i = chosen[slot]
            cols = matrix.indices[matrix.indptr[i]:matrix.indptr[i + 1]]
            without = count.copy()
            without[cols] -= 1
            loss = float(weights[cols[without[cols] == 0]].sum())
            gain = matrix @ (weights * (without == 0))
            gain[chosen] = -np.inf
            j = int(np.argmax(gain))
            if gain[j] > loss + tol:
                new_cols = matrix.indices[matrix.indptr[j]:matrix.indptr[j + 1]]
                without[new_cols] += 1
                count = without
                chosen[slot] = j
                improved = True
        if not improved:
            break
    return chosen
