"""Emerging hot spots: a space-time cube, space-time Gi*, Mann-Kendall, 17 categories.

The cube holds incident counts per cell and time step. Each bin's Gi* uses the
cell's spatial neighbourhood (the cell included) in this step and the
``time_window`` steps before it, against the mean and variance of the whole cube, as
ArcGIS's Emerging Hot Spot Analysis does. A bin is a significant hot (cold) spot when
its z-score is positive (negative) and its two-sided p-value, Benjamini-Hochberg
corrected over all bins unless ``fdr=False``, is at most ``alpha``. The trend of each
cell's Gi* z-scores over time is the Mann-Kendall test (two-sided, ties corrected).

Categories, with ArcGIS's published rules (cold spots mirror hot ones):

- ``new``: hot in the final step, never hot before;
- ``consecutive``: one uninterrupted run of at least two hot steps at the end, never
  hot before that run, hot in less than 90 % of steps;
- ``intensifying`` / ``persistent`` / ``diminishing``: hot in at least 90 % of steps,
  the final one included, with a significant rising / no / falling trend of the
  clustering intensity;
- ``sporadic``: hot in the final step, on and off before, hot in less than 90 % of
  steps and never a cold spot;
- ``oscillating``: hot in the final step, a cold spot at some earlier step, hot in
  less than 90 % of steps;
- ``historical``: not hot in the final step but hot in at least 90 % of steps;
- ``no_pattern``: none of these.

References
----------
Esri. How Emerging Hot Spot Analysis works. ArcGIS Pro documentation,
    https://pro.arcgis.com/en/pro-app/2.8/tool-reference/space-time-pattern-mining/learnmoreemerging.htm
Getis, A. and Ord, J. K. (1992). The analysis of spatial association by use of distance
    statistics. *Geographical Analysis* 24(3), 189-206.
    doi:10.1111/j.1538-4632.1992.tb00261.x
Ord, J. K. and Getis, A. (1995). Local spatial autocorrelation statistics: distributional
    issues and an application. *Geographical Analysis* 27(4), 286-306.
    doi:10.1111/j.1538-4632.1995.tb00912.x
Mann, H. B. (1945). Nonparametric tests against trend. *Econometrica* 13(3), 245-259.
    doi:10.2307/1907187
Kendall, M. G. (1975). *Rank Correlation Methods*, 4th edition. Charles Griffin, London.
Benjamini, Y. and Hochberg, Y. (1995). Controlling the false discovery rate: a practical
    and powerful approach to multiple testing. *Journal of the Royal Statistical Society:
    Series B (Methodological)* 57(1), 289-300. doi:10.1111/j.2517-6161.1995.tb02031.x
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .hotspots import Lattice, benjamini_hochberg, gi_z_scores, two_sided_p

__all__ = ["CATEGORIES", "categorise", "emerging_hotspots", "mann_kendall", "space_time_gi"]

_KINDS = ("new", "consecutive", "intensifying", "persistent", "diminishing", "sporadic",
          "oscillating", "historical")
CATEGORIES = tuple(f"{k}_{side}_spot" for side in ("hot", "cold") for k in _KINDS) + \
    ("no_pattern",)
SHARE = 0.9


def space_time_gi(lattice: Lattice, cube: np.ndarray, neighbours: str | float = "queen",
                  time_window: int = 1) -> np.ndarray:
    """Gi* z-score of every bin of ``cube`` (steps, cells)."""
    cube = np.asarray(cube, dtype=float)
    steps = cube.shape[0]
    raster = np.stack([lattice.to_raster(step) for step in cube])
    spatial = lattice.neighbour_sum(raster, neighbours)
    size = lattice.neighbour_sum(lattice.valid.astype(float), neighbours)
    window = np.cumsum(spatial, axis=0)
    window[time_window + 1:] -= window[:-(time_window + 1)].copy()
    in_window = np.minimum(np.arange(steps), time_window) + 1
    cardinality = size[None] * in_window[:, None, None]
    n = cube.size
    z = gi_z_scores(window, cardinality, cube.sum(), (cube * cube).sum(), n)
    return np.stack([lattice.from_raster(step) for step in z])


def mann_kendall(series: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mann-Kendall test of each row of ``series`` (locations, steps).

    Returns S, the z-score (continuity corrected, variance corrected for ties) and
    the two-sided p-value.
    """
    x = np.asarray(series, dtype=float)
    if x.ndim == 1:
        x = x[None]
    n = x.shape[1]
    s = np.zeros(len(x))
    for i in range(n - 1):
        s += np.sign(x[:, i + 1:] - x[:, i:i + 1]).sum(axis=1)
    ordered = np.sort(x, axis=1)
    run = np.ones(len(x))
    ties = np.zeros(len(x))
    for j in range(1, n + 1):
        same = ordered[:, j] == ordered[:, j - 1] if j < n else np.zeros(len(x), dtype=bool)
        ended = ~same
        ties += np.where(ended & (run > 1), run * (run - 1) * (2 * run + 5), 0.0)
        run = np.where(same, run + 1, 1.0)
    variance = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(s > 0, (s - 1) / np.sqrt(variance),
                     np.where(s < 0, (s + 1) / np.sqrt(variance), 0.0))
    z = np.where(variance > 0, z, 0.0)
    return s, z, 2 * stats.norm.sf(np.abs(z))


def _side(hot: np.ndarray, cold: np.ndarray, final_hot: np.ndarray, rising: np.ndarray,
          falling: np.ndarray) -> np.ndarray:
    """Category index (into ``_KINDS``) for one side, -1 when none applies."""
    locations, steps = hot.shape
    share = hot.mean(axis=1)
    before = hot[:, :-1].any(axis=1)
    # length of the run of hot steps that ends at the final step
    run = np.zeros(locations, dtype=np.int64)
    still = np.ones(locations, dtype=bool)
    for t in range(steps - 1, -1, -1):
        still &= hot[:, t]
        run += still
    last_before_run = steps - run - 1
    seen = np.cumsum(hot, axis=1)[np.arange(locations), np.clip(last_before_run, 0, None)]
    hot_before_run = (last_before_run >= 0) & (seen > 0)
    out = np.full(locations, -1, dtype=np.int64)
    mostly = share >= SHARE
    out[~final_hot & mostly] = _KINDS.index("historical")
    f = final_hot
    out[f & mostly & ~rising & ~falling] = _KINDS.index("persistent")
    out[f & mostly & rising] = _KINDS.index("intensifying")
    out[f & mostly & falling] = _KINDS.index("diminishing")
    few = f & ~mostly
    out[few & cold.any(axis=1)] = _KINDS.index("oscillating")
    out[few & ~cold.any(axis=1)] = _KINDS.index("sporadic")
    out[few & (run >= 2) & ~hot_before_run] = _KINDS.index("consecutive")
    out[f & ~before] = _KINDS.index("new")
    return out


def categorise(z: np.ndarray, significant: np.ndarray, trend_z: np.ndarray,
               trend_p: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Category of each location from its bins' z-scores (locations, steps).

    ``significant`` marks the bins whose (corrected) p-value passed; the trend is
    significant when ``trend_p <= alpha``.
    """
    hot = significant & (z > 0)
    cold = significant & (z < 0)
    up = (trend_p <= alpha) & (trend_z > 0)
    down = (trend_p <= alpha) & (trend_z < 0)
    hot_kind = _side(hot, cold, hot[:, -1], up, down)
    # a cold spot intensifies when its z-scores fall (clustering of lows grows)
    cold_kind = _side(cold, hot, cold[:, -1], down, up)
    out = np.full(len(z), "no_pattern", dtype=object)
    use_hot = (hot_kind >= 0) & ~cold[:, -1]  # the final step decides the side
    use_cold = (cold_kind >= 0) & ~use_hot
    for i in np.flatnonzero(use_hot):
        out[i] = f"{_KINDS[hot_kind[i]]}_hot_spot"
    for i in np.flatnonzero(use_cold):
        out[i] = f"{_KINDS[cold_kind[i]]}_cold_spot"
    return out


def emerging_hotspots(lattice: Lattice, cube: np.ndarray, neighbours: str | float = "queen",
                      time_window: int = 1, alpha: float = 0.05,
                      fdr: bool = True) -> dict[str, np.ndarray]:
    """Emerging hot-spot analysis of ``cube`` (steps, cells) on ``lattice``.

    Returns ``{"category", "z", "p", "trend_z", "trend_p"}``: per-cell category and
    trend, and per-bin z and (corrected) p as (steps, cells) arrays.
    """
    cube = np.asarray(cube, dtype=float)
    if cube.ndim != 2 or cube.shape[1] != len(lattice.cells):
        raise ValueError(f"the cube must be (steps, {len(lattice.cells)} cells), "
                         f"got {cube.shape}")
    if cube.shape[0] < 2:
        raise ValueError("emerging hot spots need at least two time steps")
    z = space_time_gi(lattice, cube, neighbours, time_window)
    p = two_sided_p(z)
    if fdr:
        p = benjamini_hochberg(p.ravel()).reshape(p.shape)
    _s, trend_z, trend_p = mann_kendall(z.T)
    category = categorise(z.T, (p <= alpha).T, trend_z, trend_p, alpha)
    return {"category": category, "z": z, "p": p, "trend_z": trend_z, "trend_p": trend_p}
