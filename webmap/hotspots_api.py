"""Hot-spot endpoints.

``/api/hotspots`` (gi, kde, count), ``/api/hotspots/emerging``, ``/api/hotspots/evaluate``,
``/api/hotspots/near-repeat``, ``/api/hotspots/clock`` and the saved runs
(``/api/hotspots/runs``, ``/api/hotspots/runs/{id}``). Every one takes ``hours`` and
``weekdays`` (local time) to analyse only the incidents at those times.
"""

from __future__ import annotations

import datetime as dt
import json

from flask import Blueprint, Response, current_app, request

from layers.clock import run_clock
from layers.hotspots import (
    HotspotQuery,
    get_run,
    list_runs,
    run_emerging,
    run_evaluation,
    run_hotspots,
)
from layers.nearrepeat import NearRepeatQuery, run_near_repeat
from layers.safety import safety_index
from layers.validate import instant, period_end

from .auth import current_user
from .db import db_engine
from .params import BadRequest, flag_arg, number_arg, numbers_arg, only_params, whole_arg

bp = Blueprint("hotspots_api", __name__)

_TIMES = {"hours", "weekdays"}
_COMMON = {"jurisdiction", "cell", "category", "shape", "neighbours"} | _TIMES
_PLAIN = {"jurisdiction", "from", "to", "category"} | _TIMES  # analyses without cells
DEFAULT_DAYS = 365


def _neighbours() -> str | float:
    raw = request.args.get("neighbours", "queen")
    if raw == "queen":
        return raw
    value = number_arg("neighbours")
    if value is None or value <= 0:
        raise BadRequest(f"neighbours must be 'queen' or a distance in metres, got {raw!r}")
    return value


def _period(start_name: str, end_name: str) -> tuple[dt.datetime, dt.datetime]:
    end_raw, start_raw = request.args.get(end_name), request.args.get(start_name)
    end = period_end(end_raw) if end_raw else dt.datetime.now(dt.UTC)
    start = instant(start_raw, False) if start_raw else end - dt.timedelta(days=DEFAULT_DAYS)
    return start, end


def _query(start_name: str = "from", end_name: str = "to") -> HotspotQuery:
    code = request.args.get("jurisdiction")
    if not code:
        raise BadRequest("jurisdiction is required (?jurisdiction=CODE)")
    start, end = _period(start_name, end_name)
    return HotspotQuery(jurisdiction=code, start=start, end=end,
                        category=request.args.get("category"), cell=number_arg("cell"),
                        shape=request.args.get("shape", "square"), neighbours=_neighbours(),
                        hours=request.args.get("hours"), weekdays=request.args.get("weekdays"))


def _near_repeat_query() -> NearRepeatQuery:
    default = NearRepeatQuery()
    band = numbers_arg("band")
    if band is not None and len(band) != 2:
        raise BadRequest(f"band={request.args['band']!r} must be metres,days (e.g. 200,14)")
    return NearRepeatQuery(space_bands=numbers_arg("space_bands") or default.space_bands,
                           time_bands=numbers_arg("time_bands") or default.time_bands,
                           permutations=whole_arg("permutations", default.permutations),
                           seed=whole_arg("seed", default.seed),
                           band=None if band is None else (band[0], band[1]))


def _answer(body: dict) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, default=str), 200,
                    content_type="application/geo+json" if "features" in body
                    else "application/json")


@bp.get("/api/hotspots")
def hotspots():
    """Cells with counts and Gi* (z, p, p_fdr, class), KDE density or counts."""
    only_params(_COMMON | {"method", "from", "to", "fdr", "bandwidth"})
    query = _query()
    method = request.args.get("method", "gi")
    with db_engine(current_app).begin() as conn:
        body = run_hotspots(conn, current_user(), query, method, flag_arg("fdr", True),
                            number_arg("bandwidth"))
    return _answer(body)


@bp.get("/api/hotspots/emerging")
def emerging():
    """Cells with their emerging hot-spot category (weekly or monthly steps)."""
    only_params(_COMMON | {"from", "to", "step", "time_window"})
    window = number_arg("time_window")
    if window is not None and (window < 0 or window != int(window)):
        raise BadRequest(f"time_window must be a whole number of steps, got {window!r}")
    with db_engine(current_app).begin() as conn:
        body = run_emerging(conn, current_user(), _query(), request.args.get("step", "month"),
                            1 if window is None else int(window))
    return _answer(body)


@bp.get("/api/hotspots/evaluate")
def evaluation():
    """PAI, PEI and RRI of a method trained on one period and tested on the next."""
    only_params(_COMMON | {"method", "train_from", "train_to", "test_from", "test_to", "share"})
    train = _query("train_from", "train_to")
    test_start, test_end = _period("test_from", "test_to")
    if not request.args.get("test_from"):
        test_start = train.end
    if not request.args.get("train_from") and request.args.get("test_from"):
        raise BadRequest("give train_from and train_to with test_from")
    test = HotspotQuery(**{**train.__dict__, "start": test_start, "end": test_end})
    share = number_arg("share")
    with db_engine(current_app).begin() as conn:
        body = run_evaluation(conn, current_user(), train, test,
                              request.args.get("method", "gi"), 0.05 if share is None else share)
    return _answer(body)


@bp.get("/api/hotspots/near-repeat")
def near_repeat():
    """Knox table, near-repeat classes and the latest risk zones (lon/lat), saved as a run."""
    only_params(_PLAIN | {"space_bands", "time_bands", "permutations", "seed", "band"})
    query, nr = _query(), _near_repeat_query()
    with db_engine(current_app).begin() as conn:
        body = run_near_repeat(conn, current_user(), query, nr)
    return _answer(body)


@bp.get("/api/hotspots/clock")
def clock():
    """Incidents by weekday and hour (local time), of the jurisdiction and of one grid."""
    only_params(_PLAIN | {"grid"})
    query = _query()
    raw = request.args.get("grid")
    if raw is not None and not (raw.strip().isdecimal() and len(raw.strip()) <= 18):
        raise BadRequest(f"grid={raw!r} is not a grid id (a whole number)")
    with db_engine(current_app).connect() as conn:
        body = run_clock(conn, current_user(), query, None if raw is None else int(raw))
    return _answer(body)


@bp.get("/api/hotspots/runs")
def runs():
    """Saved runs (newest first), optionally of one ``jurisdiction``."""
    only_params({"jurisdiction"})
    with db_engine(current_app).connect() as conn:
        found = list_runs(conn, current_user(), request.args.get("jurisdiction"))
    return _answer({"runs": found})


@bp.get("/api/hotspots/runs/<int:run_id>")
def run(run_id: int):
    """One saved run, as it was answered."""
    only_params(set())
    with db_engine(current_app).connect() as conn:
        return _answer(get_run(conn, current_user(), run_id))


@bp.get("/api/safety-index")
def safety():
    """The safety index of the grids under ``jurisdiction`` (12 months up to ``to``)."""
    only_params({"jurisdiction", "to"})
    code = request.args.get("jurisdiction")
    if not code:
        raise BadRequest("jurisdiction is required (?jurisdiction=CODE)")
    end = period_end(request.args["to"]) if request.args.get("to") else None
    with db_engine(current_app).connect() as conn:
        body = safety_index(conn, current_user(), code, end)
    return _answer(body)
