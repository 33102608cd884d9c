"""Camera coverage endpoints.

``/api/coverage`` (targets with covered ratios), ``/api/coverage/views`` (fields of
view; ``codes=`` for only some cameras), ``/api/coverage/gaps`` (uncovered pieces by
risk), ``POST /api/coverage/what-if`` (cameras switched off or added; with
``"changes_only": true`` only the targets whose figures changed and the views of the
cameras switched off, so a page patches what it shows), ``POST /api/coverage/siting``
(where k new cameras should go) and the saved runs. Answers are gzipped for clients
that accept it.
"""

from __future__ import annotations

import json
import math

from flask import Blueprint, Response, current_app, request

from geo.siting import CameraModel
from layers.coverage import (
    CoverageQuery,
    Proposed,
    SitingRequest,
    camera_views,
    coverage,
    coverage_gaps,
    get_run,
    list_runs,
    siting,
)

from .auth import current_user
from .compress import json_response
from .db import db_engine
from .params import BadRequest, flag_arg, json_body, number_arg, only_params

bp = Blueprint("coverage_api", __name__)

_QUERY = {"jurisdiction", "target", "school_buffer", "off", "planned"}


def _answer(body: dict, revalidate: bool = False) -> Response:
    return json_response(json.dumps(body, ensure_ascii=False, default=str,
                                    separators=(",", ":")),
                         "application/geo+json" if "features" in body else "application/json",
                         revalidate=revalidate)


def _codes(raw: str | None) -> tuple[str, ...]:
    return tuple(c.strip() for c in (raw or "").split(",") if c.strip())


def _whole(name: str, default: int) -> int:
    value = number_arg(name)
    if value is None:
        return default
    if value != int(value):
        raise BadRequest(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _query_from_args() -> CoverageQuery:
    code = request.args.get("jurisdiction")
    if not code:
        raise BadRequest("jurisdiction is required (?jurisdiction=CODE)")
    buffer = number_arg("school_buffer")
    return CoverageQuery(code, request.args.get("target", "key_areas"),
                         200.0 if buffer is None else buffer,
                         off=_codes(request.args.get("off")),
                         planned=flag_arg("planned", False), days=_whole("days", 365))


@bp.get("/api/coverage")
def targets():
    """Targets of a jurisdiction with ``covered_ratio`` and a summary."""
    only_params(_QUERY)
    with db_engine(current_app).connect() as conn:
        return _answer(coverage(conn, current_user(), _query_from_args()), revalidate=True)


@bp.get("/api/coverage/views")
def views():
    """Cameras near a jurisdiction with their fields of view (offline: the bare sector)."""
    only_params(_QUERY - {"target", "school_buffer"} | {"codes"})
    codes = _codes(request.args.get("codes")) if "codes" in request.args else None
    with db_engine(current_app).connect() as conn:
        return _answer(camera_views(conn, current_user(), _query_from_args(), codes),
                       revalidate=True)


@bp.get("/api/coverage/gaps")
def gap_pieces():
    """Uncovered pieces of the targets, riskiest first, with ``risk``."""
    only_params(_QUERY | {"days", "limit"})
    with db_engine(current_app).begin() as conn:
        return _answer(coverage_gaps(conn, current_user(), _query_from_args(),
                                     _whole("limit", 1000)))


_BODY = {"jurisdiction": str, "target": str, "school_buffer": (int, float), "off": list,
         "planned": bool, "days": int}


def _number_field(body: dict, name: str, default: float) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"{name} must be a number, got {value!r}")
    return float(value)


def _query_from_body(body: dict) -> CoverageQuery:
    off = body.get("off", [])
    if not all(isinstance(c, str) for c in off):
        raise BadRequest("off must be a list of camera codes")
    return CoverageQuery(body["jurisdiction"], body.get("target", "key_areas"),
                         _number_field(body, "school_buffer", 200.0), off=tuple(off),
                         add=_proposed(body.get("add", [])),
                         planned=body.get("planned", False), days=body.get("days", 365))


def _proposed(items: list) -> tuple[Proposed, ...]:
    out = []
    for i, item in enumerate(items):
        keys = ("lon", "lat", "bearing", "fov", "range_m")
        if not isinstance(item, dict) or set(item) != set(keys):
            raise BadRequest(f"add[{i}] must be an object with exactly {', '.join(keys)}")
        out.append(Proposed(*(_number_field(item, k, math.nan) for k in keys)))
    return tuple(out)


@bp.post("/api/coverage/what-if")
def what_if():
    """Coverage with cameras switched off (``off``) or added (``add``), and without."""
    only_params(set())
    body = json_body({**_BODY, "add": list, "changes_only": bool}, {"jurisdiction"})
    query = _query_from_body(body)
    with db_engine(current_app).connect() as conn:
        changed = coverage(conn, current_user(), query)
        base = coverage(conn, current_user(), CoverageQuery(
            query.jurisdiction, query.target, query.school_buffer, planned=query.planned))
        views = camera_views(conn, current_user(), query, set(query.off)) \
            if body.get("changes_only") else None
    changed["before"] = base["summary"]["covered_ratio"]
    changed["after"] = changed["summary"]["covered_ratio"]
    base_props = {f["id"]: f["properties"] for f in base["features"]}
    for feature in changed["features"]:
        feature["properties"]["covered_ratio_before"] = \
            base_props.get(feature["id"], {}).get("covered_ratio")
    if views is not None:  # only what differs from all cameras on: the page has that
        changed["features"] = [f for f in changed["features"]
                               if f["properties"] != {**base_props.get(f["id"], {}),
                                                      "covered_ratio_before":
                                                      f["properties"]["covered_ratio_before"]}]
        changed["views"] = {"type": "FeatureCollection", "features": views["features"]}
        changed["changes_only"] = True
    return _answer(changed)


@bp.post("/api/coverage/siting")
def propose():
    """Proposed new cameras (point, bearing, fov, range_m, gain), coverage before/after."""
    only_params(set())
    body = json_body({**_BODY, "k": int, "fov": (int, float), "range_m": (int, float),
                      "bearings": int, "spacing": (int, float)}, {"jurisdiction", "k"})
    try:
        model = CameraModel(_number_field(body, "fov", 90.0),
                            _number_field(body, "range_m", 60.0), body.get("bearings", 8))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    request_ = SitingRequest(body["k"], model, _number_field(body, "spacing", 10.0))
    with db_engine(current_app).begin() as conn:
        return _answer(siting(conn, current_user(), _query_from_body(body), request_))


@bp.get("/api/coverage/runs")
def runs():
    """Saved gap and siting runs (newest first), optionally of one ``jurisdiction``."""
    only_params({"jurisdiction"})
    with db_engine(current_app).connect() as conn:
        return _answer({"runs": list_runs(conn, current_user(),
                                          request.args.get("jurisdiction"))})


@bp.get("/api/coverage/runs/<int:run_id>")
def run(run_id: int):
    """One saved gap or siting run, as it was answered."""
    only_params(set())
    with db_engine(current_app).connect() as conn:
        return _answer(get_run(conn, current_user(), run_id))
