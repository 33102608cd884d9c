"""Risk grading of a jurisdiction's key areas and grids (风险分级), saved as a run.

The places and their camera coverage come from :func:`layers.coverage.covered_targets`
(key areas within the jurisdiction, grids coded to it or below; online cameras), the
incidents of the period from :func:`layers.incidents.read_incidents` (inside the
jurisdiction only), the risk terrain from :mod:`layers.rtm`; :mod:`geo.riskgrade`
scores and grades them.

The terrain: the latest saved ``terrain`` run of the jurisdiction fitted on all its
incidents (no category, hours or weekdays) whose period ends within the one graded is
reused; otherwise one is fitted on the period with the defaults of ``/api/risk/terrain``
(and saved as its own ``terrain`` run). When none can be fitted (too few incidents, too
many cells) the terrain part is left out of every score and its reason says why. The
answer's ``parameters.terrain`` names the run used.

Who may grade: every role that may analyse the jurisdiction (as hot spots and coverage
gaps; border partners never). Planners and viewers, who see aggregates, get no incident
count below :data:`layers.hotspots.MIN_SHOWN` in the reasons ("fewer than 3"); the run is
saved in that form whoever asked, so a reopened run shows no small count either.
Geometries are lon/lat (EPSG:4326).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
import shapely
from sqlalchemy import Connection, text

from geo.crs import Projection
from geo.riskgrade import (
    CATEGORY_POINTS,
    GRID_INCIDENTS_FULL,
    GRID_POINTS,
    INCIDENTS_FULL,
    KEY_AREA_REACH,
    LEVELS,
    MAX_POINTS,
    RRS_FULL,
    Grade,
    catchments,
    grade_places,
    incident_load,
    terrain_mean,
)

from .coverage import CoveredTargets, covered_targets
from .errors import BadRequest
from .hotspots import AGGREGATE_ONLY, MIN_SHOWN, HotspotQuery
from .incidents import read_incidents
from .registry import LAYERS
from .rtm import TerrainQuery, run_terrain
from .runs import save_run
from .users import User

__all__ = ["MAX_DAYS", "RiskPlacesQuery", "levels_table", "run_risk_places",
           "withhold_small_counts"]

MAX_DAYS = 3660


@dataclass(frozen=True)
class RiskPlacesQuery:
    """Which jurisdiction to grade, on the incidents of [``start``, ``end``)."""

    jurisdiction: str
    start: dt.datetime
    end: dt.datetime

    def check(self) -> None:
        """BadRequest naming the first unusable parameter."""
        if self.start >= self.end:
            raise BadRequest(f"from ({self.start.isoformat()}) must be before to "
                             f"({self.end.isoformat()})")
        if self.end - self.start > dt.timedelta(days=MAX_DAYS):
            raise BadRequest(f"from ({self.start.isoformat()}) to ({self.end.isoformat()}) "
                             f"spans more than {MAX_DAYS} days")

    @property
    def days(self) -> float:
        """The period's length in days."""
        return (self.end - self.start).total_seconds() / 86400


def levels_table() -> list[dict]:
    """The four levels with their names and score ranges, as the answer lists them."""
    return [{"level": lv.level, "name_zh": lv.name_zh, "name_en": lv.name_en,
             "from_score": lv.from_score, "to_score": lv.to_score} for lv in LEVELS]


@dataclass
class _Terrain:
    cells: np.ndarray  # metric polygons
    rrs: np.ndarray
    said: dict  # what parameters.terrain says
    missing: tuple[str, str] | None = None  # why there is none (zh, en)


_SAVED_TERRAIN = (
    "SELECT id, parameters->>'from' AS start, parameters->>'to' AS end FROM hotspot_runs "
    "WHERE kind = 'terrain' AND jurisdiction_code = :c AND parameters->>'category' IS NULL "
    "AND parameters->>'hours' IS NULL AND parameters->>'weekdays' IS NULL "
    "AND (parameters->>'to')::timestamptz > :s AND (parameters->>'to')::timestamptz <= :e "
    "ORDER BY id DESC LIMIT 1")


def _terrain(conn: Connection, user: User, query: RiskPlacesQuery,
             projection: Projection) -> _Terrain:
    """The cells and rrs of a saved terrain run (or one fitted now), or why there is none."""
    saved = conn.execute(text(_SAVED_TERRAIN), {"c": query.jurisdiction, "s": query.start,
                                                "e": query.end}).mappings().first()
    if saved is not None:
        features = conn.execute(text("SELECT result->'features' FROM hotspot_runs "
                                     "WHERE id = :i"), {"i": saved["id"]}).scalar_one()
        said = {"source": "saved", "run": saved["id"], "from": saved["start"],
                "to": saved["end"]}
    else:
        area = HotspotQuery(query.jurisdiction, query.start, query.end)
        try:
            body = run_terrain(conn, user, TerrainQuery(area))
        except (BadRequest, ValueError) as exc:  # ValueError: a degenerate point pattern
            reason = str(exc).splitlines()[0]
            return _Terrain(np.empty(0, dtype=object), np.empty(0),
                            {"source": None, "run": None, "reason": reason},
                            ("本期无法拟合风险地形（" + reason + "）",
                             f"no risk terrain could be fitted on the period ({reason})"))
        features = body["features"]
        said = {"source": "fitted", "run": body["run_id"], "from": query.start.isoformat(),
                "to": query.end.isoformat()}
    geoms = shapely.from_geojson([json.dumps(f["geometry"]) for f in features]) \
        if features else np.empty(0, dtype=object)
    rrs = np.array([f["properties"]["rrs"] for f in features], dtype=float)
    return _Terrain(np.asarray(projection.project(np.asarray(geoms, dtype=object)),
                               dtype=object), rrs, said)


def _grade(targets: CoveredTargets, kind: str, xy: np.ndarray, severity: np.ndarray,
           terrain: _Terrain, days: float) -> list[Grade]:
    """The grades of one kind of place (``key_areas`` or ``grids``)."""
    area = targets.scene.area
    reach = KEY_AREA_REACH if kind == "key_areas" else 0.0
    grown = catchments(targets.geoms, reach)  # as stored: a point's reach is from the point
    zones = catchments(targets.geoms, reach, area)
    count, weighted = incident_load(zones, xy, severity)
    whole = shapely.area(grown)
    outside = np.where(whole > 0, 1 - shapely.area(zones) / np.where(whole > 0, whole, 1),
                       0.0)
    rrs = None if terrain.missing else terrain_mean(zones, terrain.cells, terrain.rrs)
    categories = [p.get("category") if kind == "key_areas" else None for p in targets.props]
    return grade_places(categories, count, weighted, days, rrs, 1 - targets.covered_ratio,
                        outside, terrain.missing, _category_words())


def _category_words() -> dict[str, str]:
    """The first Chinese word of each key-area category (school: 学校), from the registry."""
    field = next(f for f in LAYERS["key_areas"].fields if f.name == "category")
    out: dict[str, str] = {}
    for word, choice in field.words:
        out.setdefault(choice, word)
    return out


def _features(targets: CoveredTargets, kind: str, grades: list[Grade]) -> dict:
    """A FeatureCollection (lon/lat) of the places with risk_level, score and reasons."""
    empty = np.empty(0, dtype=object)
    shapes = targets.scene.to_lonlat(targets.geoms) if len(targets.geoms) else empty
    points = targets.scene.to_lonlat(shapely.point_on_surface(targets.geoms)) \
        if len(targets.geoms) else empty
    names = {lv.level: lv for lv in LEVELS}
    out = []
    for props, shape, at, grade in zip(targets.props, shapes, points, grades, strict=True):
        p = {"id": props["id"], "name": props.get("name")}
        if kind == "key_areas":
            p["category"] = props.get("category")
        else:
            p.update(code=props.get("code"), kind=props.get("kind"))
        p.update(risk_level=grade.level, level_zh=names[grade.level].name_zh,
                 level_en=names[grade.level].name_en, score=grade.score,
                 reasons=grade.reasons, lon=round(at.x, 7), lat=round(at.y, 7))
        out.append({"type": "Feature", "id": props["id"],
                    "geometry": json.loads(shapely.to_geojson(shape)), "properties": p})
    return {"type": "FeatureCollection", "features": out}


def withhold_small_counts(body: dict) -> dict:
    """A copy of an answer whose incident reasons name no count below MIN_SHOWN."""
    out = copy.deepcopy(body)
    for kind in ("key_areas", "grids"):
        for feature in out[kind]["features"]:
            for reason in feature["properties"]["reasons"]:
                value = reason["value"]
                if reason["factor"] != "incidents" or not 0 < value["count"] < MIN_SHOWN:
                    continue
                reason["value"] = {"count": None, "weighted": None, "per_year": None}
                reason["text_zh"] = f"警情少于{MIN_SHOWN}起（具体数字仅对公安显示）"
                reason["text_en"] = (f"fewer than {MIN_SHOWN} incidents (the figure is "
                                     "shown to police only)")
    return out


def _parameters(query: RiskPlacesQuery, crs: str, terrain: _Terrain) -> dict:
    return {"jurisdiction": query.jurisdiction, "from": query.start.isoformat(),
            "to": query.end.isoformat(), "days": round(query.days, 4), "metric_crs": crs,
            "terrain": terrain.said,
            "formula": {"max_points": MAX_POINTS, "incidents_full_per_year": {
                            "key_areas": INCIDENTS_FULL, "grids": GRID_INCIDENTS_FULL},
                        "rrs_full": RRS_FULL, "key_area_reach_m": KEY_AREA_REACH,
                        "grid_points": GRID_POINTS, "category_points": CATEGORY_POINTS,
                        "score": "100 x points of the parts present / their maximum, "
                                 "rounded to 0.1; a score on a cut point takes the "
                                 "higher level",
                        "coverage": "online cameras; a key area given as a point is a "
                                    "disc of 25 m"}}


def run_risk_places(conn: Connection, user: User, query: RiskPlacesQuery) -> dict:
    """Grade every key area and grid of the jurisdiction; saved as a ``risk_places`` run.

    ``{"jurisdiction", "run_id", "levels", "key_areas", "grids", "parameters",
    "summary"}``. Raises BadRequest for an unusable query, UnknownJurisdiction and
    Forbidden (:func:`layers.access.jurisdiction_to_analyse`) before anything is saved.
    """
    query.check()
    key_areas = covered_targets(conn, user, query.jurisdiction, "key_areas")
    grids = covered_targets(conn, user, query.jurisdiction, "grids")
    scene = key_areas.scene
    incidents = read_incidents(conn, scene.crs, jurisdiction=query.jurisdiction,
                               start=query.start, end=query.end)
    terrain = _terrain(conn, user, query, scene.projection)
    body: dict = {"jurisdiction": query.jurisdiction, "run_id": None,
                  "levels": levels_table()}
    summary: dict = {"incidents": len(incidents), "terrain": terrain.said["source"]}
    for kind, targets in (("key_areas", key_areas), ("grids", grids)):
        grades = _grade(targets, kind, incidents.xy, incidents.severity, terrain,
                        query.days)
        body[kind] = _features(targets, kind, grades)
        summary[kind] = {str(lv.level): sum(g.level == lv.level for g in grades)
                         for lv in LEVELS}
    body["parameters"] = _parameters(query, scene.crs, terrain)
    body["summary"] = summary
    safe = withhold_small_counts(body)
    run = save_run(conn, "hotspot_runs", user, "risk_places", query.jurisdiction,
                   body["parameters"], summary, safe)
    answer = safe if user.role in AGGREGATE_ONLY else body
    answer["run_id"] = run
    return answer
