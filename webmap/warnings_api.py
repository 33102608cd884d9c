"""Risk warning endpoints (风险预警).

``/api/warnings/watches`` (POST a saved run as a standing watch, GET the watches),
``/api/warnings/watches/{id}`` (DELETE), ``/api/warnings`` (GET, filtered by
``jurisdiction``, ``since`` and ``open``) and ``/api/warnings/{id}/ack`` (POST). Who may
do what is said in :mod:`layers.warnings`.
"""

from __future__ import annotations

import datetime as dt
import json

from flask import Blueprint, Response, current_app, request

from layers.validate import instant
from layers.warnings import acknowledge, create_watch, delete_watch, list_warnings, list_watches

from .auth import current_user
from .db import db_engine
from .params import flag_arg, json_body, only_params

bp = Blueprint("warnings_api", __name__)


def _answer(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, default=str), status,
                    content_type="application/geo+json" if "features" in body
                    else "application/json")


@bp.post("/api/warnings/watches")
def new_watch():
    """Keep a saved emerging, near-repeat or risk_places run as a standing watch.

    The body is ``{"run": ID}``.
    """
    only_params(set())
    body = json_body({"run": int}, {"run"})
    with db_engine(current_app).begin() as conn:
        watch = create_watch(conn, current_user(), body["run"])
    return _answer(watch, 201)


@bp.get("/api/warnings/watches")
def watches():
    """The watches of the user's jurisdiction, newest first."""
    only_params(set())
    with db_engine(current_app).begin() as conn:
        return _answer({"watches": list_watches(conn, current_user())})


@bp.delete("/api/warnings/watches/<int:watch_id>")
def remove_watch(watch_id: int):
    """Remove a watch; the warnings it raised stay."""
    only_params(set())
    with db_engine(current_app).begin() as conn:
        delete_watch(conn, current_user(), watch_id)
    return Response(status=204)


@bp.get("/api/warnings")
def warnings():
    """Warnings the user may see, newest first (a FeatureCollection, lon/lat)."""
    only_params({"jurisdiction", "since", "open"})
    raw = request.args.get("since")
    since = instant(raw, False) if raw else None
    open_only = flag_arg("open", False)
    with db_engine(current_app).begin() as conn:
        body = list_warnings(conn, current_user(), request.args.get("jurisdiction") or None,
                             since, open_only, dt.datetime.now(dt.UTC))
    return _answer(body)


@bp.post("/api/warnings/<int:warning_id>/ack")
def ack(warning_id: int):
    """Acknowledge a warning (police and admins)."""
    only_params(set())
    with db_engine(current_app).begin() as conn:
        return _answer(acknowledge(conn, current_user(), warning_id))


def _error_responses(*codes: str) -> dict:
    return {code: {"description": "error", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}} for code in codes}


def _query(name: str, description: str, kind: str) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": kind}}


def openapi_paths() -> dict:
    """The OpenAPI 3.0.3 paths of these endpoints, for :func:`webmap.openapi.openapi_document`."""
    watch_id = [{"name": "watchId", "in": "path", "required": True,
                 "schema": {"type": "integer"}}]
    warning_id = [{"name": "warningId", "in": "path", "required": True,
                   "schema": {"type": "integer"}}]
    body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["run"], "additionalProperties": False,
        "properties": {"run": {"type": "integer", "minimum": 1, "description":
                               "A saved emerging, near_repeat or risk_places run "
                               "(/api/hotspots/runs)."}}}}}}
    return {
        "/api/warnings/watches": {
            "post": {"summary": "Keep a saved emerging hot-spot, near-repeat or risk "
                                "grading (risk_places) run as a standing watch (police, "
                                "admins)",
                     "operationId": "create_watch", "requestBody": body,
                     "responses": {"201": {"description": "the watch"},
                                   **_error_responses("400", "401", "403")}},
            "get": {"summary": "The watches of your jurisdiction (police, admins)",
                    "operationId": "list_watches",
                    "responses": {"200": {"description": "{watches}"},
                                  **_error_responses("400", "401", "403")}}},
        "/api/warnings/watches/{watchId}": {"delete": {
            "summary": "Remove a watch (its warnings stay)", "operationId": "delete_watch",
            "parameters": watch_id, "responses": {"204": {"description": "removed"},
                                                  **_error_responses("401", "403", "404")}}},
        "/api/warnings": {"get": {
            "summary": "Risk warnings (风险预警) you may see, newest first, lon/lat; planners "
                       "and viewers get hot-spot cells of 3 incidents or more and no risk "
                       "zones; border partners none",
            "operationId": "list_warnings",
            "parameters": [
                _query("jurisdiction", "This jurisdiction and those under it.", "string"),
                _query("since", "Created at or after this date or date-time.", "string"),
                _query("open", "Only unacknowledged warnings whose zone has not ended.",
                       "boolean")],
            "responses": {"200": {"description": "warnings", "content": {
                "application/geo+json": {"schema": {"type": "object"}}}},
                **_error_responses("400", "401", "403")}}},
        "/api/warnings/{warningId}/ack": {"post": {
            "summary": "Acknowledge a warning (police, admins)", "operationId": "ack_warning",
            "parameters": warning_id,
            "responses": {"200": {"description": "the warning"},
                          **_error_responses("401", "403", "404", "409")}}},
    }
