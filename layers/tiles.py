"""Mapbox vector tiles of a layer, made by PostGIS (``ST_AsMVT``), within a scope."""

from __future__ import annotations

from sqlalchemy import Connection, text

from .features import Scope
from .registry import Layer
from .store import q

__all__ = ["BASEMAP_LAYERS", "MAX_ZOOM", "basemap_tile", "layer_tile"]

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


# The offline basemap's MVT layers, drawn in this order: name -> (source layer, the
# smallest zoom that carries it, geometry, attributes, extra condition, buffer). Minor
# roads and the finer boundaries start at closer zooms, so a city-wide tile stays small.
# A place (a label point) is in every tile its name may reach into, so that each tile
# draws its part of the name.
BASEMAP_LAYERS = {
    "buildings": ("buildings", 14, "t.geom", "", "", BUFFER),
    "roads": ("roads", 10, "t.geom", ", t.class, t.name",
              "AND (:z >= 13 OR t.class IN ('motorway', 'arterial', 'collector'))", BUFFER),
    "boundaries": ("jurisdictions", 0, "ST_Boundary(t.geom)", ", t.level, t.name",
                   "AND (:z >= 12 OR t.level IN ('province', 'city', 'district'))", BUFFER),
    "places": ("jurisdictions", 9, "ST_PointOnSurface(t.geom)", ", t.level, t.name",
               "AND (:z >= 13 OR t.level IN ('city', 'district') "
               "OR (:z >= 11 AND t.level = 'street'))", EXTENT // 4),
}


def basemap_tile(conn: Connection, z: int, x: int, y: int,
                 scopes: dict[str, Scope]) -> bytes:
    """The offline basemap's MVT tile z/x/y (Web Mercator), within ``scopes``.

    Parameters
    ----------
    conn
        A connection, already in the caller's scope (:func:`layers.access.enter_scope`).
    z, x, y
        The tile.
    scopes
        The caller's scope of each source layer (``roads``, ``buildings``,
        ``jurisdictions``).

    Returns
    -------
    bytes
        One MVT layer per entry of :data:`BASEMAP_LAYERS` that has features here:
        ``buildings``, ``roads`` (``class``, ``name``), ``boundaries`` (jurisdiction
        outlines with ``level``, ``name``) and ``places`` (a point inside each
        jurisdiction with its ``level`` and ``name``, for labels).
    """
    parts = [_basemap_part(conn, name, z, x, y, scopes[source])
             for name, (source, min_zoom, *_) in BASEMAP_LAYERS.items() if z >= min_zoom]
    return b"".join(parts)


def _basemap_part(conn: Connection, name: str, z: int, x: int, y: int,
                  scope: Scope) -> bytes:
    where = f"AND ({scope.condition})" if scope.condition else ""
    sql = f"""
        WITH bounds AS (SELECT ST_TileEnvelope(:z, :x, :y) AS merc,
                               ST_Transform(ST_TileEnvelope(:z, :x, :y, margin =>
                                   {BASEMAP_LAYERS[name][5] / EXTENT}), 4326) AS geo),
        mvt AS (
            SELECT ST_AsMVTGeom(ST_Transform({BASEMAP_LAYERS[name][2]}, 3857), bounds.merc,
                                {EXTENT}, {BASEMAP_LAYERS[name][5]}, true) AS geom
                   {BASEMAP_LAYERS[name][3]}
            FROM {q(BASEMAP_LAYERS[name][0])} t, bounds
            WHERE t.geom && bounds.geo {BASEMAP_LAYERS[name][4]} {where})
        SELECT ST_AsMVT(mvt.*, :name, {EXTENT}, 'geom') FROM mvt WHERE mvt.geom IS NOT NULL"""
    params = {**scope.params, "z": z, "x": x, "y": y, "name": name}
    return bytes(conn.execute(text(sql), params).scalar_one() or b"")
