"""The latest month with an incident in a jurisdiction, on the small demo, against a
brute-force reading of every incident: for cities, districts and streets, one with no
incidents at all, after a new incident in a later month, and refused as before."""

import datetime as dt

import pytest
import shapely
from sqlalchemy import text

from layers.errors import Forbidden
from layers.jurisdictions import latest_incident_month
from layers.users import user_by_name
from layers.validate import LOCAL_TZ

pytestmark = pytest.mark.db


def _brute_force(conn, code: str) -> str | None:
    """Every incident read, tested against the jurisdiction in shapely, newest kept."""
    area = shapely.from_wkb(bytes(conn.execute(text(
        "SELECT ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"), {"c": code}).scalar_one()))
    rows = conn.execute(text("SELECT ST_X(geom), ST_Y(geom), occurred_at FROM incidents")).all()
    inside = shapely.intersects_xy(area, [r[0] for r in rows], [r[1] for r in rows])
    times = [r[2] for r, hit in zip(rows, inside, strict=True) if hit]
    return max(times).astimezone(LOCAL_TZ).strftime("%Y-%m") if times else None


@pytest.fixture
def admin(db, demo_small):
    with db.connect() as conn:
        return user_by_name(conn, "admin")[0]


def test_the_latest_month_is_the_brute_force_one(db, admin):
    with db.connect() as conn:
        codes = conn.execute(text(
            "(SELECT code FROM jurisdictions WHERE level IN ('city', 'district') ORDER BY code)"
            " UNION ALL (SELECT code FROM jurisdictions WHERE level = 'street' ORDER BY code "
            "LIMIT 4)")).scalars().all()
        assert len(codes) >= 6
        for code in codes:
            expected = _brute_force(conn, code)
            assert latest_incident_month(conn, admin, code) == expected, code
            assert latest_incident_month(conn, admin, code) == expected, code  # kept


def test_a_jurisdiction_without_incidents_has_no_month(db, admin):
    with db.connect() as conn, conn.begin() as tx:
        conn.execute(text(
            "INSERT INTO jurisdictions (code, name, level, geom) VALUES ('990000', '空城', "
            "'city', ST_Multi(ST_MakeEnvelope(100.0, 30.0, 100.1, 30.1, 4326)))"))
        assert _brute_force(conn, "990000") is None
        assert latest_incident_month(conn, admin, "990000") is None
        tx.rollback()


def test_a_new_incident_in_a_later_month_is_seen_at_once(db, admin):
    with db.connect() as conn:
        code = conn.execute(text("SELECT code FROM jurisdictions WHERE level = 'district' "
                                 "ORDER BY code LIMIT 1")).scalar_one()
        before = latest_incident_month(conn, admin, code)
        assert before == _brute_force(conn, code)
        x, y = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom)"
                                 " AS p FROM jurisdictions WHERE code = :c) s"),
                            {"c": code}).one()
    year, month = map(int, before.split("-"))
    later = dt.datetime(year + (month == 12), month % 12 + 1, 15, 12, tzinfo=LOCAL_TZ)
    with db.begin() as conn:
        incident = conn.execute(text(
            "INSERT INTO incidents (geom, occurred_at, category) VALUES "
            "(ST_SetSRID(ST_MakePoint(:x, :y), 4326), :t, 'fraud') RETURNING id"),
            {"x": x, "y": y, "t": later}).scalar_one()
    try:
        with db.connect() as conn:
            assert latest_incident_month(conn, admin, code) == later.strftime("%Y-%m")
    finally:
        with db.begin() as conn:
            conn.execute(text("DELETE FROM incidents WHERE id = :i"), {"i": incident})
    with db.connect() as conn:
        assert latest_incident_month(conn, admin, code) == before


def test_only_those_who_may_analyse_it_are_told(db, admin):
    with db.connect() as conn:
        police = user_by_name(conn, "police")[0]
        partner = user_by_name(conn, "partner")[0]
        assert latest_incident_month(conn, admin, "430300") is not None  # kept now
        with pytest.raises(Forbidden):
            latest_incident_month(conn, police, "430300")
        with pytest.raises(Forbidden):
            latest_incident_month(conn, partner, "430100")
        assert latest_incident_month(conn, police, "430100") == _brute_force(conn, "430100")
