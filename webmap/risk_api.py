"""Risk terrain endpoint.

``/api/risk/terrain``: the cells of a jurisdiction with their relative risk score, the
risk factors selected with their relative risk values, the model and its check against
Gi* and KDE hot spots on the following period (:mod:`layers.rtm`); saved as a run that
``/api/hotspots/runs`` lists (kind ``terrain``). ``hours`` and ``weekdays`` (local time,
as the hot-spot endpoints) keep only the incidents at those times, in the fit and in
the validation.

``/api/risk/places``: every key area and grid of a jurisdiction with its risk level
(1 低 ... 4 重大), score and reasons (:mod:`layers.riskgrade`); saved as a run (kind
``risk_places``). The period is ``from``-``to``, or the ``days`` before ``to`` (default
365); ``to`` defaults to now.
"""

from __future__ import annotations

import datetime as dt
import json

from flask import Blueprint, Response, current_app, request

from layers.hotspots import HotspotQuery
from layers.riskgrade import MAX_DAYS, RiskPlacesQuery, run_risk_places
from layers.rtm import TerrainQuery, run_terrain
from layers.validate import instant, period_end

from .auth import current_user
from .db import db_engine
from .params import BadRequest, number_arg, numbers_arg, only_params, whole_arg

bp = Blueprint("risk_api", __name__)

PARAMS = {"jurisdiction", "from", "to", "cell", "category", "distances", "folds", "seed",
          "hours", "weekdays"}
DEFAULT_DAYS = 365


def _distances() -> tuple[float, ...] | None:
    """``distances`` as comma-separated positive metres (None when absent)."""
    values = numbers_arg("distances")
    for value in values or ():
        if value <= 0:
            raise BadRequest(f"distances={request.args['distances']!r}: {value:g} is not a "
                             "positive number of metres")
    return values


def _jurisdiction() -> str:
    code = request.args.get("jurisdiction")
    if not code:
        raise BadRequest("jurisdiction is required (?jurisdiction=CODE)")
    return code


def _period(days: int) -> tuple[dt.datetime, dt.datetime]:
    """(start, end) from ``from`` and ``to``; a bad value is a 400 naming its parameter.

    ``to`` defaults to now, ``from`` to ``days`` before ``to``.
    """
    end_raw, start_raw = request.args.get("to"), request.args.get("from")
    try:
        end = period_end(end_raw) if end_raw else dt.datetime.now(dt.UTC)
    except BadRequest as exc:
        raise BadRequest(f"to: {exc}") from None
    try:
        start = instant(start_raw, False) if start_raw else end - dt.timedelta(days=days)
    except BadRequest as exc:
        raise BadRequest(f"from: {exc}") from None
    return start, end


def _query() -> TerrainQuery:
    code = _jurisdiction()
    start, end = _period(DEFAULT_DAYS)
    area = HotspotQuery(jurisdiction=code, start=start, end=end,
                        category=request.args.get("category"), cell=number_arg("cell"),
                        hours=request.args.get("hours"), weekdays=request.args.get("weekdays"))
    return TerrainQuery(area, _distances(), whole_arg("folds", 5), whole_arg("seed", 0))


@bp.get("/api/risk/terrain")
def terrain():
    """Cells with their relative risk score, the factor table, model and validation."""
    only_params(PARAMS)
    query = _query()
    with db_engine(current_app).begin() as conn:
        body = run_terrain(conn, current_user(), query)
    return Response(json.dumps(body, ensure_ascii=False, default=str), 200,
                    content_type="application/geo+json")


PLACES_PARAMS = {"jurisdiction", "from", "to", "days"}


def _places_query() -> RiskPlacesQuery:
    code = _jurisdiction()
    if "from" in request.args and "days" in request.args:
        raise BadRequest("give from or days, not both (days counts back from to)")
    days = whole_arg("days", DEFAULT_DAYS)
    if not 1 <= days <= MAX_DAYS:
        raise BadRequest(f"days must be 1 to {MAX_DAYS}, got {days}")
    return RiskPlacesQuery(code, *_period(days))


@bp.get("/api/risk/places")
def places():
    """Key areas and grids with their risk level (1-4), score (0-100) and reasons."""
    only_params(PLACES_PARAMS)
    query = _places_query()
    with db_engine(current_app).begin() as conn:
        body = run_risk_places(conn, current_user(), query)
    return Response(json.dumps(body, ensure_ascii=False, default=str), 200,
                    content_type="application/json")
