"""Incident hot spots on a lattice of cells: counts, Getis-Ord Gi* with FDR, KDE, PAI.

Cells are squares or flat-topped hexagons laid on a regular lattice in a metric CRS;
a :class:`Lattice` keeps them as a raster (row, column) so that counting points and
summing over neighbourhoods are array operations: a point's cell is found by
arithmetic, a neighbourhood sum is a correlation with a small kernel. Arbitrary
polygons and weights go through :func:`gi_star_sparse` instead.

Gi* (Getis & Ord 1992; Ord & Getis 1995) uses binary weights with the cell itself
in its neighbourhood. Its z-scores are those of ``esda.G_Local(y, w, star=True,
transform="B")``; p-values are two-sided and corrected for multiple testing with
Benjamini-Hochberg, as ArcGIS's Hot Spot Analysis does with its FDR option.

All lengths are metres in the lattice's CRS.

References
----------
Getis, A. and Ord, J. K. (1992). The analysis of spatial association by use of distance
    statistics. *Geographical Analysis* 24(3), 189-206.
    doi:10.1111/j.1538-4632.1992.tb00261.x
Ord, J. K. and Getis, A. (1995). Local spatial autocorrelation statistics: distributional
    issues and an application. *Geographical Analysis* 27(4), 286-306.
    doi:10.1111/j.1538-4632.1995.tb00912.x
Benjamini, Y. and Hochberg, Y. (1995). Controlling the false discovery rate: a practical
    and powerful approach to multiple testing. *Journal of the Royal Statistical Society:
    Series B (Methodological)* 57(1), 289-300. doi:10.1111/j.2517-6161.1995.tb02031.x
Silverman, B. W. (1986). *Density Estimation for Statistics and Data Analysis*. Chapman
    and Hall, London (the quartic kernel and the rule-of-thumb bandwidth).
Esri. How Kernel Density works (the default search radius). ArcGIS documentation,
    https://desktop.arcgis.com/en/arcmap/10.8/tools/spatial-analyst-toolbox/how-kernel-density-works.htm
Esri. How Optimized Hot Spot Analysis works (the cell size). ArcGIS Pro documentation,
    https://pro.arcgis.com/en/pro-app/tool-reference/spatial-statistics/how-optimized-hot-spot-analysis-works.htm
Chainey, S., Tompson, L. and Uhlig, S. (2008). The utility of hotspot mapping for
    predicting spatial patterns of crime. *Security Journal* 21(1-2), 4-28.
    doi:10.1057/palgrave.sj.8350066
Levine, N. (2008). The "hottest" part of a hotspot: comments on "The utility of hotspot
    mapping for predicting spatial patterns of crime". *Security Journal* 21(4), 295-302.
    doi:10.1057/sj.2008.5
Hunt, J. M. (2016). *Do crime hot spots move? Exploring the effects of the modifiable
    areal unit problem and modifiable temporal unit problem on crime hot spot stability*.
    Doctoral dissertation, American University, Washington, DC (the PEI).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS
from scipy import ndimage, sparse, stats
from scipy.spatial import cKDTree
from shapely.geometry.base import BaseGeometry

__all__ = [
    "CLASSES",
    "Lattice",
    "benjamini_hochberg",
    "classify",
    "count_points",
    "count_points_by",
    "evaluate",
    "gi_star",
    "gi_star_sparse",
    "gi_z_scores",
    "hex_cells",
    "kde",
    "optimal_cell_size",
    "square_cells",
]

CLASSES = ("hot_99", "hot_95", "hot_90", "cold_99", "cold_95", "cold_90", "not_significant")
SQRT3 = math.sqrt(3.0)


@dataclass
class Lattice:
    """Cells of one regular lattice and where each sits in its raster.

    ``cells`` has ``row``, ``col`` and the polygons; ``shape`` is ``square`` (``size``
    the side) or ``hex`` (``size`` the circumradius, axial coordinates: ``col`` = q,
    ``row`` = r). ``origin`` is the lattice coordinate (x0, y0) of raster (0, 0).
    """

    cells: gpd.GeoDataFrame
    shape: str
    size: float
    origin: tuple[float, float]
    raster_shape: tuple[int, int]
    index: np.ndarray = field(repr=False)  # raster -> cell position, -1 outside

    @property
    def valid(self) -> np.ndarray:
        """Raster mask of the cells in the area."""
        return self.index >= 0

    def to_raster(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Per-cell ``values`` (any trailing dimensions) laid out on the raster."""
        values = np.asarray(values)
        out = np.full(self.raster_shape + values.shape[1:], fill, dtype=float)
        out[self.cells["row"].to_numpy(), self.cells["col"].to_numpy()] = values
        return out

    def from_raster(self, raster: np.ndarray) -> np.ndarray:
        """Per-cell values read back from a raster."""
        return raster[self.cells["row"].to_numpy(), self.cells["col"].to_numpy()]

    def locate(self, xy: np.ndarray) -> np.ndarray:
        """Cell position of each point (N, 2), -1 for points outside every cell."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if self.shape == "square":
            col = np.floor((xy[:, 0] - self.origin[0]) / self.size).astype(np.int64)
            row = np.floor((xy[:, 1] - self.origin[1]) / self.size).astype(np.int64)
        else:
            q, r = _hex_round(xy[:, 0] / self.size, xy[:, 1] / self.size)
            col = q - int(self.origin[0])
            row = r - int(self.origin[1])
        rows, cols = self.raster_shape
        inside = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
        out = np.full(len(xy), -1, dtype=np.int64)
        out[inside] = self.index[row[inside], col[inside]]
        return out

    def kernel(self, neighbours: str | float) -> np.ndarray:
        """Binary kernel of the neighbourhood, the cell itself included.

        ``"queen"``: cells sharing an edge or a corner (8 squares, 6 hexagons); a
        number: cells whose centres lie within that many metres.
        """
        if neighbours == "queen":
            if self.shape == "square":
                return np.ones((3, 3))
            k = np.ones((3, 3))
            k[0, 0] = k[2, 2] = 0  # axial (dq, dr) = (-1, -1) and (1, 1) are not adjacent
            return k
        distance = float(neighbours)
        if not (distance > 0 and math.isfinite(distance)):
            raise ValueError(f"neighbour distance must be positive metres, got {neighbours!r}")
        reach = int(math.ceil(distance / (self.size if self.shape == "square"
                                          else self.size * SQRT3 / 2))) + 1
        dr, dc = np.mgrid[-reach:reach + 1, -reach:reach + 1]
        if self.shape == "square":
            dx, dy = dc * self.size, dr * self.size
        else:
            dx, dy = 1.5 * self.size * dc, SQRT3 * self.size * (dr + dc / 2)
        return (np.hypot(dx, dy) <= distance + 1e-9 * self.size).astype(float)

    def neighbour_sum(self, raster: np.ndarray, neighbours: str | float) -> np.ndarray:
        """Sum of ``raster`` over each cell's neighbourhood (last axes: row, col)."""
        kernel = self.kernel(neighbours)
        if raster.ndim == 3:  # (time, row, col): the same kernel in every step
            kernel = kernel[None]
        return ndimage.correlate(raster, kernel, mode="constant", cval=0.0)


def _lattice(cells: gpd.GeoDataFrame, shape: str, size: float,
             origin: tuple[float, float]) -> Lattice:
    rows = int(cells["row"].max()) + 1 if len(cells) else 0
    cols = int(cells["col"].max()) + 1 if len(cells) else 0
    index = np.full((rows, cols), -1, dtype=np.int64)
    index[cells["row"].to_numpy(), cells["col"].to_numpy()] = np.arange(len(cells))
    return Lattice(cells, shape, size, origin, (rows, cols), index)


def _check_size(area: BaseGeometry, size: float, per_cell: float,
                max_cells: int) -> None:
    if not (size > 0 and math.isfinite(size)):
        raise ValueError(f"cell size must be a positive number of metres, got {size!r}")
    estimate = area.envelope.area / per_cell
    if estimate > max_cells:
        raise ValueError(f"cells of {size:g} m would make about {estimate:,.0f} cells "
                         f"(more than {max_cells:,}): choose larger cells")


def square_cells(area: BaseGeometry, size: float, crs: CRS | str | int | None = None,
                 max_cells: int = 5_000_000, cover: bool = False) -> Lattice:
    """Squares of side ``size`` metres whose centre lies in ``area``.

    With ``cover``, every square that overlaps ``area``, clipped to it: the cells then
    cover the area exactly, and every point in it lies in one.
    """
    _check_size(area, size, size * size, max_cells)
    x0, y0, x1, y1 = area.bounds
    ox, oy = math.floor(x0 / size) * size, math.floor(y0 / size) * size
    cols = max(1, math.ceil((x1 - ox) / size))
    rows = max(1, math.ceil((y1 - oy) / size))
    rr, cc = np.mgrid[0:rows, 0:cols]
    cx, cy = ox + (cc + 0.5) * size, oy + (rr + 0.5) * size
    inside = shapely.contains_xy(area, cx, cy).ravel()
    rr, cc = rr.ravel(), cc.ravel()
    if not cover:  # only the kept cells are built
        rr, cc, inside = rr[inside], cc[inside], inside[inside]
    geoms = shapely.box(ox + cc * size, oy + rr * size, ox + (cc + 1) * size,
                        oy + (rr + 1) * size)
    keep, geoms = _kept(area, geoms, inside, cover)
    cells = gpd.GeoDataFrame({"row": rr[keep], "col": cc[keep]}, geometry=geoms, crs=crs)
    return _lattice(cells, "square", size, (ox, oy))


def _kept(area: BaseGeometry, cells: np.ndarray, centre_inside: np.ndarray,
          cover: bool) -> tuple[np.ndarray, np.ndarray]:
    """Which lattice cells to keep (a mask) and their polygons.

    Cells whose centre lies in ``area``; with ``cover`` also those whose centre does
    not but that overlap it, and every kept cell clipped to ``area``.
    """
    if not cover:
        return centre_inside, cells[centre_inside]
    shapely.prepare(area)
    keep = centre_inside.copy()
    edge = np.flatnonzero(~centre_inside)
    keep[edge[shapely.intersects(area, cells[edge])]] = True
    clipped = cells[keep].copy()
    edge = ~shapely.contains_properly(area, clipped)  # only the cells on the edge are cut
    clipped[edge] = shapely.intersection(clipped[edge], area)
    has_area = shapely.area(clipped) > 0
    keep[keep] = has_area
    return keep, clipped[has_area]


def _hex_round(fq: np.ndarray, fr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axial (q, r) of the flat-topped hexagon (circumradius 1) holding (x, y)."""
    q = 2.0 / 3.0 * fq
    r = -1.0 / 3.0 * fq + SQRT3 / 3.0 * fr
    s = -q - r
    rq, rr, rs = np.round(q), np.round(r), np.round(s)
    dq, dr, ds = np.abs(rq - q), np.abs(rr - r), np.abs(rs - s)
    fix_q = (dq > dr) & (dq > ds)
    fix_r = ~fix_q & (dr > ds)
    rq = np.where(fix_q, -rr - rs, rq)
    rr = np.where(fix_r, -rq - rs, rr)
    return rq.astype(np.int64), rr.astype(np.int64)


def hex_cells(area: BaseGeometry, size: float, crs: CRS | str | int | None = None,
              max_cells: int = 5_000_000, cover: bool = False) -> Lattice:
    """Flat-topped hexagons of circumradius ``size`` metres whose centre lies in ``area``.

    With ``cover``, every hexagon that overlaps ``area``, clipped to it (as for
    :func:`square_cells`).
    """
    _check_size(area, size, 1.5 * SQRT3 * size * size, max_cells)
    x0, y0, x1, y1 = area.bounds
    q0, q1 = math.floor(x0 / (1.5 * size)) - 1, math.ceil(x1 / (1.5 * size)) + 1
    r0 = math.floor(y0 / (SQRT3 * size) - q1 / 2) - 1
    r1 = math.ceil(y1 / (SQRT3 * size) - q0 / 2) + 1
    qq, rr = np.mgrid[q0:q1 + 1, r0:r1 + 1]
    qq, rr = qq.ravel(), rr.ravel()
    half_x, half_y = size / 2, SQRT3 * size / 2
    inside = shapely.contains_xy(area, half_x * 3 * qq, half_y * (2 * rr + qq))
    if not cover:  # only the kept cells are built
        qq, rr, inside = qq[inside], rr[inside], inside[inside]
    # Vertices from integer multiples of the half steps: neighbours compute a shared
    # vertex from the same integers, so it is the same point to the last bit.
    dx = np.array([2, 1, -1, -2, -1, 1])
    dy = np.array([0, 1, 1, 0, -1, -1])
    ring = np.stack([half_x * (3 * qq[:, None] + dx),
                     half_y * (2 * rr[:, None] + qq[:, None] + dy)], axis=-1)
    # (shapely's stubs give polygons() of an array as ``Polygon | ndarray``)
    keep, geoms = _kept(area, shapely.polygons(ring), inside, cover)  # type: ignore[arg-type]
    cells = gpd.GeoDataFrame({"row": rr[keep] - r0, "col": qq[keep] - q0}, geometry=geoms,
                             crs=crs)
    return _lattice(cells, "hex", size, (q0, r0))


def count_points(lattice: Lattice, xy: np.ndarray, weights: np.ndarray | None = None
                 ) -> np.ndarray:
    """Points (N, 2) per cell (or the sum of ``weights``); points outside are ignored."""
    at = lattice.locate(xy)
    inside = at >= 0
    w = None if weights is None else np.asarray(weights, dtype=float)[inside]
    return np.bincount(at[inside], weights=w, minlength=len(lattice.cells))


def count_points_by(lattice: Lattice, xy: np.ndarray, group: np.ndarray, groups: int
                    ) -> np.ndarray:
    """Points per (group, cell), shape (groups, cells).

    ``group`` is each point's group in 0..groups-1 (a time step, a category); points in
    no group (negative or too large) or outside every cell are ignored.
    """
    group = np.asarray(group, dtype=np.int64)
    at = lattice.locate(xy)
    ok = (at >= 0) & (group >= 0) & (group < groups)
    n = len(lattice.cells)
    return np.bincount(group[ok] * n + at[ok], minlength=groups * n).reshape(groups, n)


# -- Gi* ------------------------------------------------------------------------------


def gi_z_scores(neighbour_sum: np.ndarray, cardinality: np.ndarray, y_sum: float,
                y_sq_sum: float, n: int) -> np.ndarray:
    """Gi* z-scores from neighbourhood sums and sizes (binary weights, self included).

    Parameters
    ----------
    neighbour_sum : array of the sum of the values over each cell's neighbourhood
        (the cell itself included), any shape.
    cardinality : array, same shape: the number of cells in each neighbourhood.
    y_sum, y_sq_sum : the sum of all ``n`` values and of their squares.
    n : the number of cells.

    Returns
    -------
    The z-scores, shaped like ``neighbour_sum``; 0 where the statistic is undefined
    (fewer than two cells, constant or all-zero values, a neighbourhood of every cell).
    Unitless: the values are counts or rates, whatever the cells' CRS.
    """
    mean = y_sum / n
    variance = y_sq_sum / n - mean * mean
    if n < 2 or variance <= 0 or mean == 0:
        return np.zeros_like(neighbour_sum, dtype=float)
    statistic = neighbour_sum / y_sum
    expected = cardinality / n
    spread = cardinality * (n - cardinality) / (n - 1) / n**2 * variance / mean**2
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (statistic - expected) / np.sqrt(spread)
    return np.where(spread > 0, z, 0.0)


def gi_star(lattice: Lattice, values: np.ndarray, neighbours: str | float = "queen"
            ) -> np.ndarray:
    """Gi* z-score of every cell for per-cell ``values`` (counts, rates).

    ``neighbours`` is ``"queen"`` or a distance band in metres (centre to centre).
    """
    y = np.asarray(values, dtype=float)
    total = lattice.neighbour_sum(lattice.to_raster(y), neighbours)
    size = lattice.neighbour_sum(lattice.valid.astype(float), neighbours)
    return gi_z_scores(lattice.from_raster(total), lattice.from_raster(size), y.sum(),
                 (y * y).sum(), len(y))


def gi_star_sparse(values: np.ndarray, weights: sparse.spmatrix) -> np.ndarray:
    """Gi* z-scores for any binary neighbour matrix (the diagonal is set to 1)."""
    y = np.asarray(values, dtype=float)
    # (scipy-stubs have no overload for a sparse matrix given with a dtype)
    w = sparse.csr_matrix(weights, dtype=float, copy=True)  # type: ignore[call-overload]
    w.data[:] = 1.0
    w = w.tolil()
    w.setdiag(1.0)
    w = w.tocsr()
    return gi_z_scores(w @ y, np.asarray(w.sum(axis=1)).ravel(), y.sum(), (y * y).sum(), len(y))


def two_sided_p(z: np.ndarray) -> np.ndarray:
    """Two-sided normal p-value of each z-score."""
    return 2.0 * stats.norm.sf(np.abs(np.asarray(z, dtype=float)))


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (the FDR at which each test is rejected)."""
    p = np.asarray(p, dtype=float)
    n = len(p)
    if n == 0:
        return p.copy()
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def classify(z: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``hot_99/95/90``, ``cold_99/95/90`` or ``not_significant`` from z and (adjusted) p."""
    z = np.asarray(z, dtype=float)
    p = np.asarray(p, dtype=float)
    out = np.full(len(z), "not_significant", dtype=object)
    for level, alpha in (("90", 0.10), ("95", 0.05), ("99", 0.01)):
        out[(p <= alpha) & (z > 0)] = f"hot_{level}"
        out[(p <= alpha) & (z < 0)] = f"cold_{level}"
    return out


# -- kernel density ---------------------------------------------------------------------


def default_bandwidth(xy: np.ndarray) -> float:
    """Search radius in metres from the points, by ArcGIS Kernel Density's rule.

    ``0.9 * min(SD, sqrt(1 / ln 2) * Dm) * n ** -0.2`` with SD the standard distance
    of the points and Dm the median distance to their mean centre (Silverman's rule
    of thumb made robust to outliers).
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if len(xy) < 2:
        raise ValueError("a bandwidth needs at least two points")
    centre = xy.mean(axis=0)
    distance = np.hypot(*(xy - centre).T)
    standard = math.sqrt((distance**2).sum() / len(xy))
    median = float(np.median(distance))
    radius = 0.9 * min(standard, math.sqrt(1 / math.log(2)) * median) * len(xy) ** -0.2
    if radius <= 0:
        raise ValueError("the points all lie in one place: give a bandwidth")
    return radius


def kde(lattice: Lattice, xy: np.ndarray, bandwidth: float | None = None,
        kernel: str = "quartic", weights: np.ndarray | None = None) -> np.ndarray:
    """Kernel density (points per square metre) at each cell centre.

    ``kernel`` is ``quartic`` (ArcGIS's: 3 / (pi h^2) (1 - (d/h)^2)^2 within h) or
    ``gaussian`` (1 / (2 pi h^2) exp(-d^2 / 2h^2), cut at 4h). ``bandwidth`` h in
    metres defaults to :func:`default_bandwidth`.
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    h = default_bandwidth(xy) if bandwidth is None else float(bandwidth)
    if not h > 0:
        raise ValueError(f"bandwidth must be positive metres, got {bandwidth!r}")
    if kernel not in ("quartic", "gaussian"):
        raise ValueError(f"kernel must be quartic or gaussian, got {kernel!r}")
    w = np.ones(len(xy)) if weights is None else np.asarray(weights, dtype=float)
    centres = shapely.get_coordinates(shapely.centroid(lattice.cells.geometry.values))
    reach = h if kernel == "quartic" else 4 * h
    pairs = cKDTree(centres).sparse_distance_matrix(cKDTree(xy), reach, output_type="coo_matrix")
    u2 = (pairs.data / h) ** 2
    if kernel == "quartic":
        k = 3.0 / (math.pi * h * h) * (1 - u2) ** 2
    else:
        k = np.exp(-u2 / 2) / (2 * math.pi * h * h)
    return np.bincount(pairs.row, weights=k * w[pairs.col], minlength=len(centres))


def optimal_cell_size(xy: np.ndarray, area: BaseGeometry) -> float:
    """A cell size in metres from the points, as ArcGIS's Optimized Hot Spot Analysis.

    The larger of the mean nearest-neighbour distance (with the outermost 1 % of
    points left out) and the size that puts about 100 cells across the area's
    longer side, rounded to the metre. Incidents all at one place have no nearest
    neighbour: the size is then the coarse one.
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if len(xy) < 3:
        raise ValueError("choosing a cell size needs at least three incidents")
    x0, y0, x1, y1 = area.bounds
    coarse = max(x1 - x0, y1 - y0) / 100
    unique = np.unique(xy, axis=0)
    if len(unique) < 2:
        return float(max(round(coarse), 1))
    distance, _ = cKDTree(unique).query(unique, k=2)
    nearest = np.asarray(distance)[:, 1]
    kept = nearest[nearest <= np.quantile(nearest, 0.99)]
    return float(max(round(max(kept.mean(), coarse)), 1))


# -- evaluation -----------------------------------------------------------------------


def evaluate(selected: np.ndarray, test_counts: np.ndarray, cell_area: np.ndarray,
             train_counts: np.ndarray | None = None) -> dict:
    """How well the ``selected`` cells (a hot-spot map) predict the test period.

    - PAI (Chainey et al. 2008): hit rate / area share = (n/N) / (a/A).
    - PEI (Hunt 2016): PAI over the best PAI any cells of the same total area could
      reach, the busiest test cells taken first.
    - RRI (Levine 2008), when ``train_counts`` is given: the hit rate in the test
      period over the hit rate in the training period (recapture; 1 = stable).
    """
    selected = np.asarray(selected, dtype=bool)
    test = np.asarray(test_counts, dtype=float)
    area = np.asarray(cell_area, dtype=float)
    n_total, a_total = test.sum(), area.sum()
    if n_total <= 0 or a_total <= 0:
        raise ValueError("the test period has no incidents (or the cells no area)")
    a = area[selected].sum()
    hit = test[selected].sum() / n_total
    pai = hit / (a / a_total) if a > 0 else 0.0
    # the best PAI for that much area: busiest cells first (by density), a share of
    # the last cell as needed
    order = np.argsort(-test / np.where(area > 0, area, np.inf))
    cum_area = np.cumsum(area[order])
    cum_hits = np.cumsum(test[order])
    k = int(np.searchsorted(cum_area, a))
    if k >= len(order):
        best_hits = cum_hits[-1]
    else:
        before_area = cum_area[k - 1] if k else 0.0
        before_hits = cum_hits[k - 1] if k else 0.0
        best_hits = before_hits + test[order[k]] * (a - before_area) / area[order[k]]
    best_pai = (best_hits / n_total) / (a / a_total) if a > 0 else 0.0
    out = {"pai": pai, "hit_rate": hit, "area_share": a / a_total,
           "pei": pai / best_pai if best_pai > 0 else 0.0, "cells": int(selected.sum())}
    if train_counts is not None:
        train = np.asarray(train_counts, dtype=float)
        train_hit = train[selected].sum() / train.sum() if train.sum() > 0 else 0.0
        out["rri"] = hit / train_hit if train_hit > 0 else float("nan")
    return out
