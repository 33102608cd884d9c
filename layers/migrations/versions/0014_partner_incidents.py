"""users.partner_incidents: what a border partner is given of our incidents (边界联防)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

A ``border_partner`` user (the other city's server reading our side of the border) is
given our incidents in the border zone either as points (``points``, the default: each
incident's place, time, category and severity) or only as counts per 250 m cell of the
zone (``cells``: the collection ``incident_cells``), as our administrator decides.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("partner_incidents", sa.Text(), nullable=False,
                                     server_default="points"))
    op.create_check_constraint("users_partner_incidents", "users",
                               "partner_incidents IN ('points', 'cells')")


def downgrade() -> None:
    op.drop_constraint("users_partner_incidents", "users")
    op.drop_column("users", "partner_incidents")
