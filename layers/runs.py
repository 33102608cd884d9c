"""Saved analysis runs: each answer kept with its parameters, listed and reopened later.

``hotspot_runs`` and ``coverage_runs`` have the same columns: kind, jurisdiction_code,
parameters, summary, result (jsonb), created_at, created_by. A run is visible to the
users whose jurisdiction holds the run's.
"""

from __future__ import annotations

import json

from sqlalchemy import Connection, text

from .access import require_within
from .errors import NotFound, SafegridError
from .users import User

__all__ = ["RUN_TABLES", "UnknownRun", "load_run", "runs_of", "save_run"]

RUN_TABLES = {"hotspot_runs": "hot-spot", "coverage_runs": "coverage"}


class UnknownRun(NotFound):
    """No such saved run, or not one the user may see (HTTP 404)."""

    http_status = 404


def _table(table: str) -> str:
    if table not in RUN_TABLES:
        raise ValueError(f"not a run table: {table!r}")
    return table


def save_run(conn: Connection, table: str, user: User, kind: str, jurisdiction: str,
             parameters: dict, summary: dict, result: dict) -> int:
    """Store one run; its id."""
    return conn.execute(text(
        f"INSERT INTO {_table(table)} (kind, jurisdiction_code, parameters, summary, result, "
        "created_by) VALUES (:k, :j, CAST(:p AS jsonb), CAST(:s AS jsonb), "
        "CAST(:r AS jsonb), :u) RETURNING id"),
        {"k": kind, "j": jurisdiction, "p": json.dumps(parameters, default=str),
         "s": json.dumps(summary, default=str), "r": json.dumps(result, default=str),
         "u": user.name}).scalar_one()


def runs_of(conn: Connection, table: str, user: User, jurisdiction: str | None = None
            ) -> list[dict]:
    """Saved runs the user may see (their own jurisdiction's), newest first, at most 200."""
    rows = conn.execute(text(
        "SELECT id, kind, jurisdiction_code, parameters, summary, created_at, created_by "
        f"FROM {_table(table)} WHERE (CAST(:j AS text) IS NULL OR jurisdiction_code = :j) "
        "ORDER BY id DESC LIMIT 200"), {"j": jurisdiction}).mappings().all()
    out = []
    for r in rows:
        try:
            require_within(conn, user, r["jurisdiction_code"])
        except SafegridError:
            continue
        out.append({"id": r["id"], "kind": r["kind"], "jurisdiction": r["jurisdiction_code"],
                    "parameters": r["parameters"], "summary": r["summary"],
                    "created_at": r["created_at"].isoformat(), "created_by": r["created_by"]})
    return out


def load_run(conn: Connection, table: str, user: User, run_id: int) -> dict:
    """A saved run's result as it was answered, or UnknownRun."""
    label = RUN_TABLES[_table(table)]
    row = conn.execute(text(f"SELECT jurisdiction_code, result FROM {_table(table)} "
                            "WHERE id = :i"),
                       {"i": run_id}).mappings().first()
    if row is None:
        raise UnknownRun(f"there is no {label} run {run_id}")
    try:
        require_within(conn, user, row["jurisdiction_code"])
    except SafegridError:
        raise UnknownRun(f"there is no {label} run {run_id} that you may see") from None
    return row["result"]
