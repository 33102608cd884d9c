"""The database of the web app: the engine is made once per app and read by blueprints.

As in Flask's tutorial, blueprints take the database from this small module, never from
the application factory (:mod:`webmap.app`), which calls :func:`init_app`.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import Engine

from layers.db import database_url, engine

__all__ = ["db_engine", "init_app"]

_KEY = "safegrid.engine"


def init_app(app: Flask) -> None:
    """Make ``app``'s engine from its configuration.

    ``DATABASE_URL`` (else the managed cluster's), with the lock and statement timeouts
    of ``DB_LOCK_TIMEOUT`` and ``DB_STATEMENT_TIMEOUT``.
    """
    app.extensions[_KEY] = engine(
        app.config["DATABASE_URL"] or database_url(),
        lock_timeout=str(app.config["DB_LOCK_TIMEOUT"]),
        statement_timeout=str(app.config["DB_STATEMENT_TIMEOUT"]))


def db_engine(app: Flask) -> Engine:
    """The database engine of ``app`` (made by :func:`init_app`)."""
    return app.extensions[_KEY]
