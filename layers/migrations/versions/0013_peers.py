"""peers: other cities' safegrid servers, and what was last read from each (边界联防)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

A peer is the server of a neighbouring city for the border between one of our
jurisdictions (``a``) and one of theirs (``b``); ``(a, b)`` is unique. Its token is not
kept here but in a file readable by the owner only under ``$SAFEGRID_HOME/peers``.
``last_contact``, ``last_error`` and ``last_error_at`` say how the last exchange went.

``peer_features`` keeps the features last read from a peer's collections (within the
border zone's bounding box), ``peer_collections`` when each collection was read, over
which box, and the ETag that revalidates it. Removing a peer removes its features.
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

APP_ROLE = "safegrid_app"


def _when(name: str, nullable: bool = True, now: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable,
                     server_default=sa.text("now()") if now else None)


def upgrade() -> None:
    op.create_table(
        "peers",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("a", sa.Text(), nullable=False),
        sa.Column("b", sa.Text(), nullable=False),
        _when("added_at", False, True),
        sa.Column("added_by", sa.Text(), nullable=False),
        _when("last_contact"),
        sa.Column("last_error", sa.Text()),
        _when("last_error_at"),
        sa.CheckConstraint("name ~ '^[a-z0-9][a-z0-9_-]{0,39}$'", name="peers_name"),
        sa.CheckConstraint("url ~ '^https?://'", name="peers_url"),
        sa.CheckConstraint("a <> b", name="peers_two_sides"),
        sa.UniqueConstraint("a", "b", name="peers_one_per_border"),
    )
    op.create_table(
        "peer_collections",
        sa.Column("peer", sa.Text(), sa.ForeignKey("peers.name", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("collection", sa.Text(), primary_key=True),
        sa.Column("bbox", postgresql.ARRAY(sa.Float()), nullable=False),
        sa.Column("etag", sa.Text()),
        _when("fetched_at", False),
        sa.Column("features", sa.Integer(), nullable=False),
    )
    op.create_table(
        "peer_features",
        sa.Column("peer", sa.Text(), primary_key=True),
        sa.Column("collection", sa.Text(), primary_key=True),
        sa.Column("feature_id", sa.BigInteger(), primary_key=True),
        sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False),
                  nullable=False),
        sa.Column("properties", postgresql.JSONB(), nullable=False),
        sa.ForeignKeyConstraint(["peer", "collection"],
                                ["peer_collections.peer", "peer_collections.collection"],
                                ondelete="CASCADE"),
    )
    op.execute("CREATE INDEX ix_peer_features_geom ON peer_features USING gist (geom)")
    for table in ("peers", "peer_collections", "peer_features"):
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")


def downgrade() -> None:
    op.drop_table("peer_features")
    op.drop_table("peer_collections")
    op.drop_table("peers")
