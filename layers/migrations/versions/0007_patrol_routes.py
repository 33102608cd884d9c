"""patrol routes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23

Joint border patrol routes (联防巡逻路线): one line per team, with its border (the two
cities' codes), team number, workload and suggested hours; editable by police and by
border partners within their zone.
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_geospatial_table(
        "patrol_routes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("geom", Geometry(geometry_type="LINESTRING", srid=4326, dimension=2,
                                   spatial_index=False, from_text="ST_GeomFromEWKT",
                                   name="geometry", nullable=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("border", sa.Text(), nullable=False),
        sa.Column("team", sa.Integer(), nullable=False),
        sa.Column("workload", sa.Float(), nullable=True),
        sa.Column("hours", sa.Text(), nullable=True),
        sa.Column("jurisdiction_code", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("updated_by", sa.Text(), server_default="system", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_geospatial_index("ix_patrol_routes_geom", "patrol_routes", ["geom"],
                               unique=False, postgresql_using="gist", postgresql_ops={})
    op.create_index("ix_patrol_routes_jurisdiction_code", "patrol_routes",
                    ["jurisdiction_code"], unique=False)
    op.create_index("ix_patrol_routes_border", "patrol_routes", ["border"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_patrol_routes_border", table_name="patrol_routes")
    op.drop_index("ix_patrol_routes_jurisdiction_code", table_name="patrol_routes")
    op.drop_geospatial_index("ix_patrol_routes_geom", table_name="patrol_routes",
                             postgresql_using="gist", column_name="geom")
    op.drop_geospatial_table("patrol_routes")
