"""Incidents partitioned by month: where rows land, pruning, row-level security, migration."""

import datetime as dt

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from layers import LAYERS
from layers.access import APP_ROLE, enter_scope, read_scope
from layers.db import _alembic_config, migrate
from layers.partitions import adopt_default, month_bounds, months_of, partitions_of, prepare
from layers.store import write_features, write_in
from layers.users import user_by_name
from layers.validate import clean_features

pytestmark = pytest.mark.db

INCIDENTS = LAYERS["incidents"]
CST = dt.timezone(dt.timedelta(hours=8))
DEMO_MONTHS = [(2025, 11), (2025, 12), *((2026, m) for m in range(1, 11))]


def _incidents(*times: str) -> gpd.GeoDataFrame:
    """Clean incidents in Changsha (scope of the demo's police user) at ``times``."""
    frame = gpd.GeoDataFrame({"occurred_at": list(times), "category": "fraud"},
                             geometry=[shapely.Point(112.985, 28.03)] * len(times), crs=4326)
    return clean_features(frame, INCIDENTS)


def _placement(conn) -> dict[int, str]:
    """Incident id -> the partition holding it."""
    return dict(conn.execute(text("SELECT id, tableoid::regclass::text FROM incidents")).all())


def _relations(plan: dict | list) -> set[str]:
    """Every table an EXPLAIN (FORMAT JSON) plan reads."""
    if isinstance(plan, list):
        return set().union(*(_relations(p) for p in plan)) if plan else set()
    found = {plan["Relation Name"]} if "Relation Name" in plan else set()
    for value in plan.values():
        if isinstance(value, list | dict):
            found |= _relations(value)
    return found


def test_months_are_calendar_months_of_china_standard_time():
    times = pd.Series([dt.datetime(2026, 3, 31, 16, 30, tzinfo=dt.UTC),  # 04-01 00:30 CST
                           dt.datetime(2026, 3, 31, 15, 59, tzinfo=dt.UTC),
                           dt.datetime(2026, 12, 31, 23, 0, tzinfo=CST)])
    assert months_of(times) == [(2026, 3), (2026, 4), (2026, 12)]
    start, end = month_bounds((2026, 12))
    assert (start.isoformat(), end.isoformat()) == ("2026-12-01T00:00:00+08:00",
                                                    "2027-01-01T00:00:00+08:00")


def test_incidents_is_a_table_partitioned_by_month_with_its_indexes(db, demo_small):
    with db.connect() as conn:
        key = conn.execute(text(
            "SELECT pg_get_partkeydef(CAST('incidents' AS regclass))")).scalar_one()
        primary = conn.execute(text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST('incidents' AS regclass) AND contype = 'p'")).scalar_one()
        indexes = dict(conn.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename = 'incidents'")).all())
        sequence = conn.execute(text(
            "SELECT pg_get_serial_sequence('incidents', 'id')")).scalar_one()
    assert key == "RANGE (occurred_at)"
    assert primary == "PRIMARY KEY (id, occurred_at)"
    assert "USING gist (geom)" in indexes["ix_incidents_geom"]
    assert {"ix_incidents_jurisdiction_code", "ix_incidents_occurred_at"} <= set(indexes)
    assert sequence == "public.incidents_id_seq"


def test_the_demo_incidents_lie_in_their_months_partitions(db, demo_small):
    with db.connect() as conn:
        rows = conn.execute(text(
            "SELECT tableoid::regclass::text, "
            "to_char(occurred_at AT TIME ZONE 'Asia/Shanghai', 'YYYY_MM'), count(*) "
            "FROM incidents GROUP BY 1, 2")).all()
    assert sum(n for *_k, n in rows) >= demo_small["incidents"]
    assert all(part == f"partitions.incidents_{month}" for part, month, _n in rows)
    assert {f"{y}_{m:02d}" for y, m in DEMO_MONTHS} <= {month for _p, month, _n in rows}


def test_an_import_from_a_new_month_creates_its_partition(db, demo_small):
    # 16:30 UTC on 31 March is already April in China Standard Time
    new = _incidents("2019-03-31T16:30:00+00:00", "2019-03-02T09:00:00")
    with db.connect() as conn:
        assert not conn.execute(text(
            "SELECT to_regclass('partitions.incidents_2019_04')")).scalar_one()
    write_features(db, INCIDENTS, new, actor="test")
    with db.begin() as conn:
        rows = conn.execute(text(
            "SELECT tableoid::regclass::text FROM incidents WHERE updated_by = 'test' "
            "AND occurred_at < '2020-01-01' ORDER BY occurred_at")).scalars().all()
        secured, granted = conn.execute(text(
            "SELECT relrowsecurity, has_table_privilege(:r, oid, 'SELECT') FROM pg_class "
            "WHERE oid = CAST('partitions.incidents_2019_04' AS regclass)"),
            {"r": APP_ROLE}).one()
        conn.execute(text("DELETE FROM incidents WHERE updated_by = 'test'"))
    assert rows == ["partitions.incidents_2019_03", "partitions.incidents_2019_04"]
    assert secured and not granted


def test_prepare_makes_this_month_and_the_next_ahead(db, demo_small):
    today = dt.datetime.now(CST)
    ahead = [(today.year, today.month), (today.year + today.month // 12, today.month % 12 + 1)]
    prepare(db, INCIDENTS)  # as ``safegrid db up`` does
    with db.connect() as conn:
        names = set(partitions_of(conn, INCIDENTS))
    assert {f"incidents_{y:04d}_{m:02d}" for y, m in ahead} <= names


def test_far_dates_get_their_month_but_the_last_one_stays_in_default(db, demo_small):
    # imports take the years 1900-2200; plain SQL may write any date
    write_features(db, INCIDENTS, _incidents("2199-12-15T08:00:00"), actor="test")
    with db.begin() as conn:
        (last,) = _stray(conn, "9999-12-31 12:00+08")
        adopt_default(conn, INCIDENTS)
        placed = _placement(conn)
        rows = conn.execute(text(
            "SELECT tableoid::regclass::text FROM incidents WHERE updated_by = 'test'")
        ).scalars().all()
        conn.execute(text("DELETE FROM incidents WHERE updated_by = 'test' OR id = :i"),
                     {"i": last})
    assert rows == ["partitions.incidents_2199_12"]
    assert placed[last] == "partitions.incidents_default"


def _stray(conn, *times: str) -> list[int]:
    """Incidents written around safegrid (plain SQL) at ``times``: their ids."""
    return [conn.execute(text(
        "INSERT INTO incidents (geom, occurred_at, category) VALUES "
        "(ST_SetSRID(ST_MakePoint(112.985, 28.03), 4326), :t, 'fire') RETURNING id"),
        {"t": t}).scalar_one() for t in times]


def test_rows_in_default_move_into_the_partition_of_their_month(db, demo_small):
    with db.begin() as conn:  # no partition of 2018 yet: DEFAULT takes them
        july, august = _stray(conn, "2018-07-10 12:00+08", "2018-08-10 12:00+08")
        assert {_placement(conn)[i] for i in (july, august)} == {"partitions.incidents_default"}
        # a write of July creates its partition although DEFAULT holds a July row
        write_in(conn, INCIDENTS, _incidents("2018-07-20T08:00:00"), actor="test")
        assert _placement(conn)[july] == "partitions.incidents_2018_07"
        assert _placement(conn)[august] == "partitions.incidents_default"
        assert adopt_default(conn, INCIDENTS) == ["incidents_2018_08"]
        assert _placement(conn)[august] == "partitions.incidents_2018_08"
        (september,) = _stray(conn, "2018-09-10 12:00+08")
    # any import first gives the months left in DEFAULT their partitions
    write_features(db, INCIDENTS, _incidents("2026-05-05T08:00:00"), actor="test")
    with db.begin() as conn:
        assert _placement(conn)[september] == "partitions.incidents_2018_09"
        assert conn.execute(text(
            "SELECT count(*) FROM partitions.incidents_default")).scalar_one() == 0
        conn.execute(text("DELETE FROM incidents WHERE occurred_at < '2019-01-01' "
                          "OR updated_by = 'test'"))


def _plan(conn, sql: str, **params) -> set[str]:
    return _relations(conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}"), params).scalar_one())


def test_a_month_query_reads_that_month_only(db, demo_small):
    start, end = month_bounds((2026, 3))
    with db.connect() as conn:
        month = _plan(conn, "SELECT count(*) FROM incidents i "
                            "WHERE i.occurred_at >= :s AND i.occurred_at < :e", s=start, e=end)
        # the hot-spot and notice queries: a jurisdiction and a period
        joined = _plan(conn, "SELECT ST_X(i.geom) FROM incidents i, jurisdictions j "
                             "WHERE j.code = :c AND i.geom && j.geom "
                             "AND ST_Intersects(i.geom, j.geom) AND i.occurred_at >= :s "
                             "AND i.occurred_at < :e", c="430100", s=start,
                       e=start + dt.timedelta(days=10))
        everything = _plan(conn, "SELECT count(*) FROM incidents")
    assert month == {"incidents_2026_03"}
    assert joined == {"incidents_2026_03", "jurisdictions"}
    assert {"incidents_2026_03", "incidents_2026_04", "incidents_default"} <= everything


def test_the_app_role_cannot_read_a_partition_directly(db, demo_small):
    with db.connect() as conn:
        police = user_by_name(conn, "police")[0]
        enter_scope(conn, read_scope(conn, police, INCIDENTS))
        assert conn.execute(text("SELECT count(*) FROM incidents")).scalar_one() > 0
        with pytest.raises(ProgrammingError, match="permission denied for schema partitions"):
            conn.execute(text("SELECT count(*) FROM partitions.incidents_2026_03"))


def test_even_granted_a_partition_the_app_role_sees_none_of_its_rows(db, demo_small):
    start, end = month_bounds((2026, 3))
    with db.connect() as conn:  # rolled back: the grants do not stay
        conn.execute(text(f"GRANT USAGE ON SCHEMA partitions TO {APP_ROLE}"))
        conn.execute(text(f"GRANT SELECT ON partitions.incidents_2026_03 TO {APP_ROLE}"))
        police = user_by_name(conn, "police")[0]
        enter_scope(conn, read_scope(conn, police, INCIDENTS))
        through_parent = conn.execute(text(
            "SELECT count(*) FROM incidents WHERE occurred_at >= :s AND occurred_at < :e"),
            {"s": start, "e": end}).scalar_one()
        direct = conn.execute(text(
            "SELECT count(*) FROM partitions.incidents_2026_03")).scalar_one()
        conn.rollback()
    assert through_parent > 0 and direct == 0


def _digest(conn) -> str:
    return conn.execute(text(
        "SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) FROM (SELECT id, geom, "
        "occurred_at, category, severity, jurisdiction_code, version, updated_at, updated_by "
        "FROM incidents) t")).scalar_one()


def test_downgrade_and_upgrade_keep_every_incident(db, db_url, demo_small):
    with db.connect() as conn:
        before = _digest(conn)
    command.downgrade(_alembic_config(db_url), "0007")
    with db.connect() as conn:
        kind = conn.execute(text(
            "SELECT relkind FROM pg_class WHERE oid = CAST('incidents' AS regclass)")).scalar()
        policies = conn.execute(text(
            "SELECT count(*) FROM pg_policies WHERE tablename = 'incidents'")).scalar_one()
        schema = conn.execute(text("SELECT to_regnamespace('partitions')")).scalar()
        down = _digest(conn)
    migrate(db_url)
    with db.connect() as conn:
        up = _digest(conn)
        parts = conn.execute(text(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = CAST('incidents' AS regclass)")
        ).scalar_one()
        fresh = conn.execute(text("SELECT nextval('incidents_id_seq') > max(id) "
                                  "FROM incidents")).scalar_one()
    assert (kind, policies, schema) == ("r", 1, None)
    assert before == down == up
    assert parts >= len(DEMO_MONTHS) + 1 and fresh



def test_the_extent_of_a_big_partitioned_table_comes_from_its_partitions(db, demo_small):
    from layers.features import _bounds, _pieces, collection_extent

    with db.connect() as conn:
        conn.execute(text("ANALYZE incidents"))
        exact = conn.execute(text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
            "FROM (SELECT ST_Extent(geom) AS e FROM incidents) x")).one()
        pieces = _pieces(conn, INCIDENTS)
        # as for millions of rows: estimated from each partition's statistics
        estimated = _bounds(conn, [(s, t, 1e6 if n > 0 else n) for s, t, n in pieces])
        extent = collection_extent(conn, INCIDENTS)["spatial"]["bbox"][0]
    assert {table for _s, table, _n in pieces} >= {"incidents_default", "incidents_2026_03"}
    assert estimated != pytest.approx(exact, abs=1e-9)  # PostGIS rounds estimates outwards
    assert estimated == pytest.approx(exact, abs=1e-4)
    assert extent == pytest.approx(exact, abs=1e-6)
