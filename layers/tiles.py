"""Mapbox vector tiles of a layer, made by PostGIS (``ST_AsMVT``), within a scope."""

from __future__ import annotations

from sqlalchemy import Connection, text

from .features import Scope
from .registry import Layer
from .store import q

__all__ = ["MAX_ZOOM", "layer_tile"]

MAX_ZOOM = 22
EXTENT = 4096
BUFFER = 64


def layer_tile(conn: Connection, layer: Layer, z: int, x: int, y: int, scope: Scope) -> bytes:
    """The MVT tile z/x/y (Web Mercator) of ``layer``: one MVT layer named after it.

    Properties are the declared fields (personal ones only when the scope allows);
    date-times are ISO 8601 text. Feature ids are the layer's ids.
    """
    fields = [f for f in layer.fields if scope.personal or not f.personal]
    columns = ", ".join(
        f"t.{q(f.name)}::text AS {q(f.name)}" if f.type == "datetime" else f"t.{q(f.name)}"
        for f in fields)
    where = f"AND ({scope.condition})" if scope.condition else ""
    sql = f"""
        WITH bounds AS (SELECT ST_TileEnvelope(:z, :x, :y) AS merc,
                               ST_Transform(ST_TileEnvelope(:z, :x, :y, margin =>
                                   {BUFFER / EXTENT}), 4326) AS geo),
        mvt AS (
            SELECT ST_AsMVTGeom(ST_Transform(t.geom, 3857), bounds.merc, {EXTENT}, {BUFFER},
                                true) AS geom, t.id, {columns}
            FROM {q(layer.name)} t, bounds
            WHERE t.geom && bounds.geo {where})
        SELECT ST_AsMVT(mvt.*, :name, {EXTENT}, 'geom', 'id') FROM mvt
        WHERE mvt.geom IS NOT NULL"""
    params = {**scope.params, "z": z, "x": x, "y": y, "name": layer.name}
    tile = conn.execute(text(sql), params).scalar_one()
    return bytes(tile or b"")
