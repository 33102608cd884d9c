"""Hot-spot runs over stored incidents: Gi*, KDE and counts, emerging hot spots, evaluation.

Incidents of a jurisdiction and period are read as the database owner (aggregates are
for every role; raw points stay behind row-level security), projected to the
jurisdiction's UTM zone, analysed by :mod:`geo.hotspots` / :mod:`geo.emerging`, and the
cells returned in lon/lat. Planners and viewers do not get cells holding fewer than
:data:`MIN_SHOWN` incidents. Every run is stored in ``hotspot_runs``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import math
from dataclasses import asdict, dataclass

import numpy as np
import shapely
from sqlalchemy import Connection, Engine

from geo.crs import Projection
from geo.emerging import emerging_hotspots
from geo.hotspots import (
    Lattice,
    benjamini_hochberg,
    classify,
    count_points,
    count_points_by,
    default_bandwidth,
    evaluate,
    gi_star,
    hex_cells,
    kde,
    optimal_cell_size,
    square_cells,
    two_sided_p,
)

from .access import Forbidden, jurisdiction_to_analyse
from .errors import BadRequest
from .incidents import Incidents, check_time_filter, read_incidents
from .registry import INCIDENT_CATEGORIES
from .runs import load_run, runs_of, save_run
from .users import User

__all__ = ["BadHotspotRequest", "HotspotData", "HotspotQuery", "MIN_SHOWN", "get_run",
           "hotspot_lattice", "list_runs", "load_hotspot_data", "run_batch", "run_emerging",
           "run_evaluation", "run_hotspots"]

MIN_SHOWN = 3  # planners and viewers see no cell with fewer incidents than this
AGGREGATE_ONLY = ("planner", "viewer")
METHODS = ("gi", "kde", "count")
MAX_CELLS = 5_000_000
MAX_STEPS = 600  # time steps of a period (50 years of months, 11 of weeks)
MAX_CUBE = 20_000_000  # cells x time steps counted at once


class BadHotspotRequest(BadRequest):
    """Parameters a hot-spot run cannot use (HTTP 400)."""

    http_status = 400


@dataclass(frozen=True)
class HotspotQuery:
    """What to analyse: where, when, which incidents, on which cells."""

    jurisdiction: str
    start: dt.datetime
    end: dt.datetime
    category: str | None = None
    cell: float | None = None  # metres; None: chosen from the data
    shape: str = "square"
    neighbours: str | float = "queen"
    hours: str | None = None  # e.g. "22-6": local hours of the day kept (geo.clock)
    weekdays: str | None = None  # e.g. "1-5": ISO weekdays kept, local time

    def check(self) -> None:
        """BadHotspotRequest naming the first unusable parameter."""
        if self.start >= self.end:
            raise BadHotspotRequest(f"from ({self.start.isoformat()}) must be before to "
                                    f"({self.end.isoformat()})")
        if self.category is not None and self.category not in INCIDENT_CATEGORIES:
            raise BadHotspotRequest(f"unknown category {self.category!r}; categories are "
                                    f"{', '.join(INCIDENT_CATEGORIES)}")
        if self.cell is not None and not (math.isfinite(self.cell) and self.cell > 1):
            raise BadHotspotRequest(f"cell must be more than 1 metre, got {self.cell!r}")
        if self.shape not in ("square", "hex"):
            raise BadHotspotRequest(f"shape must be square or hex, got {self.shape!r}")
        check_time_filter(self.hours, self.weekdays)
        months = _months_between(self.start, self.end)
        if months > MAX_STEPS:
            raise BadHotspotRequest(
                f"the period from {self.start.date()} to "
                f"{(self.end - dt.timedelta(microseconds=1)).date()} spans {months} "
                f"months; a hot-spot period may span at most {MAX_STEPS} (give a later from)")


def _months_between(start: dt.datetime, end: dt.datetime) -> int:
    """Calendar months the period [start, end) touches."""
    end = end.astimezone(start.tzinfo) - dt.timedelta(microseconds=1)
    return (end.year - start.year) * 12 + end.month - start.month + 1


def _check_cube(cells: int, steps: int) -> None:
    """BadHotspotRequest when cells x steps is more than can be counted at once."""
    if cells * steps > MAX_CUBE:
        raise BadHotspotRequest(
            f"{cells:,} cells over {steps} time steps make {cells * steps:,} counts, more "
            f"than {MAX_CUBE:,}: choose larger cells, longer steps or a shorter period")


@dataclass(frozen=True)
class HotspotData:
    """A jurisdiction and its incidents of a period, in the metric CRS of its centre.

    ``area``: the jurisdiction's polygon in metres; ``incidents``: what
    :func:`layers.incidents.read_incidents` read (``xy`` in metres, same CRS);
    ``projection``: lon/lat (EPSG:4326) to that CRS and back.
    """

    area: shapely.Geometry
    incidents: Incidents
    projection: Projection

    @property
    def xy(self) -> np.ndarray:
        """(n, 2) incident coordinates, metres in :attr:`crs`."""
        return self.incidents.xy

    @property
    def when(self) -> np.ndarray:
        """Incident times, UTC ``datetime64[s]``."""
        return self.incidents.when

    @property
    def category(self) -> np.ndarray:
        """Incident categories."""
        return self.incidents.category

    @property
    def severity(self) -> np.ndarray:
        """Incident severities (1-5)."""
        return self.incidents.severity

    @property
    def crs(self) -> str:
        """The metric CRS of ``area`` and ``xy`` (e.g. ``EPSG:32650``)."""
        return self.incidents.crs


def _metric_area(conn: Connection, user: User, code: str
                 ) -> tuple[shapely.Geometry, Projection]:
    """The jurisdiction ``code`` (scope checked) in the metric CRS of its centre."""
    area_ll, crs = jurisdiction_to_analyse(conn, user, code)
    projection = Projection(crs)
    return projection.project(area_ll), projection


def load_hotspot_data(conn: Connection, user: User, query: HotspotQuery) -> HotspotData:
    """The jurisdiction and incidents ``query`` asks for, after checking it and the user.

    Raises BadHotspotRequest for an unusable query, UnknownJurisdiction and Forbidden
    (:func:`layers.access.jurisdiction_to_analyse`). Coordinates in metres, in the UTM
    zone of the jurisdiction's centre.
    """
    query.check()
    area, projection = _metric_area(conn, user, query.jurisdiction)
    incidents = read_incidents(conn, projection.crs, jurisdiction=query.jurisdiction,
                               start=query.start, end=query.end, category=query.category,
                               hours=query.hours, weekdays=query.weekdays)
    return HotspotData(area, incidents, projection)


def hotspot_lattice(data: HotspotData, query: HotspotQuery) -> tuple[Lattice, float, bool]:
    """The cells of ``query`` over ``data.area``: (lattice, cell size in metres, chosen).

    The size is ``query.cell`` or, when that is None (``chosen`` True), chosen from the
    incidents (:func:`geo.hotspots.optimal_cell_size`; BadHotspotRequest with fewer
    than three). Cells overlapping the jurisdiction are clipped to it.
    """
    chosen = query.cell is None
    if chosen:
        if len(data.xy) < 3:
            raise BadHotspotRequest("too few incidents in the period to choose a cell size; "
                                    "give cell=METRES")
        size = optimal_cell_size(data.xy, data.area)
    else:
        size = float(query.cell)
    return _cells(data.area, size, query.shape), size, chosen


def _cells(area: shapely.Geometry, size: float, shape: str) -> Lattice:
    """Every cell that overlaps the jurisdiction, clipped to it: no incident is left out."""
    make = square_cells if shape == "square" else hex_cells
    try:
        return make(area, size, max_cells=MAX_CELLS, cover=True)
    except ValueError as exc:
        raise BadHotspotRequest(str(exc)) from None


def _features(lattice: Lattice, projection: Projection, columns: dict[str, np.ndarray],
              keep: np.ndarray) -> list[dict]:
    geoms = projection.unproject(lattice.cells.geometry.values[keep])
    geoms = shapely.set_precision(geoms, 1e-7)
    shapes = json.loads(shapely.to_geojson(shapely.GeometryCollection(list(geoms))))
    rows = lattice.cells["row"].to_numpy()[keep]
    cols = lattice.cells["col"].to_numpy()[keep]
    picked = {k: np.asarray(v)[keep] for k, v in columns.items()}
    out = []
    for i, geometry in enumerate(shapes["geometries"]):
        props = {"row": int(rows[i]), "col": int(cols[i])}
        for k, v in picked.items():
            value = v[i]
            props[k] = value if isinstance(value, str) else (
                int(value) if k == "count" else round(float(value), 6))
        out.append({"type": "Feature", "geometry": geometry, "properties": props})
    return out


def _shown(user: User, counts: np.ndarray) -> np.ndarray:
    return counts >= MIN_SHOWN if user.role in AGGREGATE_ONLY else np.ones(len(counts), bool)


def _save(conn: Connection, user: User, kind: str, query: HotspotQuery, parameters: dict,
          summary: dict, body: dict) -> int:
    return save_run(conn, "hotspot_runs", user, kind, query.jurisdiction, parameters,
                    summary, body)


def _parameters(query: HotspotQuery, size: float, chosen: bool, crs: str, **extra) -> dict:
    out = {k: v for k, v in asdict(query).items() if k not in ("start", "end")}
    out.update({"from": query.start.isoformat(), "to": query.end.isoformat(), "cell": size,
                "cell_chosen": chosen, "metric_crs": crs, **extra})
    return out


def run_hotspots(conn: Connection, user: User, query: HotspotQuery, method: str = "gi",
                 fdr: bool = True, bandwidth: float | None = None) -> dict:
    """A FeatureCollection of cells with the method's scores, plus the parameters used."""
    if method not in METHODS:
        raise BadHotspotRequest(f"unknown method {method!r}; methods are {', '.join(METHODS)}")
    data = load_hotspot_data(conn, user, query)
    lattice, size, chosen = hotspot_lattice(data, query)
    counts = count_points(lattice, data.xy)
    columns: dict[str, np.ndarray] = {"count": counts}
    extra: dict = {"method": method, "incidents": int(len(data.xy)),
                   "incidents_in_cells": int(counts.sum())}
    if method == "gi":
        z = gi_star(lattice, counts, query.neighbours)
        p = two_sided_p(z)
        p_fdr = benjamini_hochberg(p)
        columns.update({"z": z, "p": p, "p_fdr": p_fdr,
                        "class": classify(z, p_fdr if fdr else p)})
        extra["fdr"] = fdr
    elif method == "kde":
        if len(data.xy) < 2 and bandwidth is None:
            raise BadHotspotRequest("too few incidents for a density; give bandwidth=METRES")
        h = bandwidth or default_bandwidth(data.xy)
        columns["density"] = kde(lattice, data.xy, h) * 1e6  # per km²
        extra.update({"bandwidth": h, "bandwidth_chosen": bandwidth is None,
                      "density_unit": "incidents per km²"})
    keep = _shown(user, counts)
    if method != "gi":
        keep &= counts > 0 if method == "count" else columns["density"] > 0
    parameters = _parameters(query, size, chosen, data.crs, **extra)
    summary = {"cells": int(len(counts)), "shown": int(keep.sum())}
    if method == "gi":
        summary["classes"] = _tally(columns["class"][keep])
    features = _features(lattice, data.projection, columns, keep)
    _add_categories(features, lattice, data, keep)
    months = _add_monthly(features, lattice, data, query, keep)
    body = {"type": "FeatureCollection", "parameters": parameters, "summary": summary,
            "months": months, "features": features}
    body["run"] = _save(conn, user, method, query, parameters, summary, body)
    return body


def _add_monthly(features: list[dict], lattice: Lattice, data: HotspotData,
                 query: HotspotQuery, keep: np.ndarray) -> list[str]:
    """Each shown cell's incidents per calendar month (``monthly``); the months' starts.

    The first and last month may be partial: they hold the period's part of them.
    """
    edges = _calendar_months(query.start, query.end)
    _check_cube(len(lattice.cells), len(edges) - 1)
    at = np.searchsorted(edges, data.when, side="right") - 1
    per = count_points_by(lattice, data.xy, at, len(edges) - 1)[:, keep]
    for i, feature in enumerate(features):
        feature["properties"]["monthly"] = per[:, i].tolist()
    return [_local(e, query.start)[:7] for e in edges[:-1]]


def _add_categories(features: list[dict], lattice: Lattice, data: HotspotData,
                    keep: np.ndarray) -> None:
    """Each shown cell's incidents by category (``by_category``, only the non-zero)."""
    index = {c: k for k, c in enumerate(INCIDENT_CATEGORIES)}
    group = np.array([index.get(c, -1) for c in data.category], dtype=np.int64)
    per = count_points_by(lattice, data.xy, group, len(INCIDENT_CATEGORIES))[:, keep]
    for i, feature in enumerate(features):
        feature["properties"]["by_category"] = {c: int(per[k, i]) for c, k in index.items()
                                                if per[k, i]}


def _utc(edges: list[dt.datetime]) -> np.ndarray:
    return np.array([np.datetime64(e.astimezone(dt.UTC).replace(tzinfo=None), "us")
                     for e in edges])


def _calendar_months(start: dt.datetime, end: dt.datetime) -> np.ndarray:
    """Edges (UTC) of the calendar months (in the start's time zone) from start to end."""
    edges = [start]
    while True:
        last = edges[-1]
        year, month = (last.year + 1, 1) if last.month == 12 else (last.year, last.month + 1)
        nxt = last.replace(year=year, month=month, day=1, hour=0, minute=0, second=0,
                           microsecond=0)
        if nxt >= end:
            break
        edges.append(nxt)
    return _utc([*edges, end])


def _month_back(end: dt.datetime, k: int) -> dt.datetime:
    """``end`` moved back ``k`` calendar months (the day clamped to the month's length)."""
    index = end.year * 12 + end.month - 1 - k
    year, month = divmod(index, 12)
    return end.replace(year=year, month=month + 1,
                       day=min(end.day, calendar.monthrange(year, month + 1)[1]))


def _steps(start: dt.datetime, end: dt.datetime, step: str) -> tuple[np.ndarray, bool]:
    """Edges (UTC) of the time steps from ``start`` to ``end``, aligned to the end.

    Whole 7-day weeks, or whole months (a period ending at the start of a month has
    calendar months), counted back from ``end``; only the first step may be partial,
    as ArcGIS's default end-time alignment does. The last step, which emerging hot-spot
    categories hinge on, is always whole. Returns the edges and whether the first
    step is partial. At most :data:`MAX_STEPS` steps.
    """
    if step not in ("week", "month"):
        raise BadHotspotRequest(f"step must be week or month, got {step!r}")
    # a cheap bound first (months of at most 31 days), so no huge list is built
    span = (end - start) / dt.timedelta(days=7 if step == "week" else 31)
    local_end = end.astimezone(start.tzinfo)
    edges = [local_end]
    while span <= MAX_STEPS + 1 and edges[-1] > start:
        k = len(edges)
        edges.append(local_end - dt.timedelta(days=7 * k) if step == "week"
                     else _month_back(local_end, k))
    if span > MAX_STEPS + 1 or len(edges) - 1 > MAX_STEPS:
        raise BadHotspotRequest(f"the period holds more than {MAX_STEPS} {step}s; at most "
                                f"{MAX_STEPS} time steps are counted (give a later from or "
                                "a longer step)")
    partial = edges[-1] < start
    edges[-1] = start
    return _utc(edges[::-1]), partial


def _step_edges(edges: np.ndarray, like: dt.datetime) -> list[dict]:
    """Each step as ``{"from", "to"}`` (ISO, in the time zone of ``like``)."""
    return [{"from": _local(a, like), "to": _local(b, like)}
            for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _local(edge: np.datetime64, like: dt.datetime) -> str:
    """A UTC step edge as an ISO date-time in the time zone of ``like``."""
    moment = dt.datetime.fromisoformat(str(edge.astype("datetime64[us]"))).replace(
        tzinfo=dt.UTC)
    return moment.astimezone(like.tzinfo).isoformat()


def run_emerging(conn: Connection, user: User, query: HotspotQuery, step: str = "month",
                 time_window: int = 1) -> dict:
    """Cells with their emerging hot-spot category over the period in weekly/monthly steps."""
    query.check()
    edges, partial = _steps(query.start, query.end, step)
    if len(edges) < 3:
        raise BadHotspotRequest("the period holds fewer than two time steps")
    data = load_hotspot_data(conn, user, query)
    lattice, size, chosen = hotspot_lattice(data, query)
    _check_cube(len(lattice.cells), len(edges) - 1)
    at = np.searchsorted(edges, data.when, side="right") - 1
    cube = count_points_by(lattice, data.xy, at, len(edges) - 1)
    result = emerging_hotspots(lattice, cube.astype(float), query.neighbours, time_window)
    counts = cube.sum(axis=0)
    keep = _shown(user, counts) & ((counts > 0) | (result["category"] != "no_pattern"))
    parameters = _parameters(query, size, chosen, data.crs, step=step, steps=len(edges) - 1,
                             first_step_partial=partial, time_window=time_window,
                             incidents=int(len(data.xy)),
                             incidents_in_cells=int(counts.sum()))
    summary = {"cells": int(len(counts)), "shown": int(keep.sum()),
               "categories": _tally(result["category"][keep])}
    columns = {"count": counts, "category": result["category"],
               "trend_z": result["trend_z"], "trend_p": result["trend_p"]}
    features = _features(lattice, data.projection, columns, keep)
    series = cube.T[keep]
    for feature, counts_t in zip(features, series, strict=True):
        feature["properties"]["counts"] = [int(c) for c in counts_t]
    body = {"type": "FeatureCollection", "parameters": parameters, "summary": summary,
            "steps": [_local(e, query.start) for e in edges[:-1]],
            "step_edges": _step_edges(edges, query.start), "features": features}
    body["run"] = _save(conn, user, "emerging", query, parameters, summary, body)
    return body


def run_batch(engine: Engine, user: User, query: HotspotQuery, client=None,
              step: str = "month", time_window: int = 1) -> dict:
    """Gi* and emerging hot spots of a period counted on Dask, saved as a ``gi`` run.

    For incident sets too large for one process: the workers of ``client`` (a
    ``distributed.Client``; None: the local Dask scheduler) each read one time step from
    ``engine``'s database (:func:`layers.scaleout.incidents_by_step`, its URL travels
    with the tasks) and count it into the lattice; Gi* then runs on the period's counts
    and the emerging categories on the (steps, cells) cube. The cells are those of
    :func:`run_hotspots` and :func:`run_emerging` (``cell`` in metres is required:
    choosing it needs every point) and the results equal theirs. The workers read as
    the database's owner, outside row-level security: administrators only. No
    transaction stays open while the workers count.
    """
    from geo.scaleout import cube_dask  # Dask only for batch runs: the web app never loads it

    from .scaleout import incidents_by_step

    if user.role != "admin":
        raise Forbidden("batch runs read every incident of the jurisdiction: "
                        "administrators only")
    query.check()
    if query.hours is not None or query.weekdays is not None:
        raise BadHotspotRequest("batch runs count whole days: hours and weekdays are not "
                                "offered for them")
    if query.cell is None:
        raise BadHotspotRequest("a batch run needs cell=METRES (choosing it needs every "
                                "incident in one process)")
    edges, partial = _steps(query.start, query.end, step)
    if len(edges) < 3:
        raise BadHotspotRequest("the period holds fewer than two time steps")
    with engine.connect() as conn:
        area, projection = _metric_area(conn, user, query.jurisdiction)
    crs = projection.crs
    lattice = _cells(area, float(query.cell), query.shape)
    _check_cube(len(lattice.cells), len(edges) - 1)
    points = incidents_by_step(engine.url.render_as_string(hide_password=False),
                               query.jurisdiction, edges, crs.to_string(), query.category)
    cube = cube_dask(lattice, points, edges, client)
    counts = cube.sum(axis=0)
    z = gi_star(lattice, counts, query.neighbours)
    p = two_sided_p(z)
    p_fdr = benjamini_hochberg(p)
    emerging = emerging_hotspots(lattice, cube.astype(float), query.neighbours, time_window)
    columns = {"count": counts, "z": z, "p": p, "p_fdr": p_fdr, "class": classify(z, p_fdr),
               "category": emerging["category"], "trend_z": emerging["trend_z"]}
    keep = _shown(user, counts)
    features = _features(lattice, projection, columns, keep)
    for feature, counts_t in zip(features, cube.T[keep], strict=True):
        feature["properties"]["counts"] = [int(c) for c in counts_t]
    parameters = _parameters(query, float(query.cell), False, crs.to_string(), method="gi",
                             fdr=True, step=step, steps=len(edges) - 1,
                             first_step_partial=partial, time_window=time_window,
                             incidents_in_cells=int(counts.sum()),
                             batch={"partitions": points.npartitions})
    summary = {"cells": int(len(counts)), "shown": int(keep.sum()),
               "classes": _tally(columns["class"][keep]),
               "categories": _tally(emerging["category"][keep])}
    body = {"type": "FeatureCollection", "parameters": parameters, "summary": summary,
            "steps": [_local(e, query.start) for e in edges[:-1]],
            "step_edges": _step_edges(edges, query.start), "features": features}
    with engine.begin() as conn:
        body["run"] = _save(conn, user, "gi", query, parameters, summary, body)
    return body


def _tally(values: np.ndarray) -> dict[str, int]:
    kinds, n = np.unique(values, return_counts=True)
    return {str(k): int(v) for k, v in zip(kinds, n, strict=True)}


def run_evaluation(conn: Connection, user: User, train: HotspotQuery, test: HotspotQuery,
                   method: str = "gi", share: float = 0.05) -> dict:
    """PAI, PEI and RRI of ``method`` trained on one period and tested on the next.

    The hot-spot map is the ``share`` of the area ranked highest by the method (Gi* z,
    density or count) on the training period.
    """
    if method not in METHODS:
        raise BadHotspotRequest(f"unknown method {method!r}; methods are {', '.join(METHODS)}")
    if not 0 < share < 1:
        raise BadHotspotRequest(f"share must be between 0 and 1, got {share!r}")
    if test.start < train.end:
        raise BadHotspotRequest(
            f"the test period ({test.start.isoformat()}) starts before training ends "
            f"({train.end.isoformat()}): a method is judged on incidents it has not seen")
    trained = load_hotspot_data(conn, user, train)
    lattice, size, chosen = hotspot_lattice(trained, train)
    tested = load_hotspot_data(conn, user, test)
    train_counts = count_points(lattice, trained.xy)
    test_counts = count_points(lattice, tested.xy)
    if test_counts.sum() == 0:
        raise BadHotspotRequest("the test period has no incidents")
    if method == "gi":
        score = gi_star(lattice, train_counts, train.neighbours)
    elif method == "kde":
        score = kde(lattice, trained.xy) if len(trained.xy) >= 2 else train_counts
    else:
        score = train_counts.astype(float)
    # the highest-ranked cells up to ``share`` of the area (cells on the boundary are
    # clipped, so their number is not the measure)
    areas = shapely.area(lattice.cells.geometry.values)
    ranked = np.argsort(-score, kind="stable")
    within = np.cumsum(areas[ranked]) <= share * areas.sum()
    chosen_cells = np.zeros(len(score), dtype=bool)
    chosen_cells[ranked[:max(1, int(within.sum()))]] = True
    result = evaluate(chosen_cells, test_counts, areas, train_counts)
    parameters = _parameters(train, size, chosen, trained.crs, method=method, share=share,
                             test_from=test.start.isoformat(), test_to=test.end.isoformat(),
                             incidents_in_cells=int(train_counts.sum()),
                             test_incidents_in_cells=int(test_counts.sum()))
    # RRI is undefined (NaN) when the training period has no incident in the map: null
    result = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
              for k, v in result.items()}
    body = {**{k: (round(v, 6) if isinstance(v, float) else v) for k, v in result.items()},
            "parameters": parameters}
    body["run"] = _save(conn, user, "evaluate", train, parameters, result, body)
    return body


def list_runs(conn: Connection, user: User, jurisdiction: str | None = None) -> list[dict]:
    """Saved runs the user may see (their own jurisdiction's), newest first."""
    return runs_of(conn, "hotspot_runs", user, jurisdiction)


def get_run(conn: Connection, user: User, run_id: int) -> dict:
    """A saved run's result as it was answered (cells hidden from aggregate roles stay so)."""
    result = load_run(conn, "hotspot_runs", user, run_id)
    if user.role in AGGREGATE_ONLY and result.get("kind") == "near_repeat":
        # risk zones are circles around incident points: not for aggregate roles
        result.update(features=[], zones_withheld=True)
    elif user.role in AGGREGATE_ONLY and "features" in result:
        result["features"] = [f for f in result["features"]
                              if f["properties"].get("count", MIN_SHOWN) >= MIN_SHOWN]
    return result
