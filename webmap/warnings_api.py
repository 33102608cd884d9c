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
    """Keep a saved emerging or near-repeat run as a standing watch (``{"run": ID}``)."""
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
