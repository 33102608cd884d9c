"""Risk grading of places (风险分级): a score of 0-100 and a level 1-4 for each place.

A *place* is a key area (school, hospital, market...) or a grid. Its score adds four
parts, each worth at most the points of :data:`MAX_POINTS`:

``incidents`` (at most 40)
    The severity-weighted incidents of the period in the place's *catchment* (the place
    itself for a grid, the place and :data:`KEY_AREA_REACH` metres around it for a key
    area: what happens at the school gate counts against the school), as a yearly
    rate: ``w = sum(severity) x 365 / days``. Full marks from :data:`INCIDENTS_FULL`
    (20) a year at a key area (2 points each), from :data:`GRID_INCIDENTS_FULL` (60)
    in a grid, whose catchment is a whole neighbourhood: ``40 x min(1, w / full)``.
    Counted per place, not per km²: a key area is a few hundred square metres and
    a density would rank a kiosk above a hospital; grids are drawn to hold similar
    numbers of households, so counts compare them as analysts do. Only incidents
    inside the jurisdiction are read; an incident on the edge two grids share counts
    in both.
``terrain`` (at most 25)
    The risk terrain (:mod:`geo.rtm`) around it: the mean relative risk score ``rrs``
    of the terrain's cells over the catchment, weighted by the area each cell shares
    with it (a place of no area: the cells it touches, equally). Relative risks
    multiply, so points grow with the logarithm: ``25 x min(1, ln(rrs) / ln(4))``
    (``rrs`` 1: 0 points, 2: 12.5, 4 or more: 25). When no terrain could be fitted,
    or the place lies in none of its cells, the part is *left out* (see below) and its
    reason says why.
``coverage`` (at most 15)
    The share of the place its cameras do not watch: ``15 x uncovered share``. A place
    whose coverage cannot be measured (no area) leaves the part out.
``category`` (at most 20)
    The base weight of the key area's category (:data:`CATEGORY_POINTS`: schools and
    kindergartens 20, hospitals, markets, stations and other crowded places 16, ...);
    every grid gets the neutral :data:`GRID_POINTS` (10).

The score is ``100 x (points of the parts present) / (their maximum points)``, so a
part that is left out is neither counted as zero risk nor invented. It is rounded to
one decimal, and the *rounded* score is graded (so the score shown and its level never
disagree) on the fixed cut points :data:`LEVELS`: 1 低 below 25, 2 一般 from 25, 3 较大
from 45, 4 重大 from 65; a score exactly on a cut point takes the higher level. The cut
points are fixed so that a level means the same in every city and month (no quantiles).

Every place gets ``reasons``: one entry per part with the figures behind its points, in
Chinese and English, so an officer reads why. All lengths and areas are metres and
square metres in the one metric CRS of the inputs.

References
----------
GB/T 27921-2011, 风险管理 风险评估技术 (risk assessment techniques).
Caplan, J. M., Kennedy, L. W. (2016). Risk Terrain Modeling: Crime Prediction and Risk
Reduction. University of California Press. ISBN 978-0-520-28294-3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely

__all__ = ["CATEGORY_POINTS", "GRID_INCIDENTS_FULL", "GRID_POINTS", "INCIDENTS_FULL",
           "KEY_AREA_REACH", "LEVELS", "MAX_POINTS", "RRS_FULL", "Grade", "Level",
           "catchments", "grade_places", "incident_load", "level_of", "terrain_mean"]

MAX_POINTS = {"incidents": 40.0, "terrain": 25.0, "coverage": 15.0, "category": 20.0}
INCIDENTS_FULL = 20.0  # severity-weighted incidents a year that earn a key area full points
GRID_INCIDENTS_FULL = 60.0  # ... and a grid
RRS_FULL = 4.0  # relative risk score that earns full terrain points
KEY_AREA_REACH = 50.0  # metres around a key area whose incidents count against it
GRID_POINTS = 10.0  # a grid's neutral base
CATEGORY_POINTS = {  # key-area categories of layers.registry.KEY_AREA_CATEGORIES
    "school": 20.0, "kindergarten": 20.0,  # 学校、幼儿园
    "hospital": 16.0, "market": 16.0, "station": 16.0,  # 医院、农贸市场、交通枢纽
    "entertainment": 16.0, "border_port": 16.0,  # 娱乐场所、口岸
    "mall": 14.0, "airport": 14.0,  # 商场（人员密集场所）、机场
    "railway": 12.0, "port": 12.0, "government_hall": 12.0,  # 铁路、港口、政务大厅
    "park": 10.0,  # 公园
}
DEFAULT_CATEGORY_POINTS = 10.0  # a category missing from the table


@dataclass(frozen=True)
class Level:
    """One risk level: ``from_score`` (inclusive) to ``to_score`` (exclusive; 100 for 4)."""

    level: int
    name_zh: str
    name_en: str
    from_score: float
    to_score: float


LEVELS = (Level(1, "低", "low", 0.0, 25.0), Level(2, "一般", "moderate", 25.0, 45.0),
          Level(3, "较大", "high", 45.0, 65.0), Level(4, "重大", "major", 65.0, 100.0))


@dataclass
class Grade:
    """A place's ``score`` (0-100, one decimal), ``level`` (1-4) and ``reasons``."""

    score: float
    level: int
    reasons: list[dict] = field(default_factory=list)


def level_of(score: float) -> int:
    """The level (1-4) of a score of 0-100; a score on a cut point takes the higher level."""
    if not (math.isfinite(score) and 0 <= score <= 100):
        raise ValueError(f"a score must be 0 to 100, got {score!r}")
    return max(lv.level for lv in LEVELS if score >= lv.from_score)


def catchments(shapes: np.ndarray, reach: np.ndarray | float,
               area: shapely.Geometry | None = None) -> np.ndarray:
    """Each place grown by ``reach`` metres, cut to ``area`` (the jurisdiction) when given.

    Parameters
    ----------
    shapes : (n,) metric geometries (polygons, points or lines).
    reach : metres, one for all or (n,) per place (0: the place itself).
    area : metric polygon the catchments are cut to, or None.

    Returns
    -------
    (n,) metric geometries; a place of no area with ``reach`` 0 stays as it is.
    """
    shapes = np.asarray(shapes, dtype=object)
    grow = np.broadcast_to(np.asarray(reach, dtype=float), shapes.shape)
    out = np.where(grow > 0, shapely.buffer(shapes, grow, quad_segs=8), shapes)
    if area is not None:
        out = shapely.intersection(out, area)
    return np.asarray(out, dtype=object)


def incident_load(catchments: np.ndarray, xy: np.ndarray, severity: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(incidents, sum of their severities) in each catchment (boundary included).

    ``xy``: (m, 2) metres in the catchments' CRS; ``severity``: (m,), 1-5.
    """
    catchments = np.asarray(catchments, dtype=object)
    count, weighted = np.zeros(len(catchments), dtype=np.int64), np.zeros(len(catchments))
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if len(xy) == 0 or len(catchments) == 0:
        return count, weighted
    tree = shapely.STRtree(np.asarray(shapely.points(xy), dtype=object))
    place, point = tree.query(catchments, predicate="intersects")
    np.add.at(count, place, 1)
    np.add.at(weighted, place, np.asarray(severity, dtype=float)[point])
    return count, weighted


def terrain_mean(catchments: np.ndarray, cells: np.ndarray, rrs: np.ndarray) -> np.ndarray:
    """Area-weighted mean ``rrs`` of the cells over each catchment; NaN where none.

    A catchment of no area takes the plain mean of the cells it touches. ``cells``:
    (k,) metric polygons; ``rrs``: (k,) relative risk scores (at least 1).
    """
    catchments = np.asarray(catchments, dtype=object)
    out = np.full(len(catchments), np.nan)
    cells = np.asarray(cells, dtype=object)
    if len(cells) == 0 or len(catchments) == 0:
        return out
    place, cell = shapely.STRtree(cells).query(catchments, predicate="intersects")
    shared = shapely.area(shapely.intersection(catchments[place], cells[cell]))
    zero = shapely.area(catchments) <= 0
    weight = np.where(zero[place], 1.0, shared)
    total = np.bincount(place, weights=weight, minlength=len(catchments))
    score = np.bincount(place, weights=weight * np.asarray(rrs, dtype=float)[cell],
                        minlength=len(catchments))
    has = total > 0
    out[has] = score[has] / total[has]
    return out


def _reason(factor: str, value: object, points: float | None, zh: str, en: str) -> dict:
    return {"factor": factor, "value": value,
            "points": None if points is None else round(points, 2),
            "max_points": MAX_POINTS[factor], "text_zh": zh, "text_en": en}


def _incident_reason(count: int, weighted: float, days: float, outside: float,
                     full: float) -> dict:
    yearly = weighted * 365.0 / days
    points = MAX_POINTS["incidents"] * min(1.0, yearly / full)
    zh = f"近{days:g}天警情{count}起（严重度加权{weighted:g}，折合每年{yearly:.1f}）"
    en = (f"{count} incidents in the last {days:g} days (severity-weighted {weighted:g}, "
          f"{yearly:.1f} a year)")
    if outside > 0.005:
        zh += f"；场所约{outside:.0%}在辖区外，该部分警情未计"
        en += f"; about {outside:.0%} of the place lies outside the jurisdiction, not counted"
    return _reason("incidents", {"count": count, "weighted": weighted,
                                 "per_year": round(yearly, 3)}, points, zh, en)


def _terrain_reason(rrs: float, why_not: tuple[str, str] | None) -> dict:
    if why_not is not None or not math.isfinite(rrs):
        zh, en = why_not or ("风险地形的网格单元均不覆盖该场所",
                             "no cell of the risk terrain covers the place")
        return _reason("terrain", None, None, f"风险地形未计入：{zh}",
                       f"Risk terrain left out: {en}")
    points = MAX_POINTS["terrain"] * min(1.0, max(0.0, math.log(rrs)) / math.log(RRS_FULL))
    return _reason("terrain", round(rrs, 4), points, f"周边风险地形相对风险{rrs:.2f}（1为最低）",
                   f"Risk terrain around it: relative risk score {rrs:.2f} (1 is the lowest)")


def _coverage_reason(uncovered: float) -> dict:
    if not math.isfinite(uncovered):
        return _reason("coverage", None, None, "视频覆盖未计入：场所面积为0，无法计算覆盖率",
                       "CCTV coverage left out: the place has no area to cover")
    points = MAX_POINTS["coverage"] * min(1.0, max(0.0, uncovered))
    return _reason("coverage", round(uncovered, 4), points,
                   f"视频监控未覆盖{uncovered:.0%}", f"{uncovered:.0%} not watched by cameras")


def _category_reason(category: str | None, label: str | None) -> dict:
    if category is None:
        return _reason("category", None, GRID_POINTS, "网格：中性基础分",
                       "Grid: neutral base")
    points = CATEGORY_POINTS.get(category, DEFAULT_CATEGORY_POINTS)
    return _reason("category", category, points, f"场所类别：{label or category}",
                   f"Category: {category}")


def grade_places(categories: list[str | None], count: np.ndarray, weighted: np.ndarray,
                 days: float, rrs: np.ndarray | None, uncovered: np.ndarray,
                 outside: np.ndarray | None = None,
                 terrain_missing: tuple[str, str] | None = None,
                 labels: dict[str, str] | None = None) -> list[Grade]:
    """Score and grade each place from its parts (see the module's description).

    Parameters
    ----------
    categories : key-area category per place, None for a grid.
    count, weighted : incidents in each catchment and the sum of their severities
        (:func:`incident_load`).
    days : length of the period in days (positive).
    rrs : mean relative risk score per place (:func:`terrain_mean`; NaN: no cell), or
        None when no terrain could be fitted.
    uncovered : share (0-1) of each place no camera watches; NaN where unmeasurable.
    outside : share (0-1) of each catchment outside the jurisdiction (said in reasons).
    terrain_missing : why there is no terrain (Chinese, English), when ``rrs`` is None.
    labels : Chinese names of the categories, for the reasons.

    Returns
    -------
    One :class:`Grade` per place, in order.
    """
    if not (math.isfinite(days) and days > 0):
        raise ValueError(f"days must be positive, got {days!r}")
    n = len(categories)
    out = []
    for i in range(n):
        reasons = [
            _incident_reason(int(count[i]), float(weighted[i]), days,
                             0.0 if outside is None else float(outside[i]),
                             GRID_INCIDENTS_FULL if categories[i] is None else INCIDENTS_FULL),
            _terrain_reason(math.nan if rrs is None else float(rrs[i]),
                            terrain_missing if rrs is None else None),
            _coverage_reason(float(uncovered[i])),
            _category_reason(categories[i], (labels or {}).get(categories[i] or "")),
        ]
        present = [r for r in reasons if r["points"] is not None]
        score = round(100.0 * sum(r["points"] for r in present)
                      / sum(r["max_points"] for r in present), 1)
        out.append(Grade(score, level_of(score), reasons))
    return out
