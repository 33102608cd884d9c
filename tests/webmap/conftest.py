"""Fixtures of the HTTP tests."""

import pytest
from sqlalchemy import text

from .gridhelp import COMMUNITY


@pytest.fixture
def keep_grids(db):
    """``keep_grids(prefix)``: the grids and joint-household units of jurisdictions whose
    code starts with ``prefix`` are put back as they were after the test."""
    from layers.store import refresh_derived

    kept: list[str] = []

    def keep(prefix: str) -> None:
        like = {"d": prefix + "%"}
        with db.begin() as conn:
            conn.execute(text(f"CREATE TABLE kept_grids_{len(kept)} AS SELECT * FROM grids "
                              "WHERE jurisdiction_code LIKE :d"), like)
            conn.execute(text(f"CREATE TABLE kept_units_{len(kept)} AS SELECT * FROM "
                              "household_units WHERE jurisdiction_code LIKE :d"), like)
        kept.append(prefix)

    yield keep
    with db.begin() as conn:
        for i, prefix in enumerate(kept):
            like = {"d": prefix + "%"}
            conn.execute(text("DELETE FROM household_units WHERE jurisdiction_code LIKE :d"),
                         like)
            conn.execute(text("DELETE FROM grids WHERE jurisdiction_code LIKE :d"), like)
            conn.execute(text(f"INSERT INTO grids SELECT * FROM kept_grids_{i}"))
            conn.execute(text(f"INSERT INTO household_units SELECT * FROM kept_units_{i}"))
            conn.execute(text(f"DROP TABLE kept_grids_{i}, kept_units_{i}"))
        if kept:
            refresh_derived(conn, "grids")
            refresh_derived(conn, "household_units")


@pytest.fixture
def planned(api, keep_grids):
    """The community planned into grids of ~40 households; their ids."""
    keep_grids(COMMUNITY)
    r = api("planner", "/api/grids/generate", method="POST",
            json={"jurisdiction": COMMUNITY, "target_households": 40, "replace": True})
    assert r.status_code == 201, r.text
    ids = [f["id"] for f in r.json()["features"]]
    assert len(ids) >= 5
    return ids
