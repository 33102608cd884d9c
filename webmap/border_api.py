"""Border joint defence endpoints: ``GET /api/border`` and ``POST /api/border/patrols``."""

from __future__ import annotations

import json
import math

from flask import Blueprint, Response, current_app, request

from layers.border import BorderQuery, kept_border_view, patrol_plan

from .auth import current_user
from .border_map import TEXT
from .compress import json_response
from .db import db_engine
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


def _number(value: float) -> str:
    """A number as the border page's script writes it (whole numbers without ".0")."""
    return str(int(value)) if value == int(value) else str(value)


def _why(stop: dict, parameters: dict) -> str:
    """Why a patrol did not reach ``stop``, in Chinese words (the border page's table)."""
    t = TEXT["zh"]
    distance = "?" if stop["distance_m"] is None else str(math.floor(stop["distance_m"] + 0.5))
    return t["stop_" + stop["kind"]] + "：" + t["why_" + stop["reason"]].format(
        distance=distance, reach=_number(parameters["reach_m"]),
        detour=_number(parameters["detour_m"]))


def _explained(plan: dict) -> dict:
    for feature in plan["features"]:
        for stop in feature["properties"]["unreached"]:
            stop["why"] = _why(stop, plan["parameters"])
    return plan


@bp.get("/api/border")
def border():
    """The shared border of ``a`` and ``b``: zone, crossings, incidents, hot cells.

    The answer is kept while nothing it reads changes (:func:`layers.border.kept_border_view`)
    and carries an ``ETag``: a request naming it in ``If-None-Match`` gets a 304. When
    another city's server (a peer) holds ``b`` (or ``a``), its side is read from there;
    ``sources`` says per side which server it came from and as of when (a peer that is
    down or slow still gives a 200: its side from the kept copy, stale, or absent, with
    the reason).
    """
    only_params({"a", "b", "width", "tolerance", "days"})
    a, b = request.args.get("a"), request.args.get("b")
    if not a or not b:
        raise BadRequest("a and b are required (?a=CODE&b=CODE)")
    width, tolerance = number_arg("width"), number_arg("tolerance")
    query = BorderQuery(a, b, 2000.0 if width is None else width,
                        5.0 if tolerance is None else tolerance,
                        _whole(number_arg("days"), "days", 365))
    with db_engine(current_app).connect() as conn:
        answer = kept_border_view(conn, current_user(), query)
    return json_response(answer, revalidate=True)


@bp.post("/api/border/patrols")
def patrols():
    """Sectors and stored routes for the teams each city offers.

    Each sector and route lists the stops it could not reach (``unreached``), each with
    its ``reason`` code and ``why`` in words (Chinese). With a peer holding the other
    city, the partner's routes are written on the peer (``server`` names it) and ours
    here, or neither: a peer that cannot be read or written is a 502, a route changed
    there meanwhile a 409, and nothing is written here.
    """
    only_params(set())
    body = json_body({"a": str, "b": str, "width": (int, float), "tolerance": (int, float),
                      "days": int, "teams": dict}, {"a", "b", "teams"})
    query = BorderQuery(body["a"], body["b"], float(body.get("width", 2000.0)),
                        float(body.get("tolerance", 5.0)), body.get("days", 365))
    with db_engine(current_app).begin() as conn:
        return _answer(_explained(patrol_plan(conn, current_user(), query, body["teams"])))
