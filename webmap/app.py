"""Flask application factory.

Configuration: :data:`DEFAULTS`, then ``SAFEGRID_*`` environment variables
(``SAFEGRID_DATABASE_URL`` becomes ``DATABASE_URL``), then the ``config`` mapping.
Nothing is built at import time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import psycopg
from flask import Flask, jsonify
from sqlalchemy.exc import DataError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from layers.errors import InputRejected, SafegridError
from layers.registry import UnknownLayer

from . import db
from .errorpage import error_page, wants_page

DEFAULTS: dict[str, object] = {
    "DATABASE_URL": None,  # None: SAFEGRID_DATABASE_URL or the managed cluster
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,  # bytes of a request body; larger: 413
    "RATE_LIMIT": "3000/minute",  # requests per client (webmap.ratelimit); "off": none
    "LOGIN_LIMIT": "10/5minutes",  # failed logins per user and address, bad tokens per address
    "RATE_LIMIT_STORAGE": "memory://",
    # a request waiting this long for a lock (another edit), or running this long, is
    # cancelled with 503 instead of holding a server thread
    "DB_LOCK_TIMEOUT": "10s",
    "DB_STATEMENT_TIMEOUT": "300s",
    "JSON_AS_ASCII": False,
}


def create_app(config: Mapping[str, object] | None = None) -> Flask:
    """Build the safegrid Flask app."""
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("SAFEGRID")
    if config:
        app.config.from_mapping(config)
    app.json.ensure_ascii = False
    db.init_app(app)
    from . import (
        analysis,
        auth,
        border_api,
        border_map,
        coverage_api,
        coverage_map,
        edits,
        grids_api,
        headers,
        hotspots_api,
        ogcapi,
        pages,
        params,
        planner,
        ratelimit,
        reports,
        risk_api,
        tiles,
        warnings_api,
    )

    headers.init_app(app)
    ratelimit.init_app(app)
    app.before_request(params.refuse_nul_args)
    auth.init_app(app)
    app.register_blueprint(ogcapi.bp)
    app.register_blueprint(edits.bp)
    app.register_blueprint(tiles.bp)
    app.register_blueprint(grids_api.bp)
    app.register_blueprint(hotspots_api.bp)
    app.register_blueprint(coverage_api.bp)
    app.register_blueprint(coverage_map.bp)
    app.register_blueprint(border_api.bp)
    app.register_blueprint(border_map.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(planner.bp)
    app.register_blueprint(analysis.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(risk_api.bp)
    app.register_blueprint(warnings_api.bp)
    _register_errors(app)
    return app


def _answer(body: dict, status: int, headers: dict | None = None):
    """An error as JSON, or as a page in the page language for a person opening a page."""
    if wants_page():
        return error_page(status, body["error"], headers)
    response = jsonify(body)
    response.headers.update(headers or {})
    return response, status


def _register_errors(app: Flask) -> None:
    @app.errorhandler(SafegridError)
    def safegrid_error(exc: SafegridError):
        body: dict = {"error": str(exc).splitlines()[0]}
        if isinstance(exc, InputRejected):
            body["problems"] = [{"row": p.row, "reason": p.reason} for p in exc.problems]
        current = getattr(exc, "current", None)
        if current is not None:  # a stale write: send what is stored now
            body["current"] = json.loads(current)
        headers = {}
        if getattr(exc, "version", None) is not None:
            headers["ETag"] = f'"{exc.version}"'
        return _answer(body, exc.http_status, headers)

    @app.errorhandler(UnknownLayer)
    def unknown_layer(exc: UnknownLayer):
        return jsonify({"error": str(exc)}), 404

    @app.errorhandler(OperationalError)
    def database_down(exc: OperationalError):
        if isinstance(exc.orig, psycopg.errors.TransactionRollback):  # deadlock, serialisation
            return _answer({"error": "the change met a concurrent one and was undone; "
                                     "try again"}, 409)
        if isinstance(exc.orig, psycopg.errors.LockNotAvailable):
            return _answer({"error": "another change holds what this one needs and did not "
                                     "finish in time; try again"}, 503, {"Retry-After": "1"})
        if isinstance(exc.orig, psycopg.errors.QueryCanceled):
            return _answer({"error": "the database cancelled the query (it took too long)"},
                           503)
        return _answer({"error": "the database is not reachable; try again shortly"}, 503)

    @app.errorhandler(DataError)
    def bad_value(exc: DataError):  # a value the checks let through, refused by PostgreSQL
        reason = str(exc.orig or exc).strip().splitlines()[0]
        return jsonify({"error": f"a value was refused by the database: {reason}"}), 400

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"]
        return jsonify({"error": f"the request body is too large: at most {limit} bytes "
                                 "(SAFEGRID_MAX_CONTENT_LENGTH)"}), 413

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _answer({"error": exc.description or exc.name}, exc.code)
