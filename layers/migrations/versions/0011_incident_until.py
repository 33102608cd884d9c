"""incidents: occurred_until, the end of the time an incident happened in

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

A burglary found in the morning happened some time in the night: ``occurred_at`` is the
start of that time and ``occurred_until`` (optional) its end. The column is added to the
partitioned ``incidents`` (PostgreSQL adds it to every monthly partition), with a check
that it is not before ``occurred_at``; import refuses such rows first, with their reason.
The statement-level version triggers of 0010 need no change.
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE incidents ADD COLUMN occurred_until timestamptz")
    op.execute("ALTER TABLE incidents ADD CONSTRAINT incidents_until_not_before_start "
               "CHECK (occurred_until IS NULL OR occurred_until >= occurred_at)")


def downgrade() -> None:
    op.execute("ALTER TABLE incidents DROP CONSTRAINT IF EXISTS "
               "incidents_until_not_before_start")
    op.execute("ALTER TABLE incidents DROP COLUMN IF EXISTS occurred_until")
