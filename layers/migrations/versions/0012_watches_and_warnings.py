"""standing watches and their risk warnings (风险预警)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

A saved emerging hot-spot or near-repeat run can be kept as a standing watch
(``watches``): its kind and parameters, the length of its period (which rolls forward to
end at each check), and what the last check found (``state``). ``safegrid warnings
check`` runs every watch and records in ``warnings`` each cell that became a new or
intensifying hot spot and each near-repeat risk zone that opened since the last check.
``(watch_id, key)`` is unique, so a check run twice records nothing twice; a warning
outlives its watch (``watch_id`` set to NULL).

Both tables carry the jurisdiction they are about and have row-level security for the
application role like incidents (0003): a request sees the rows of its scope's codes, an
admin all of them, and without settings nothing. A border partner's zone does not open
them (its scope names no codes).
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

APP_ROLE = "safegrid_app"
TABLES = ("watches", "warnings")
POLICY = """
    (SELECT current_setting('safegrid.scope_all', true) = 'on')
    OR jurisdiction_code = ANY ((SELECT string_to_array(
           nullif(current_setting('safegrid.scope_codes', true), ''), ','))::text[])
"""


def _when(name: str, nullable: bool = True, now: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable,
                     server_default=sa.text("now()") if now else None)


def upgrade() -> None:
    op.create_table(
        "watches",
        sa.Column("id", sa.BigInteger(), autoincrement=True, primary_key=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("jurisdiction_code", sa.Text(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("parameters", postgresql.JSONB(), nullable=False),
        sa.Column("period_s", sa.Float(), nullable=False),
        sa.Column("state", postgresql.JSONB(), nullable=False),
        _when("created_at", False, True),
        sa.Column("created_by", sa.Text(), nullable=False),
        _when("checked_at", False),
        sa.Column("last_run", sa.BigInteger()),
        sa.Column("last_error", sa.Text()),
        sa.CheckConstraint("kind IN ('emerging', 'near_repeat', 'risk_level')",
                           name="watches_kind"),
        sa.CheckConstraint("period_s > 0", name="watches_period"),
    )
    op.create_table(
        "warnings",
        sa.Column("id", sa.BigInteger(), autoincrement=True, primary_key=True),
        sa.Column("watch_id", sa.BigInteger(),
                  sa.ForeignKey("watches.id", ondelete="SET NULL")),
        sa.Column("jurisdiction_code", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False),
                  nullable=False),
        sa.Column("place", postgresql.JSONB(), nullable=False),
        sa.Column("message_zh", sa.Text(), nullable=False),
        sa.Column("message_en", sa.Text(), nullable=False),
        sa.Column("run_id", sa.BigInteger()),
        _when("created_at", False),
        _when("until"),
        sa.Column("acknowledged_by", sa.Text()),
        _when("acknowledged_at"),
        sa.CheckConstraint("kind IN ('emerging_hot_spot', 'near_repeat_zone', 'risk_level')",
                           name="warnings_kind"),
        sa.UniqueConstraint("watch_id", "key", name="warnings_once"),
    )
    op.create_index("ix_watches_jurisdiction", "watches", ["jurisdiction_code"])
    op.create_index("ix_warnings_jurisdiction", "warnings", ["jurisdiction_code"])
    op.create_index("ix_warnings_created_at", "warnings", ["created_at"])
    op.execute("CREATE INDEX ix_warnings_geom ON warnings USING gist (geom)")
    for table in TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
        op.execute(f"GRANT USAGE, SELECT ON SEQUENCE {table}_id_seq TO {APP_ROLE}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_in_scope ON {table} FOR ALL TO {APP_ROLE} "
                   f"USING ({POLICY}) WITH CHECK ({POLICY})")


def downgrade() -> None:
    op.drop_table("warnings")
    op.drop_table("watches")
