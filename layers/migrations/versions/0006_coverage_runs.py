"""coverage runs

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

Coverage gap and camera siting answers are kept with their parameters, like hot-spot
runs, so that a proposal can be reopened and reviewed.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coverage_runs",
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
    op.create_index("ix_coverage_runs_jurisdiction", "coverage_runs", ["jurisdiction_code"])


def downgrade() -> None:
    op.drop_index("ix_coverage_runs_jurisdiction", "coverage_runs")
    op.drop_table("coverage_runs")
