"""grid context counts and joint-household unit status

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Grids gain two derived counts (key areas they touch, incidents in the last 30 days);
joint-household units gain ``status``: ``stale`` once their grid's shape changed,
``current`` again when they are regenerated (found by grid code, hence its index).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("grids", sa.Column("key_areas", sa.Integer(), nullable=True))
    op.add_column("grids", sa.Column("incidents_30d", sa.Integer(), nullable=True))
    op.add_column("household_units",
                  sa.Column("status", sa.Text(), nullable=True, server_default="current"))
    op.create_index("ix_household_units_grid_code", "household_units", ["grid_code"])


def downgrade() -> None:
    op.drop_index("ix_household_units_grid_code", "household_units")
    op.drop_column("household_units", "status")
    op.drop_column("grids", "incidents_30d")
    op.drop_column("grids", "key_areas")
