"""Feature queries for the HTTP API: pages of GeoJSON built in PostGIS.

A page is selected by bounding box, time interval, equality filters and the caller's
scope, ordered by ``id`` and cut by keyset (``after``/``before`` an id), so deep pages
cost the same as the first. The GeoJSON features are assembled by PostgreSQL
(``json_build_object``); Python only wraps the array with links.

Every page says how many features match in all (``numberMatched``), exactly. A count
is kept in memory under the version of the layer's table (``layer_versions``, which
triggers bump on every write that changes rows: imports, edits, grid edits, derived
fields, plain SQL) and under the query and scope it counted, so paging costs one count
per query until the layer changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from .registry import Layer
from .store import q

__all__ = [
    "OUTPUT_CRS",
    "ItemQuery",
    "Page",
    "Scope",
    "collection_extent",
    "fetch_ids",
    "fetch_item",
    "fetch_page",
    "matched_count",
    "table_version",
]

# Output CRS: URI -> (SQL geometry expression template, coordinate decimals).
OUTPUT_CRS: dict[str, tuple[str, int]] = {
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84": ("{g}", 7),
    "http://www.opengis.net/def/crs/EPSG/0/4326": ("ST_FlipCoordinates({g})", 7),
    "http://www.opengis.net/def/crs/EPSG/0/3857": ("ST_Transform({g}, 3857)", 2),
}
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
# Exact counts kept (least recently used go first): (layer, version, query) -> count.
COUNTS_KEPT = 4096
_COUNTS: OrderedDict[tuple[str, int, str], int] = OrderedDict()
_COUNTS_LOCK = threading.Lock()


@dataclass(frozen=True)
class Scope:
    """Rows a caller may see: a SQL condition on alias ``t`` and its parameters.

    ``None`` condition means everything. Built by the web layer from the user.
    """

    condition: str | None = None
    params: dict = field(default_factory=dict)
    personal: bool = False  # may see personal fields (household head, phone)
    # The same scope for PostgreSQL's row-level security (transaction settings).
    rls: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemQuery:
    """What a client asked of a collection's items (already parsed and checked)."""

    bbox: tuple[float, float, float, float] | None = None  # lon/lat, EPSG:4326
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    filters: dict[str, object] = field(default_factory=dict)
    limit: int = 100
    after: int | None = None
    before: int | None = None
    crs: str = CRS84


@dataclass(frozen=True)
class Page:
    """One page of features: the GeoJSON array as text and how it sits in the whole."""

    features_json: str
    returned: int
    first_id: int | None
    last_id: int | None
    more_after: bool
    more_before: bool
    matched: int
    counted: bool = False  # the count was made for this page (not kept from an earlier one)


def _feature_sql(layer: Layer, crs: str, personal: bool) -> str:
    template, decimals = OUTPUT_CRS[crs]
    fields = [f.name for f in layer.fields if personal or not f.personal]
    props = ", ".join(f"'{f}', t.{q(f)}" for f in fields)
    geom = template.format(g="t.geom")
    return (
        "json_build_object('type', 'Feature', 'id', t.id, "
        f"'geometry', ST_AsGeoJSON({geom}, {decimals})::json, "
        f"'properties', json_build_object({props}))"
    )


def _where(layer: Layer, query: ItemQuery, scope: Scope) -> tuple[list[str], dict]:
    clauses: list[str] = []
    params: dict = dict(scope.params)
    if scope.condition:
        clauses.append(f"({scope.condition})")
    if query.bbox is not None:
        params.update(dict(zip(("bx0", "by0", "bx1", "by1"), query.bbox, strict=True)))
        clauses.append("t.geom && ST_MakeEnvelope(:bx0, :by0, :bx1, :by1, 4326) AND "
                       "ST_Intersects(t.geom, ST_MakeEnvelope(:bx0, :by0, :bx1, :by1, 4326))")
    if layer.time_field and query.start is not None:
        clauses.append(f"t.{q(layer.time_field)} >= :t_start")
        params["t_start"] = query.start
    if layer.time_field and query.end is not None:
        clauses.append(f"t.{q(layer.time_field)} <= :t_end")
        params["t_end"] = query.end
    for i, (name, value) in enumerate(sorted(query.filters.items())):
        clauses.append(f"t.{q(name)} = :f{i}")
        params[f"f{i}"] = value
    return clauses, params


def fetch_page(conn: Connection, layer: Layer, query: ItemQuery, scope: Scope) -> Page:
    """One page of ``layer`` features for ``query`` within ``scope``, with the exact count."""
    clauses, params = _where(layer, query, scope)
    matched, counted = matched_count(conn, layer, clauses, params)
    keyset = list(clauses)
    backwards = query.before is not None and query.after is None
    if query.after is not None:
        keyset.append("t.id > :after")
        params["after"] = query.after
    if query.before is not None:
        keyset.append("t.id < :before")
        params["before"] = query.before
    where = " AND ".join(keyset) or "TRUE"
    # A page is a short index walk: parallel workers only add start-up time.
    conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    params["n1"] = query.limit + 1
    params["n"] = query.limit
    sql = f"""
        WITH page AS (
            SELECT t.id, {_feature_sql(layer, query.crs, scope.personal)} AS f
            FROM {q(layer.name)} t WHERE {where}
            ORDER BY t.id {'DESC' if backwards else 'ASC'} LIMIT :n1),
        kept AS (SELECT id, f FROM page ORDER BY id {'DESC' if backwards else 'ASC'} LIMIT :n)
        SELECT (SELECT count(*) FROM page),
               coalesce((SELECT json_agg(f ORDER BY id) FROM kept)::text, '[]'),
               (SELECT count(*) FROM kept), (SELECT min(id) FROM kept),
               (SELECT max(id) FROM kept)"""
    fetched, features, returned, first, last = conn.execute(text(sql), params).one()
    extra = fetched > query.limit
    more_after = extra if not backwards else True
    more_before = (query.after is not None) or (backwards and extra)
    return Page(features, returned, first, last, more_after and returned > 0,
                more_before and returned > 0, matched, counted)


def table_version(conn: Connection, name: str) -> int | None:
    """The version of table ``name`` (one more after each write that changed rows).

    None for a table whose writes are not tracked (see migration 0010).
    """
    return conn.execute(text("SELECT version FROM layer_versions WHERE layer = :layer"),
                        {"layer": name}).scalar_one_or_none()


def _count_key(name: str, version: int, where: str, params: dict) -> tuple[str, int, str]:
    """Key of a kept count: the table, its version, and the condition with its values.

    The scope is part of the condition and its values (a user's jurisdictions or border
    zone), so a count is only ever given to a query of the same scope.
    """
    values = repr(sorted((k, repr(v)) for k, v in params.items()))
    return name, version, hashlib.sha256(f"{where}\0{values}".encode()).hexdigest()


def matched_count(conn: Connection, layer: Layer, clauses: list[str],
                  params: dict) -> tuple[int, bool]:
    """Exact number of ``layer`` rows meeting ``clauses``; and whether it was counted now.

    A count is kept under the table's version: it is reused until a write changes the
    table. The version and the count come from one statement (one snapshot), so a write
    committing in between cannot leave an old count under the new version.
    """
    where = " AND ".join(clauses) or "TRUE"
    version = table_version(conn, layer.name)
    if version is not None:
        with _COUNTS_LOCK:
            key = _count_key(layer.name, version, where, params)
            if key in _COUNTS:
                _COUNTS.move_to_end(key)
                return _COUNTS[key], False
    version, n = conn.execute(text(
        "SELECT (SELECT version FROM layer_versions WHERE layer = :count_layer), "
        f"count(*) FROM {q(layer.name)} t WHERE {where}"),
        {**params, "count_layer": layer.name}).one()
    if version is not None:
        with _COUNTS_LOCK:
            _COUNTS[_count_key(layer.name, version, where, params)] = n
            while len(_COUNTS) > COUNTS_KEPT:
                _COUNTS.popitem(last=False)
    return n, True


def fetch_item(conn: Connection, layer: Layer, feature_id: int, scope: Scope,
               crs: str = CRS84) -> tuple[str, int] | None:
    """One feature as GeoJSON text and its version, or None when absent or out of scope."""
    where = f"t.id = :fid AND ({scope.condition})" if scope.condition else "t.id = :fid"
    row = conn.execute(
        text(f"SELECT {_feature_sql(layer, crs, scope.personal)}::text, t.version "
             f"FROM {q(layer.name)} t WHERE {where}"),
        {**scope.params, "fid": feature_id},
    ).first()
    return None if row is None else (row[0], row[1])


def fetch_ids(conn: Connection, layer: Layer, ids: list[int], scope: Scope) -> str:
    """The features with these ids (within ``scope``) as a GeoJSON array, in id order."""
    where = f" AND ({scope.condition})" if scope.condition else ""
    return conn.execute(
        text(f"SELECT coalesce(json_agg({_feature_sql(layer, CRS84, scope.personal)} "
             f"ORDER BY t.id), '[]')::text FROM {q(layer.name)} t "
             f"WHERE t.id = ANY(:ids){where}"),
        {**scope.params, "ids": list(ids)}).scalar_one()


def collection_extent(conn: Connection, layer: Layer) -> dict:
    """OGC extent object: spatial bbox (estimated for big tables) and time interval."""
    box = _bounds(conn, _pieces(conn, layer))
    extent: dict = {}
    if box[0] is not None:
        extent["spatial"] = {"bbox": [[round(v, 7) for v in box]], "crs": CRS84}
    if layer.time_field:
        lo, hi = conn.execute(text(
            f"SELECT min({q(layer.time_field)}), max({q(layer.time_field)}) "
            f"FROM {q(layer.name)}")).one()
        extent["temporal"] = {
            "interval": [[lo.isoformat() if lo else None, hi.isoformat() if hi else None]],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    return extent


def _pieces(conn: Connection, layer: Layer) -> list[tuple[str, str, float]]:
    """(schema, table, estimated rows) of each table holding ``layer``'s rows.

    The layer's table, or its partitions: PostGIS estimates no extent of a partitioned
    table, and no automatic ANALYZE keeps a partitioned table's row count.
    """
    return [tuple(r) for r in conn.execute(text(
        "SELECT n.nspname, c.relname, c.reltuples FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND (c.oid = CAST(:t AS regclass) OR c.oid IN "
        "(SELECT relid FROM pg_partition_tree(CAST(:t AS regclass)))) ORDER BY 2"),
        {"t": f"public.{layer.name}"}).all()]


def _bounds(conn: Connection, pieces: list[tuple[str, str, float]]) -> tuple:
    """Bounds of the ``pieces`` (see :func:`_pieces`) in one query.

    From each table's statistics when they hold 200 000 rows or more together, else
    exact; a table without statistics (empty, or not analysed yet) is measured exactly.
    """
    estimate = sum(max(rows, 0) for *_name, rows in pieces) >= 200_000
    boxes, params = [], {}
    for i, (schema, table, rows) in enumerate(pieces):
        exact = f"(SELECT ST_Extent(geom) FROM {q(schema)}.{q(table)})"
        params.update({f"s{i}": schema, f"t{i}": table})
        boxes.append(f"coalesce(ST_EstimatedExtent(:s{i}, :t{i}, 'geom')::box2d, {exact})"
                     if estimate and rows > 0 else exact)
    if not boxes:
        return (None,) * 4
    union = " UNION ALL ".join(f"SELECT {b} AS e" for b in boxes)
    return tuple(conn.execute(text(
        "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM "
        f"(SELECT ST_Extent(e::geometry) AS b FROM ({union}) u) x"), params).one())
