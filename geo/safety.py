"""The safety index (平安指数) of grids: a documented, relative score from 0 to 100.

For the grids of one jurisdiction, each input is turned into a risk between 0 and 1:

- ``rate``: severity-weighted incidents of the last 12 months per 1 000 residents,
  with :data:`RESIDENT_PRIOR` residents added to every grid so that a grid with no
  residents (a school, a market) still gets a finite rate; its risk is the rate's
  percentile rank among the grids (ties share the mean rank);
- ``trend``: the Mann-Kendall z of the monthly counts; risk = Phi(z) (0.5 when flat,
  towards 1 when getting worse);
- ``hot_share``: the share of the grid's area in Gi* hot cells (90 % or more), as is;
- ``key_exposure``: key areas per km², percentile rank;
- ``coverage`` (when known): the share of the grid's area that online cameras watch
  (:mod:`geo.coverage`); risk = 1 - its percentile rank (the least watched grid 1).

Risk is the weighted mean of the inputs present (:data:`WEIGHTS`; a missing input's
weight is shared out among the others). ``score = 100 * (1 - risk)``; ``level`` is 1
(safest, score >= 80) to 5 (score < 20) in bands of 20.

:func:`grid_month_counts` gives the counts behind ``rate`` and ``trend``: each incident in
one grid, by calendar month.
"""

from __future__ import annotations

import numpy as np
import shapely
from scipy import stats

__all__ = ["RESIDENT_PRIOR", "WEIGHTS", "grid_month_counts", "levels", "percentile_rank",
           "safety_scores"]

RESIDENT_PRIOR = 100
WEIGHTS = {"rate": 0.40, "trend": 0.15, "hot_share": 0.25, "key_exposure": 0.10,
           "coverage": 0.10}


def grid_month_counts(grids: np.ndarray, xy: np.ndarray, when: np.ndarray,
                      edges: np.ndarray, severity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Incidents per grid and month, and severity-weighted incidents per grid.

    Parameters
    ----------
    grids : (g,) polygons, in a metric CRS.
    xy : (n, 2) incident coordinates, metres in the same CRS.
    when : (n,) incident times, ``datetime64`` (any unit; UTC like ``edges``).
    edges : (m + 1,) ascending ``datetime64``: month ``k`` is [edges[k], edges[k + 1]).
    severity : (n,) incident weights (severity 1-5).

    Returns
    -------
    ``monthly`` (g, m) int: incidents of each grid in each month; ``weighted`` (g,)
    float: the sum of the severities of each grid's incidents in the m months. An
    incident counts in one grid: the first (lowest index) whose polygon it intersects,
    so one on an edge shared by two grids counts once. Incidents in no grid or outside
    [edges[0], edges[-1]) count nowhere.
    """
    grids = np.asarray(grids, dtype=object)
    months = len(edges) - 1
    point_at, grid_at = shapely.STRtree(grids).query(
        shapely.points(np.asarray(xy, dtype=float).reshape(-1, 2)), predicate="intersects")
    order = np.lexsort((grid_at, point_at))  # each point's lowest grid index first
    point_at, grid_at = point_at[order], grid_at[order]
    first = np.unique(point_at, return_index=True)[1]
    point_at, grid_at = point_at[first], grid_at[first]
    month = np.searchsorted(np.asarray(edges), np.asarray(when)[point_at], side="right") - 1
    ok = (month >= 0) & (month < months)
    point_at, grid_at, month = point_at[ok], grid_at[ok], month[ok]
    monthly = np.bincount(grid_at * months + month,
                          minlength=len(grids) * months).reshape(len(grids), months)
    weighted = np.bincount(grid_at, weights=np.asarray(severity, dtype=float)[point_at],
                           minlength=len(grids)).astype(float)
    return monthly, weighted


def percentile_rank(values: np.ndarray) -> np.ndarray:
    """Rank of each value among all, scaled to 0..1 (ties: their mean rank)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return np.zeros(len(values))
    return (stats.rankdata(values, method="average") - 1) / (len(values) - 1)


def levels(score: np.ndarray) -> np.ndarray:
    """Level 1 (safest, score >= 80) to 5 (score < 20)."""
    score = np.asarray(score, dtype=float)
    return (5 - np.clip(np.floor(score / 20), 0, 4)).astype(int)


def safety_scores(weighted_incidents: np.ndarray, residents: np.ndarray,
                  trend_z: np.ndarray, hot_share: np.ndarray, key_areas: np.ndarray,
                  area_km2: np.ndarray, coverage: np.ndarray | None = None) -> dict:
    """Scores, levels and the risks behind them, one per grid (see the module text)."""
    residents = np.asarray(residents, dtype=float)
    rate = np.asarray(weighted_incidents, dtype=float) / (residents + RESIDENT_PRIOR) * 1000
    exposure = np.asarray(key_areas, dtype=float) / np.maximum(np.asarray(area_km2, float),
                                                               1e-6)
    risks = {"rate": percentile_rank(rate),
             "trend": stats.norm.cdf(np.asarray(trend_z, dtype=float)),
             "hot_share": np.clip(np.asarray(hot_share, dtype=float), 0, 1),
             "key_exposure": percentile_rank(exposure)}
    if coverage is not None:
        share = np.nan_to_num(np.clip(np.asarray(coverage, dtype=float), 0, 1))
        risks["coverage"] = 1 - percentile_rank(share)
    total = sum(WEIGHTS[k] for k in risks)
    risk = sum(WEIGHTS[k] / total * v for k, v in risks.items())
    score = 100 * (1 - risk)
    return {"score": score, "level": levels(score), "rate_per_1000": rate,
            "key_areas_per_km2": exposure, "risks": risks}
