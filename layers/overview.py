"""What the overview map (``/map``) reads: cities, layer features in a view, counts, heat.

The overview lists each layer a user may see with its count in one city; once a layer
is on, the browser asks for its features in the view (a bounding box and a zoom),
simplified to half a pixel and in the caller's scope. Coordinates are degrees,
EPSG:4326; a bounding box is ``(west, south, east, north)``.

The web layer only asks and draws: every query of the overview is here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import Connection, text

from .access import enter_scope, read_scope
from .errors import BadRequest
from .features import Scope, matched_count, table_version
from .registry import LAYERS
from .store import q
from .users import User

__all__ = ["HEAT_CELL", "SOURCES", "SPECIAL_SOURCES", "City", "Source", "cities",
           "city_borders", "city_count", "extent", "feature_counts", "heat_points",
           "incident_count", "layer_features", "view_layer"]

BBox = tuple[float, float, float, float]  # west, south, east, north (degrees, EPSG:4326)


@dataclass(frozen=True)
class City:
    """A city the map can show."""

    code: str
    name: str


@dataclass(frozen=True)
class Source:
    """What one request of the overview draws: a layer's features and their tooltip.

    ``where`` is a fixed SQL condition on the layer (alias ``t``); ``fields`` are the
    properties each feature carries and its tooltip shows.
    """

    layer: str
    fields: tuple[str, ...]
    where: str = ""

    def shown_fields(self) -> list[str]:
        """The fields a map may show (never a personal one), in declared order."""
        layer = LAYERS[self.layer]
        return [f for f in self.fields if not layer.get_field(f).personal]


# The overview's sources: each is fetched for the view (bbox) once one of its overlays is
# on. Key areas are one source, split by category into overlays in the browser.
SOURCES = {
    "communities": Source("jurisdictions", ("name", "code"),
                          "AND t.level IN ('community', 'village')"),
    "roads": Source("roads", ("name", "class")),
    "grids": Source("grids", ("code", "name", "kind", "households", "population")),
    "key_areas": Source("key_areas", ("name", "category")),
    "cameras": Source("cameras", ("code", "status", "bearing", "fov", "range_m")),
    "checkpoints": Source("checkpoints", ("name", "kind")),
}
SPECIAL_SOURCES = ("borders", "heat")  # city outlines; incidents as a heat map
HEAT_CELL = 0.0005  # degrees: the finest cell incidents are counted in for the heat map


def cities(conn: Connection, user: User) -> list[City]:
    """The cities that overlap what ``user`` may see (admins: all).

    A city overlaps the user's jurisdiction (or border partner's) when it is that
    jurisdiction, lies in it or holds it (compared by a point on each surface).

    Returns
    -------
    list of City
        Ordered by code.
    """
    if user.role == "admin":
        where, params = "", {}
    else:
        codes = [user.jurisdiction] + ([user.partner] if user.partner else [])
        where = ("AND EXISTS (SELECT 1 FROM jurisdictions u WHERE u.code = ANY(:codes) "
                 "AND (u.code = c.code OR ST_Within(ST_PointOnSurface(u.geom), c.geom) "
                 "OR ST_Within(ST_PointOnSurface(c.geom), u.geom)))")
        params = {"codes": codes}
    rows = conn.execute(text(
        f"SELECT c.code, c.name FROM jurisdictions c WHERE c.level = 'city' {where} "
        "ORDER BY c.code"), params).mappings()
    return [City(r["code"], r["name"]) for r in rows]


def city_count(conn: Connection) -> int:
    """How many cities are stored (all of them: where cities meet is no secret)."""
    return conn.execute(text("SELECT count(*) FROM jurisdictions WHERE level = 'city'")
                        ).scalar_one()


def extent(conn: Connection, codes: list[str]) -> list[list[float]] | None:
    """The bounding box of the jurisdictions ``codes`` together, as Leaflet fits it.

    Returns
    -------
    list or None
        ``[[south, west], [north, east]]`` in degrees (EPSG:4326); None when no code
        is stored.
    """
    row = conn.execute(text(
        "SELECT ST_YMin(e) AS south, ST_XMin(e) AS west, ST_YMax(e) AS north, "
        "ST_XMax(e) AS east FROM (SELECT ST_Extent(geom) AS e FROM jurisdictions "
        "WHERE code = ANY(:c)) x"), {"c": list(codes)}).mappings().one()
    if row["south"] is None:
        return None
    return [[row["south"], row["west"]], [row["north"], row["east"]]]


def _detail(zoom: int) -> tuple[float, int]:
    """Simplification tolerance (degrees, half a pixel) and decimals at ``zoom``."""
    pixel = 360.0 / (256 * 2 ** max(0, min(zoom, 22)))
    tolerance = pixel / 2 if zoom < 16 else 0.0
    return tolerance, max(4, min(7, math.ceil(-math.log10(pixel)) + 1))


def _box(bbox: BBox) -> dict:
    return dict(zip(("w", "s", "e", "n"), bbox, strict=True))


def layer_features(conn: Connection, source: Source, city: str, scope: Scope,
                   bbox: BBox, zoom: int) -> dict:
    """``source``'s features in ``city``, ``scope`` and ``bbox``, drawn at ``zoom``.

    Parameters
    ----------
    conn
        A connection, in ``scope`` for row-level security (:func:`layers.access.enter_scope`).
    source
        One of :data:`SOURCES`.
    city
        The code of the jurisdiction the features must intersect.
    scope
        The caller's scope of the source's layer.
    bbox
        ``(west, south, east, north)`` in degrees (EPSG:4326); a feature whose bounding
        box meets it is in.
    zoom
        The web map's zoom level (0-22): lines and polygons are simplified to half a
        pixel below zoom 16 (points never), coordinates rounded to what a pixel shows.

    Returns
    -------
    dict
        A GeoJSON FeatureCollection (lon/lat), each feature with its id and
        :meth:`Source.shown_fields`; grids also carry a point inside each (``_lat``,
        ``_lng``) for their labels.
    """
    layer = LAYERS[source.layer]
    where = source.where
    if scope.condition:
        where += f" AND ({scope.condition})"
    props = ", ".join(f"'{f}', t.{q(f)}" for f in source.shown_fields())
    if source.layer == "grids":
        props += (", '_lat', ST_Y(ST_PointOnSurface(t.geom)), "
                  "'_lng', ST_X(ST_PointOnSurface(t.geom))")
    tolerance, digits = _detail(zoom)
    if layer.geometry in ("Point", "PointOrPolygon"):
        tolerance = 0.0
    sql = f"""
        SELECT json_build_object('type', 'FeatureCollection', 'features',
               coalesce(json_agg(json_build_object(
                   'type', 'Feature', 'id', t.id,
                   'geometry', ST_AsGeoJSON(CASE WHEN :tol > 0
                       THEN ST_SimplifyPreserveTopology(t.geom, :tol) ELSE t.geom END,
                       :digits)::json,
                   'properties', json_build_object({props}))), '[]'::json))
        FROM {q(layer.name)} t, jurisdictions c
        WHERE c.code = :city AND t.geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326)
          AND ST_Intersects(t.geom, c.geom) {where}"""
    return conn.execute(text(sql), {**scope.params, "city": city, "tol": tolerance,
                                    "digits": digits, **_box(bbox)}).scalar_one()


def city_borders(conn: Connection, bbox: BBox, zoom: int) -> dict:
    """The outlines of every city whose bounding box meets ``bbox`` (degrees, EPSG:4326).

    No scope: where cities meet is no secret. Simplified to half a pixel at ``zoom``.

    Returns
    -------
    dict
        A GeoJSON FeatureCollection of lines (lon/lat) with ``name`` and ``code``.
    """
    tolerance, digits = _detail(zoom)
    return conn.execute(text("""
        SELECT json_build_object('type', 'FeatureCollection', 'features',
               coalesce(json_agg(json_build_object('type', 'Feature',
                   'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(ST_Boundary(geom),
                                                                        :tol), :digits)::json,
                   'properties', json_build_object('name', name, 'code', code))), '[]'::json))
        FROM jurisdictions WHERE level = 'city'
          AND geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326)"""),
        {"tol": tolerance, "digits": digits, **_box(bbox)}).scalar_one()


def heat_points(conn: Connection, city: str, scope: Scope, bbox: BBox, zoom: int) -> dict:
    """Incidents in ``city``, ``scope`` and ``bbox``, counted in cells of about a pixel.

    Cells are squares of a pixel at ``zoom`` in degrees, at least :data:`HEAT_CELL`;
    each incident is snapped to the nearest cell corner.

    Returns
    -------
    dict
        ``{"points": [[lat, lng, weight], ...]}``: the corners (6 decimals) and their
        count over the largest count (4 decimals, the largest is 1).
    """
    where = f"AND ({scope.condition})" if scope.condition else ""
    cell = max(HEAT_CELL, 360.0 / (256 * 2 ** max(0, min(zoom, 22))))
    rows = conn.execute(text(f"""
        SELECT ST_Y(cell) AS lat, ST_X(cell) AS lng, n FROM (
            SELECT ST_SnapToGrid(t.geom, :cell) AS cell, count(*) AS n
            FROM incidents t, jurisdictions c
            WHERE c.code = :city AND t.geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326)
              AND ST_Intersects(t.geom, c.geom) {where} GROUP BY 1) s"""),
        {**scope.params, "city": city, "cell": cell, **_box(bbox)}).mappings().all()
    top = max((r["n"] for r in rows), default=1)
    return {"points": [[round(r["lat"], 6), round(r["lng"], 6), round(r["n"] / top, 4)]
                       for r in rows]}


def view_layer(conn: Connection, user: User, city: str, source: str, bbox: BBox,
               zoom: int) -> dict:
    """What the overview draws of ``source`` in ``city`` within ``bbox`` at ``zoom``.

    ``borders``: :func:`city_borders`; ``heat``: :func:`heat_points`; else
    :func:`layer_features` of ``SOURCES[source]``, in ``user``'s scope (row-level
    security is entered on ``conn``).

    Raises
    ------
    BadRequest
        When ``source`` is not one of :data:`SOURCES` or :data:`SPECIAL_SOURCES`.
    Forbidden
        When the user's role may not see the layer.
    """
    if source not in SOURCES and source not in SPECIAL_SOURCES:
        raise BadRequest(f"unknown overview layer {source!r}; known: "
                         f"{', '.join([*SOURCES, *SPECIAL_SOURCES])}")
    if source == "borders":
        return city_borders(conn, bbox, zoom)
    scope = read_scope(conn, user, LAYERS["incidents" if source == "heat"
                                           else SOURCES[source].layer])
    enter_scope(conn, scope)
    if source == "heat":
        return heat_points(conn, city, scope, bbox, zoom)
    return layer_features(conn, SOURCES[source], city, scope, bbox, zoom)


def feature_counts(conn: Connection, source: Source, city: str, scope: Scope
                   ) -> dict[str, int]:
    """How many features of ``source`` intersect ``city`` in ``scope``.

    Returns
    -------
    dict
        Key areas: count per category; other sources: ``{"": count}`` (empty when none).
    """
    where = source.where
    if scope.condition:
        where += f" AND ({scope.condition})"
    rows = conn.execute(text(f"""
        SELECT {"t.category" if source.layer == "key_areas" else "''"} AS key, count(*) AS n
        FROM {q(source.layer)} t, jurisdictions c
        WHERE c.code = :city AND ST_Intersects(t.geom, c.geom) {where} GROUP BY 1"""),
        {**scope.params, "city": city}).mappings()
    return {r["key"]: r["n"] for r in rows}


def incident_count(conn: Connection, city: str, scope: Scope) -> int:
    """Incidents in ``city`` and ``scope``, kept until incidents or jurisdictions change.

    The count is :func:`layers.features.matched_count`'s, reused under the incidents'
    table version; the jurisdictions' version is part of its key.
    """
    clauses = ["ST_Intersects(t.geom, (SELECT c.geom FROM jurisdictions c "
               "WHERE c.code = :city AND :jurisdictions_version IS NOT NULL))"]
    if scope.condition:
        clauses.append(f"({scope.condition})")
    params = {**scope.params, "city": city,
              "jurisdictions_version": table_version(conn, "jurisdictions") or 0}
    return matched_count(conn, LAYERS["incidents"], clauses, params)[0]
