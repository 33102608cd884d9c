"""hotspot runs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

Every hot-spot, emerging hot-spot and evaluation request is kept with its parameters
and result, so that a reviewer can reopen a run and compare it with another.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hotspot_runs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("jurisdiction_code", sa.Text(), nullable=False),
        sa.Column("parameters", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("summary", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_hotspot_runs_jurisdiction", "hotspot_runs", ["jurisdiction_code"])


def downgrade() -> None:
    op.drop_index("ix_hotspot_runs_jurisdiction", "hotspot_runs")
    op.drop_table("hotspot_runs")
