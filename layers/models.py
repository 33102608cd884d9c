"""SQLAlchemy / GeoAlchemy2 tables derived from the layer registry.

One table per layer, named after it: ``id`` (bigint key), ``geom`` (EPSG:4326, GiST
index), the declared fields, and ``version``/``updated_at``/``updated_by`` for
optimistic locking. A partitioned layer's table is ``PARTITION BY RANGE`` of its time
field, which then joins ``id`` in the primary key (:mod:`layers.partitions`). ``audit``
records every change.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from .registry import LAYERS, Field, Layer

__all__ = ["api_tokens", "audit", "layer_table", "metadata", "users"]

metadata = MetaData()

_SQL_TYPES = {"text": Text, "int": Integer, "float": Float, "datetime": DateTime(timezone=True)}
_GEOMETRY_TYPES = {
    "Point": "POINT",
    "LineString": "LINESTRING",
    "Polygon": "POLYGON",
    "MultiPolygon": "MULTIPOLYGON",
    "PointOrPolygon": "GEOMETRY",
}


def _field_column(f: Field, key: bool = False) -> Column:
    kind = _SQL_TYPES[f.type]
    nullable = not (f.required and not f.derived)
    default = f.default if f.default is not None else None
    return Column(f.name, kind, nullable=nullable, unique=f.unique or None, primary_key=key,
                  server_default=None if default is None else str(default))


def _layer_table(layer: Layer) -> Table:
    columns = [
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column(
            "geom",
            Geometry(_GEOMETRY_TYPES[layer.geometry], srid=4326, spatial_index=False),
            nullable=False,
        ),
        *(_field_column(f, layer.partitioned and f.name == layer.time_field)
          for f in layer.fields),
        Column("version", Integer, nullable=False, server_default="1"),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_by", Text, nullable=False, server_default="system"),
    ]
    options = {"postgresql_partition_by": f"RANGE ({layer.time_field})"} \
        if layer.partitioned else {}
    table = Table(layer.name, metadata, *columns, **options)
    Index(f"ix_{layer.name}_geom", table.c.geom, postgresql_using="gist")
    if layer.located:
        Index(f"ix_{layer.name}_jurisdiction_code", table.c.jurisdiction_code)
    if layer.time_field:
        Index(f"ix_{layer.name}_{layer.time_field}", table.c[layer.time_field])
    return table


_TABLES: dict[str, Table] = {name: _layer_table(layer) for name, layer in LAYERS.items()}

audit = Table(
    "audit",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", Text, nullable=False),
    Column("layer", Text, nullable=False),
    Column("feature_id", BigInteger),
    Column("action", Text, nullable=False),
    Column("before", JSONB),
    Column("after", JSONB),
)
Index("ix_audit_layer_feature", audit.c.layer, audit.c.feature_id)


users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False, unique=True),
    Column("role", Text, nullable=False),
    Column("jurisdiction_code", Text),
    Column("partner_code", Text),
    Column("partner_incidents", Text, nullable=False, server_default="points"),
    Column("password_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def layer_table(name: str) -> Table:
    """Return the table of layer ``name``."""
    return _TABLES[name]
