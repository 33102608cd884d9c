"""incidents partitioned by month

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

``incidents`` becomes ``PARTITION BY RANGE (occurred_at)``: one partition per calendar
month in China Standard Time and a DEFAULT partition, all in schema ``partitions``
(see ``layers/partitions.py``, which creates the months that writes need later). The
rows are copied with their ids; the id sequence, the columns, their defaults, the
indexes, the row-level-security policy of 0003 and the grants stay as they were. The
primary key becomes (id, occurred_at): PostgreSQL requires the partition key in it; the
sequence keeps ids unique. The application role may not use schema ``partitions``, and
every partition has row-level security on with no policy: the role can only go through
``incidents``, where the policy holds.

This revision holds its own copy of the DDL (a migration must not change when the
application's code does).
"""

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

APP_ROLE = "safegrid_app"
SCHEMA = "partitions"
TZ = "Asia/Shanghai"
OLD = "incidents_unpartitioned"
INDEXES = (
    ("ix_incidents_geom", "USING gist (geom)"),
    ("ix_incidents_jurisdiction_code", "(jurisdiction_code)"),
    ("ix_incidents_occurred_at", "(occurred_at)"),
)


def _months(table: str) -> list[tuple[int, int]]:
    """The months of the rows, but December 9999 (it ends past Python's dates: DEFAULT)."""
    local = f"occurred_at AT TIME ZONE '{TZ}'"
    rows = op.get_bind().execute(sa.text(
        f"SELECT DISTINCT extract(year FROM {local})::int, extract(month FROM {local})::int "
        f"FROM {table}"))
    return sorted(m for m in (tuple(r) for r in rows) if m < (9999, 12))


def _partition(month: tuple[int, int] | None) -> None:
    if month is None:
        name, bounds = "incidents_default", "DEFAULT"
    else:
        year, number = month
        start = dt.datetime(year, number, 1, tzinfo=ZoneInfo(TZ))
        end = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=ZoneInfo(TZ))
        name = f"incidents_{year:04d}_{number:02d}"
        bounds = f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    op.execute(f'CREATE TABLE {SCHEMA}."{name}" PARTITION OF incidents {bounds}')
    op.execute(f'ALTER TABLE {SCHEMA}."{name}" ENABLE ROW LEVEL SECURITY')


def _copy_policies(source: str, target: str) -> None:
    """The row-level-security policies of ``source`` on ``target``, word for word."""
    rows = op.get_bind().execute(sa.text(
        "SELECT policyname, permissive, roles, cmd, qual, with_check FROM pg_policies "
        "WHERE schemaname = 'public' AND tablename = :t"), {"t": source}).all()
    op.execute(f"ALTER TABLE {target} ENABLE ROW LEVEL SECURITY")
    for name, permissive, roles, cmd, qual, check in rows:
        sql = (f'CREATE POLICY "{name}" ON {target} AS {permissive} FOR {cmd} '
               f"TO {', '.join(roles)}")
        sql += f" USING ({qual})" if qual else ""
        sql += f" WITH CHECK ({check})" if check else ""
        op.get_bind().exec_driver_sql(sql)


def _finish(table: str) -> None:
    """Indexes, sequence, grants and statistics of the new ``incidents``."""
    for name, how in INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} {how}")
    op.execute(f"ALTER SEQUENCE incidents_id_seq OWNED BY {table}.id")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
    op.execute(f"ANALYZE {table}")


def _set_aside() -> None:
    """Rename the current ``incidents`` (and its key) out of the way of the new one."""
    op.execute("ALTER SEQUENCE incidents_id_seq OWNED BY NONE")
    op.execute(f"ALTER TABLE incidents RENAME TO {OLD}")
    op.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT incidents_pkey TO {OLD}_pkey")
    for name, _how in INDEXES:
        op.execute(f"DROP INDEX {name}")


def upgrade() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    op.execute(f"REVOKE ALL ON SCHEMA {SCHEMA} FROM PUBLIC")
    _set_aside()
    op.execute(f"CREATE TABLE incidents (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
               "PRIMARY KEY (id, occurred_at)) PARTITION BY RANGE (occurred_at)")
    for month in [None, *_months(OLD)]:
        _partition(month)
    op.execute(f"INSERT INTO incidents SELECT * FROM {OLD}")
    _copy_policies(OLD, "incidents")
    op.execute(f"DROP TABLE {OLD}")
    _finish("incidents")


def downgrade() -> None:
    _set_aside()
    op.execute(f"CREATE TABLE incidents (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
               "PRIMARY KEY (id))")
    op.execute(f"INSERT INTO incidents SELECT * FROM {OLD} ORDER BY id")
    _copy_policies(OLD, "incidents")
    op.execute(f"DROP TABLE {OLD}")  # its partitions with it
    op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA}")
    _finish("incidents")
