"""layer tables and audit

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "audit",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("feature_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_layer_feature", "audit", ["layer", "feature_id"], unique=False)
    op.create_geospatial_table(
        "buildings",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("height_m", sa.Float(), nullable=True),
        sa.Column("jurisdiction_code", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.Text(), server_default="system", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_geospatial_index(
        "ix_buildings_geom",
        "buildings",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        "ix_buildings_jurisdiction_code", "buildings", ["jurisdiction_code"], unique=False
    )
    op.create_geospatial_table(
        "cameras",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("bearing", sa.Float(), nullable=False),
        sa.Column("fov", sa.Float(), nullable=False),
        sa.Column("range_m", sa.Float(), nullable=False),
        sa.Column("height_m", sa.Float(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("jurisdiction_code", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.Text(), server_default="system", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_geospatial_index(
        "ix_cameras_geom",
        "cameras",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_cameras_jurisdiction_code", "cameras", ["jurisdiction_code"], unique=False)
    op.create_geospatial_table(
        "checkpoints",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("jurisdiction_code", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.Text(), server_default="system", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_geospatial_index(
        "ix_checkpoints_geom",
        "checkpoints",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        "ix_checkpoints_jurisdiction_code", "checkpoints", ["jurisdiction_code"], unique=False
    )
    op.create_geospatial_table(
        "grids",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("jurisdiction_code", sa.Text(), nullable=True),
        sa.Column("households", sa.Integer(), nullable=True),
        sa.Column("population", sa.Integer(), nullable=True),
        sa.Column("area_m2", sa.Float(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.Text(), server_default="system", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_geospatial_index(
        "ix_grids_geom", "grids", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index("ix_grids_jurisdiction_code", "grids", ["jurisdiction_code"], unique=False)
    op.create_geospatial_table(
        "household_units",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("grid_code", sa.Text(), nullable=False),
        sa.Column("head_household", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("jurisdiction_code", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.Text(), server_default="system", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_geospatial_index(
        "ix_household_units_geom",
        "household_units",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        "ix_household_units_jurisdiction_code",
        "household_units",
        ["jurisdiction_code"],
        unique=False,
    )
    op.create_geospatial_table(
        "households",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=False),
        sa.Column("head_name", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("jurisdiction_code", sa.Text(), nullable=True),
        sa.Column("grid_code", sa.Text(), nullable=True),
        sa.Column("unit_code", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.Text(), server_default="system", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_geospatial_index(
        "ix_households_geom",
        "households",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        "ix_households_jurisdiction_code", "households", ["jurisdiction_code"], unique=False
    )
    op.create_geospatial_table(
        "incidents",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("severity", sa.Integer(), server_default="1", nullable=True),
        sa.Column("jurisdiction_code", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.Text(), server_default="system", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_geospatial_index(
        "ix_incidents_geom",
        "incidents",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        "ix_incidents_jurisdiction_code", "incidents", ["jurisdiction_code"], unique=False
    )
    op.create_index("ix_incidents_occurred_at", "incidents", ["occurred_at"], unique=False)
    op.create_geospatial_table(
        "jurisdictions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("parent_code", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.Text(), server_default="system", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_geospatial_index(
        "ix_jurisdictions_geom",
        "jurisdictions",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_table(
        "key_areas",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "geom",
            Geometry(
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("security_staff", sa.Integer(), server_default="0", nullable=True),
        sa.Column("jurisdiction_code", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.Text(), server_default="system", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_check_constraint(
        "ck_key_areas_point_or_polygon",
        "key_areas",
        "GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON')",
    )
    op.create_geospatial_index(
        "ix_key_areas_geom",
        "key_areas",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        "ix_key_areas_jurisdiction_code", "key_areas", ["jurisdiction_code"], unique=False
    )
    op.create_geospatial_table(
        "roads",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="LINESTRING",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("class", sa.Text(), nullable=False),
        sa.Column("jurisdiction_code", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.Text(), server_default="system", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_geospatial_index(
        "ix_roads_geom", "roads", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index("ix_roads_jurisdiction_code", "roads", ["jurisdiction_code"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_roads_jurisdiction_code", table_name="roads")
    op.drop_geospatial_index(
        "ix_roads_geom", table_name="roads", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("roads")
    op.drop_index("ix_key_areas_jurisdiction_code", table_name="key_areas")
    op.drop_geospatial_index(
        "ix_key_areas_geom", table_name="key_areas", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("key_areas")
    op.drop_geospatial_index(
        "ix_jurisdictions_geom",
        table_name="jurisdictions",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("jurisdictions")
    op.drop_index("ix_incidents_occurred_at", table_name="incidents")
    op.drop_index("ix_incidents_jurisdiction_code", table_name="incidents")
    op.drop_geospatial_index(
        "ix_incidents_geom", table_name="incidents", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("incidents")
    op.drop_index("ix_households_jurisdiction_code", table_name="households")
    op.drop_geospatial_index(
        "ix_households_geom", table_name="households", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("households")
    op.drop_index("ix_household_units_jurisdiction_code", table_name="household_units")
    op.drop_geospatial_index(
        "ix_household_units_geom",
        table_name="household_units",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("household_units")
    op.drop_index("ix_grids_jurisdiction_code", table_name="grids")
    op.drop_geospatial_index(
        "ix_grids_geom", table_name="grids", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("grids")
    op.drop_index("ix_checkpoints_jurisdiction_code", table_name="checkpoints")
    op.drop_geospatial_index(
        "ix_checkpoints_geom", table_name="checkpoints", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("checkpoints")
    op.drop_index("ix_cameras_jurisdiction_code", table_name="cameras")
    op.drop_geospatial_index(
        "ix_cameras_geom", table_name="cameras", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("cameras")
    op.drop_index("ix_buildings_jurisdiction_code", table_name="buildings")
    op.drop_geospatial_index(
        "ix_buildings_geom", table_name="buildings", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("buildings")
    op.drop_index("ix_audit_layer_feature", table_name="audit")
    op.drop_table("audit")
