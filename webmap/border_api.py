"""Border joint defence endpoints: ``GET /api/border`` and ``POST /api/border/patrols``."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, request

from layers.border import BorderQuery, border_view, patrol_plan

from .app import db_engine
from .auth import current_user
from .params import BadRequest, json_body, number_arg, only_params

bp = Blueprint("border_api", __name__)


def _answer(body: dict) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, default=str), 200,
                    content_type="application/geo+json" if "features" in body
                    else "application/json")


def _whole(value: float | None, name: str, default: int) -> int:
    if value is None:
        return default
    if value != int(value):
        raise BadRequest(f"{name} must be a whole number, got {value!r}")
    return int(value)


@bp.get("/api/border")
def border():
    """The shared border of ``a`` and ``b``: zone, crossings, incidents, hot cells."""
    only_params({"a", "b", "width", "tolerance", "days"})
    a, b = request.args.get("a"), request.args.get("b")
    if not a or not b:
        raise BadRequest("a and b are required (?a=CODE&b=CODE)")
    width, tolerance = number_arg("width"), number_arg("tolerance")
    query = BorderQuery(a, b, 2000.0 if width is None else width,
                        5.0 if tolerance is None else tolerance,
                        _whole(number_arg("days"), "days", 365))
    with db_engine(current_app).connect() as conn:
        return _answer(border_view(conn, current_user(), query))


@bp.post("/api/border/patrols")
def patrols():
    """Sectors and stored routes for the teams each city offers."""
    only_params(set())
    body = json_body({"a": str, "b": str, "width": (int, float), "tolerance": (int, float),
                      "days": int, "teams": dict}, {"a", "b", "teams"})
    query = BorderQuery(body["a"], body["b"], float(body.get("width", 2000.0)),
                        float(body.get("tolerance", 5.0)), body.get("days", 365))
    with db_engine(current_app).begin() as conn:
        return _answer(patrol_plan(conn, current_user(), query, body["teams"]))
