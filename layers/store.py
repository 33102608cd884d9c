"""PostGIS storage of layers: bulk writes in one transaction, reads, summaries.

A write checks what needs the database (location near a jurisdiction, references,
uniqueness), derives ``jurisdiction_code`` and the other derived fields, inserts, and
leaves an audit row; any problem rolls the whole write back. Point layers are checked
in Python against what they need from the database and copied straight into their table
(:func:`write_direct`); other layers, and edits, are staged in a temporary table (COPY)
and checked in SQL (:func:`write_staged`). Both give the same rows and the same
reasons. Table and column names come from the registry only; values always travel as
bound parameters or COPY data.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from sqlalchemy import Connection, Engine, text
from tqdm import tqdm

from geo.locate import covering_pairs, first_cover, near_boundary

from . import pgcopy
from .errors import InputRejected, RowProblem
from .partitions import (
    LAST,
    empty_partitions,
    ensure_months,
    index_loaded,
    load_tables,
    month_bounds,
    months_of,
    parent_indexes,
    prepare,
    row_months,
    swap_in,
)
from .registry import LAYERS, Layer

__all__ = [
    "layer_summary",
    "read_features",
    "audit_row",
    "database_problems",
    "direct_ready",
    "drop_stage",
    "point_problems",
    "refresh_derived",
    "stage",
    "staged_columns",
    "write_direct",
    "write_features",
    "write_in",
    "write_staged",
]

NEAR_M = 1000.0
_SQL_TYPES = {"text": "text", "int": "integer", "float": "double precision",
              "datetime": "timestamptz"}


def q(name: str) -> str:
    """Quote an identifier taken from the registry."""
    return '"' + name.replace('"', '""') + '"'


# -- writing -------------------------------------------------------------------------


def write_features(
    engine: Engine,
    layer: Layer,
    features: gpd.GeoDataFrame,
    *,
    mode: str = "append",
    actor: str = "system",
    source: str = "",
    progress: bool | None = None,
) -> int:
    """Write clean EPSG:4326 features (see :func:`layers.validate.clean_features`).

    ``mode`` is ``append`` or ``replace`` (the layer's rows are deleted first, in the
    same transaction). Rows are numbered from 1 in the order given. Raises
    :class:`InputRejected` listing every row the database checks refuse; then nothing
    is written. Returns the number of features written.

    The monthly partitions the features need are created first, in a short transaction
    of their own (an empty partition left by a refused write does no harm).
    """
    if layer.partitioned and len(features):
        prepare(engine, layer, months_of(features[layer.time_field]))
    with engine.begin() as conn:
        return write_in(conn, layer, features, mode=mode, actor=actor, source=source,
                        progress=progress)


def write_in(
    conn: Connection,
    layer: Layer,
    features: gpd.GeoDataFrame,
    *,
    mode: str = "append",
    actor: str = "system",
    source: str = "",
    progress: bool | None = None,
    area: bytes | None = None,
) -> int:
    """:func:`write_features` inside the caller's transaction ``conn``.

    ``area`` (EWKB, EPSG:4326), when given, bounds what the new rows can affect, so
    derived fields are refreshed only there.
    """
    if mode not in ("append", "replace"):
        raise InputRejected(f"mode must be append or replace, got {mode!r}")
    show = progress if progress is not None else len(features) > 5000
    direct = direct_ready(conn, layer)
    if direct and layer.partitioned and len(features) >= SWAP_ROWS:
        # other writers wait from the start: the swap of partitions at the end locks the
        # table, and a writer already holding it while waiting for us would deadlock
        conn.execute(text(f"LOCK TABLE {q(layer.name)} IN EXCLUSIVE MODE"))
    before = conn.execute(text(f"SELECT count(*) FROM {q(layer.name)}")).scalar_one()
    # whole partitions are dropped rather than emptied row by row, unless a uniqueness
    # check must not see the old rows
    by_partition = direct and layer.partitioned and not any(
        f.unique or (f.ref or "").startswith(f"{layer.name}.") for f in layer.input_fields)
    if mode == "replace" and not by_partition:
        conn.execute(text(f"DELETE FROM {q(layer.name)}"))
    if direct:
        write_direct(conn, layer, features, actor, show,
                     replace=mode == "replace" and by_partition)
    else:
        write_staged(conn, layer, features, actor, show)
    refresh_derived(conn, layer.name, area)
    audit_row(conn, actor, layer.name, "import" if mode == "append" else "replace",
           {"count": before}, {"added": len(features), "mode": mode, "source": source})
    drop_stage(conn)
    return len(features)


def _refused(layer: Layer, problems: list[RowProblem], n: int) -> InputRejected:
    return InputRejected(
        f"{len({p.row for p in problems})} of {n} rows refused for layer "
        f"{layer.name}; nothing was written",
        problems,
    )


def write_staged(conn: Connection, layer: Layer, features: gpd.GeoDataFrame, actor: str,
                 show: bool = False) -> None:
    """Check and insert ``features`` through the temporary table ``staging`` (any layer).

    Raises :class:`InputRejected` with every row the checks refuse.
    """
    stage(conn, layer, features, show)
    problems = database_problems(conn, layer)
    if problems:
        raise _refused(layer, problems, len(features))
    if layer.partitioned:
        ensure_months(conn, layer, months_of(features[layer.time_field]))
    _insert_from_stage(conn, layer, actor)


def direct_ready(conn: Connection, layer: Layer) -> bool:
    """Whether :func:`write_direct` may write ``layer`` here: a point layer, no row security.

    COPY cannot write a table whose row-level security applies to the current role.
    """
    return layer.geometry == "Point" and not conn.execute(
        text("SELECT row_security_active(CAST(:t AS regclass))"),
        {"t": f"public.{layer.name}"}).scalar_one()


def write_direct(conn: Connection, layer: Layer, features: gpd.GeoDataFrame, actor: str,
                 show: bool = False, *, replace: bool = False) -> None:
    """Check point ``features`` and COPY them straight into the layer's table.

    The same checks, reasons and results as :func:`write_staged`, without the staging
    table: points are located among the leaf jurisdictions in Python (a point close to a
    border, or in none, is decided by the database's own test), references and
    uniqueness are looked up for the distinct values only. Rows keep their order (ids
    ascend with it). Raises :class:`InputRejected` with every refused row.

    ``replace`` (a partitioned layer only) deletes the layer's rows first, once the
    checks have passed.
    """
    problems, codes = point_problems(conn, layer, features)
    if problems:
        raise _refused(layer, problems, len(features))
    with tqdm(total=len(features), desc=f"loading {layer.name}", unit=" rows",
              disable=not show, leave=False) as bar:
        if layer.partitioned:
            _copy_by_month(conn, layer, features, codes, actor, bar, replace)
        else:
            _copy_features(conn, q(layer.name), layer, features, codes, actor, bar)


# Rows of one month from which they are loaded into a table of their own (then indexed
# and swapped in for the month's empty partition) rather than into the partitioned table.
SWAP_ROWS = 5_000


def _copy_by_month(conn: Connection, layer: Layer, features: gpd.GeoDataFrame,
                   codes: np.ndarray | None, actor: str, bar: tqdm,
                   replace: bool = False) -> None:
    """COPY into a partitioned layer: big months into new partitions, the rest as usual.

    A month with :data:`SWAP_ROWS` rows or more whose partition is empty is loaded into
    a table of its own, indexed at once and swapped in for that partition; the table is
    locked against readers only for the swap, at the end. The ids are then set aside
    beforehand as one run, so they ascend with the rows whichever way each row goes.
    Partitions written around the parent table do not fire its triggers, so the layer's
    version is bumped here. With ``replace`` the layer's other rows are deleted, and the
    partitions of those months are replaced, full or not.
    """
    ensure_months(conn, layer, months_of(features[layer.time_field]))
    keys = np.array([-1 if m is None else m[0] * 100 + m[1]
                     for m in row_months(features[layer.time_field])], dtype=np.int64)
    found, counts = np.unique(keys, return_counts=True)
    big = [(k // 100, k % 100) for k, n in zip(found.tolist(), counts.tolist(), strict=True)
           if n >= SWAP_ROWS and k >= 0 and (k // 100, k % 100) < LAST]
    if big:  # nobody else writes from here on; see write_in
        conn.execute(text(f"LOCK TABLE {q(layer.name)} IN EXCLUSIVE MODE"))
    if replace:
        _delete_outside(conn, layer, big)
        swapped = sorted(big)
    else:
        swapped = empty_partitions(conn, layer, sorted(big))
    ids = _new_ids(conn, layer, len(features)) if swapped else None

    def part(values: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
        return None if values is None else values[rows]

    groups = [(None, np.flatnonzero(~np.isin(keys, [y * 100 + m for y, m in swapped])))]
    groups += [(m, np.flatnonzero(keys == m[0] * 100 + m[1])) for m in swapped]
    groups = [(month, rows) for month, rows in groups if len(rows)]
    # a thread formats the next group's rows while the database takes in this one's
    with ThreadPoolExecutor(max_workers=1) as formatter:
        payloads = formatter.map(
            lambda rows: _copy_payload(layer, features.iloc[rows], part(codes, rows), actor,
                                       part(ids, rows)), [rows for _, rows in groups])
        tables = dict(zip(swapped, load_tables(conn, layer, swapped), strict=True))
        parents = parent_indexes(conn, layer) if swapped else []
        for (month, rows), (options, messages) in zip(groups, payloads, strict=True):
            _copy_messages(conn, tables.get(month, q(layer.name)), options, messages, bar,
                           len(rows))
            if month is not None:
                index_loaded(conn, layer, [month], parents)
    if swapped:
        conn.execute(text(f"LOCK TABLE {q(layer.name)} IN ACCESS EXCLUSIVE MODE"))
        swap_in(conn, layer, swapped)
        conn.execute(text("UPDATE layer_versions SET version = version + 1 WHERE layer = :l"),
                     {"l": layer.name})


def _delete_outside(conn: Connection, layer: Layer, months: list[tuple[int, int]]) -> None:
    """Delete ``layer``'s rows but those of ``months`` (their partitions go whole)."""
    time = q(layer.time_field)
    inside = " OR ".join(f"({time} >= :s{k} AND {time} < :e{k})" for k in range(len(months)))
    bounds = {f"{edge}{k}": value for k, month in enumerate(months)
              for edge, value in zip("se", month_bounds(month), strict=True)}
    conn.execute(text(f"DELETE FROM {q(layer.name)}"
                      + (f" WHERE ({inside}) IS NOT TRUE" if months else "")), bounds)


def _new_ids(conn: Connection, layer: Layer, n: int) -> np.ndarray:
    """``n`` new ids from ``layer``'s sequence, one unbroken ascending run.

    The caller holds the table in EXCLUSIVE mode, so no other writer draws from the
    sequence (its default is the only user) until the run is set aside.
    """
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"),
                            {"t": f"public.{layer.name}"}).scalar_one()
    first = conn.execute(text("SELECT nextval(:s)"), {"s": sequence}).scalar_one()
    conn.execute(text("SELECT setval(:s, :last)"), {"s": sequence, "last": first + n - 1})
    return np.arange(first, first + n, dtype=np.int64)


def _copy_features(conn: Connection, table: str, layer: Layer, features: gpd.GeoDataFrame,
                   codes: np.ndarray | None, actor: str, bar: tqdm) -> None:
    """COPY ``features`` into ``table`` (quoted), ``codes`` as their jurisdiction_code."""
    _copy_messages(conn, table, *_copy_payload(layer, features, codes, actor), bar,
                   len(features))


def _copy_payload(layer: Layer, features: gpd.GeoDataFrame, codes: np.ndarray | None,
                  actor: str, ids: np.ndarray | None = None) -> tuple[str, list[bytes]]:
    """The COPY options and the messages that write ``features``.

    ``codes`` are their jurisdiction_code; ``ids``, when given, are written too (else the
    table's sequence numbers the rows). Binary format, or text when a value does not fit
    it (the database then refuses it as it always did).
    """
    names = [f.name for f in layer.input_fields]
    columns = ", ".join(["geom", *map(q, names), "updated_by", *(["id"] if ids is not None
                                                                  else [])])
    binary = _binary_messages(layer, features, codes, actor, ids)
    if binary is not None:
        return f"({columns}) FROM STDIN (FORMAT BINARY)", binary
    values = [  # each column at once, then the rows a message at a time
        _copy_geometries(features),
        *(_copy_column(features[n]) if n != "jurisdiction_code" or codes is None
          else _copy_column(pd.Series(codes, dtype=object)) for n in names),
        [_copy_value(actor)] * len(features),
        *([] if ids is None else [list(map(str, ids.tolist()))]),
    ]
    return f"({columns}) FROM STDIN", [_copy_rows([v[start:start + _COPY_ROWS] for v in values])
                                      for start in range(0, len(features), _COPY_ROWS)]


def _binary_messages(layer: Layer, features: gpd.GeoDataFrame, codes: np.ndarray | None,
                     actor: str, ids: np.ndarray | None) -> list[bytes] | None:
    """Binary COPY messages of the rows (see :func:`_copy_payload`), or None."""
    encode = {"text": pgcopy.texts, "int": pgcopy.integers, "float": pgcopy.floats,
              "datetime": pgcopy.datetimes}
    try:
        columns = [pgcopy.geometries(features.geometry.values.to_numpy())]
        for f in layer.input_fields:
            values = (pd.Series(codes, dtype=object)
                      if f.name == "jurisdiction_code" and codes is not None
                      else features[f.name].reset_index(drop=True))
            columns.append(encode[f.type](values))
        columns.append(pgcopy.texts([actor] * len(features)))
        if ids is not None:
            columns.append(pgcopy.fixed(ids, ">i8"))
    except (TypeError, ValueError, OverflowError, pa.ArrowException):
        return None
    if any(c is None for c in columns):
        return None
    messages = pgcopy.rows(columns, _COPY_ROWS)
    if messages:
        messages[0] = pgcopy.SIGNATURE + messages[0]
        messages[-1] = messages[-1] + pgcopy.TRAILER
    return messages


def _copy_messages(conn: Connection, table: str, copy_options: str, messages: list[bytes],
                   bar: tqdm, n_rows: int) -> None:
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table} {copy_options}") as copy:
        for message in messages:
            copy.write(message)
    bar.update(n_rows)


def point_problems(conn: Connection, layer: Layer,
                   features: gpd.GeoDataFrame) -> tuple[list[RowProblem], np.ndarray | None]:
    """The problems :func:`database_problems` finds, for point ``features`` not staged.

    Returns them (rows numbered from 1) and, for a located layer, each row's
    ``jurisdiction_code``: the one given, else the leaf jurisdiction of the point.
    """
    problems: list[RowProblem] = []
    codes = None
    if layer.located:
        located, codes = _point_locations(conn, features)
        problems += located
    for f in layer.input_fields:
        if f.ref:
            problems += _missing_references(conn, layer, features, f.name, f.ref, f.type)
        if f.unique:
            problems += _repeated_values(conn, layer, features, f.name, f.type)
    return problems, codes


_LEAVES = ("SELECT code, geom FROM jurisdictions j WHERE NOT EXISTS "
           "(SELECT 1 FROM jurisdictions c WHERE c.parent_code = j.code)")
_POINTS = ("SELECT r.i, ST_GeomFromWKB(r.g, 4326) AS pt FROM "
           "unnest(CAST(:rows AS integer[]), CAST(:wkb AS bytea[])) AS r(i, g)")


def _point_locations(conn: Connection, features: gpd.GeoDataFrame
                     ) -> tuple[list[RowProblem], np.ndarray | None]:
    """Leaf jurisdiction of every point, and the rows outside or far from their own."""
    if not conn.execute(text("SELECT EXISTS (SELECT 1 FROM jurisdictions)")).scalar_one():
        return [RowProblem(1, "no jurisdictions are loaded: import the jurisdictions layer "
                              "first")], None
    points = features.geometry.values.to_numpy()
    leaves = conn.execute(text(f"SELECT code, ST_AsBinary(geom) FROM ({_LEAVES}) l "
                               "ORDER BY code")).all()  # the database's order of codes
    leaf_codes = np.array([r[0] for r in leaves] + [None], dtype=object)
    polygons = shapely.from_wkb([bytes(r[1]) for r in leaves])
    first = first_cover(*covering_pairs(points, polygons), len(points))
    derived = leaf_codes[first]  # -1: the None at the end
    undecided = np.flatnonzero((first < 0) | near_boundary(points, polygons))
    outside: list[RowProblem] = []
    if len(undecided):
        for i, code, x, y in conn.execute(text(f"""
                SELECT p.i, coalesce(
                    (SELECT l.code FROM ({_LEAVES}) l WHERE ST_Intersects(l.geom, p.pt)
                     ORDER BY l.code LIMIT 1),
                    (SELECT l.code FROM ({_LEAVES}) l
                     WHERE l.geom && ST_Expand(p.pt, {_degrees_for(NEAR_M, "p.pt")})
                       AND ST_DWithin(l.geom::geography, p.pt::geography, :near)
                     ORDER BY l.geom <-> p.pt, l.code LIMIT 1)), ST_X(p.pt), ST_Y(p.pt)
                FROM ({_POINTS}) p ORDER BY p.i"""),
                _point_params(undecided, points, near=NEAR_M)):
            derived[i] = code
            if code is None:
                outside.append(RowProblem(i + 1, _outside_reason(x, y)))
    given = (features["jurisdiction_code"].to_numpy(dtype=object)
             if "jurisdiction_code" in features else np.full(len(features), None))
    far = _far_from_given(conn, points, given, derived)
    return outside + far, np.where(pd.isna(given), derived, given)


def _outside_reason(x: float, y: float) -> str:
    return (f"lies outside every jurisdiction, more than {NEAR_M:g} m away "
            f"(at {x:.5f}, {y:.5f}; wrong CRS or GCJ-02 coordinates?)")


def _point_params(rows: np.ndarray, points: np.ndarray, **more) -> dict:
    return {"rows": rows.tolist(), "wkb": shapely.to_wkb(points[rows]).tolist(), **more}


def _far_from_given(conn: Connection, points: np.ndarray, given: np.ndarray,
                    derived: np.ndarray) -> list[RowProblem]:
    """Rows with a ``jurisdiction_code`` of their own more than :data:`NEAR_M` outside it.

    Rows in no jurisdiction at all are reported as outside instead; a code that does not
    exist is a reference problem.
    """
    rows = np.flatnonzero(~pd.isna(given) & ~pd.isna(derived))
    if not len(rows):
        return []
    found = conn.execute(text("SELECT code, ST_AsBinary(geom) FROM jurisdictions "
                              "WHERE code = ANY(CAST(:codes AS text[])) ORDER BY code"),
                         {"codes": sorted(set(given[rows].tolist()))}).all()
    index = {code: k for k, (code, _) in enumerate(found)}
    wanted = np.array([index.get(c, -1) for c in given[rows]], dtype=np.int64)
    rows, wanted = rows[wanted >= 0], wanted[wanted >= 0]
    polygons = shapely.from_wkb([bytes(g) for _, g in found])
    point_ix, polygon_ix = covering_pairs(points[rows], polygons)
    inside = np.zeros(len(rows), dtype=bool)
    inside[point_ix[polygon_ix == wanted[point_ix]]] = True
    unsure = rows[~inside | near_boundary(points[rows], polygons)]
    if not len(unsure):
        return []
    return _rows(
        conn,
        f"""SELECT p.i + 1, j.code, ST_Distance(j.geom::geography, p.pt::geography)
            FROM ({_POINTS}) p
            JOIN unnest(CAST(:rows AS integer[]), CAST(:codes AS text[])) AS g(i, code)
              USING (i)
            JOIN jurisdictions j ON j.code = g.code
            WHERE NOT (ST_Intersects(j.geom, p.pt)
                       OR ST_DWithin(j.geom::geography, p.pt::geography, :near))
            ORDER BY p.i""",
        lambda code, dist: f"lies {dist / 1000:.1f} km outside its jurisdiction {code!r}",
        **_point_params(unsure, points, near=NEAR_M, codes=given[unsure].tolist()),
    )


def _missing_references(conn: Connection, layer: Layer, features: gpd.GeoDataFrame,
                        name: str, ref: str, kind: str) -> list[RowProblem]:
    """Rows whose ``name`` is not a value of ``ref`` (``layer.field``) in the database.

    A layer referring to itself may also refer to a value among the rows written.
    """
    if name not in features:
        return []
    ref_layer, ref_field = ref.split(".")
    values = features[name].to_numpy(dtype=object)
    present = ~pd.isna(values)
    distinct = sorted(set(values[present].tolist()), key=repr)
    if not distinct:
        return []
    known = set(conn.execute(text(
        f"SELECT DISTINCT t.{q(ref_field)} FROM {q(ref_layer)} t "
        f"WHERE t.{q(ref_field)} = ANY(CAST(:v AS {_SQL_TYPES[kind]}[]))"),
        {"v": distinct}).scalars())
    if ref_layer == layer.name and ref_field in features:
        known |= set(features[ref_field].tolist())
    return [RowProblem(int(i) + 1, f"field {name!r}: {values[i]!r} is not a {ref_field} in "
                                   f"{ref_layer}")
            for i in np.flatnonzero(present) if values[i] not in known]


def _repeated_values(conn: Connection, layer: Layer, features: gpd.GeoDataFrame,
                     name: str, kind: str) -> list[RowProblem]:
    """Rows whose unique ``name`` repeats in the input, then those already stored."""
    column = features[name] if name in features else pd.Series([None] * len(features))
    values = column.to_numpy(dtype=object)
    repeated = [RowProblem(int(i) + 1, f"field {name!r}: {values[i]!r} appears more than "
                                       "once in the input")
                for i in np.flatnonzero(column.duplicated(keep=False).to_numpy())]
    distinct = sorted(set(values[~pd.isna(values)].tolist()), key=repr)
    taken = set(conn.execute(text(
        f"SELECT DISTINCT t.{q(name)} FROM {q(layer.name)} t "
        f"WHERE t.{q(name)} = ANY(CAST(:v AS {_SQL_TYPES[kind]}[]))"),
        {"v": distinct}).scalars()) if distinct else set()
    return repeated + [
        RowProblem(int(i) + 1, f"field {name!r}: {values[i]!r} already exists in layer "
                               f"{layer.name}")
        for i in range(len(values)) if values[i] in taken]


def drop_stage(conn: Connection) -> None:
    """Drop the temporary tables of :func:`stage` (they go at commit anyway)."""
    conn.execute(text("DROP TABLE IF EXISTS staging"))
    conn.execute(text("DROP TABLE IF EXISTS leaf_parts"))


def stage(conn: Connection, layer: Layer, features: gpd.GeoDataFrame,
          show: bool = False) -> None:
    """COPY clean features into the temporary table ``staging`` for checks in SQL.

    ``staging.pt``, a representative point of each geometry, is computed as rows arrive.
    """
    fields = layer.input_fields
    columns = ", ".join(f"{q(f.name)} {_SQL_TYPES[f.type]}" for f in fields)
    conn.execute(text(
        f"CREATE TEMP TABLE staging (row_no integer, geom geometry(Geometry, 4326), {columns},"
        " pt geometry(Point, 4326) GENERATED ALWAYS AS "
        f"({_POINT_ITSELF if layer.geometry == 'Point' else _REPRESENTATIVE_POINT}) STORED,"
        " derived_code text) ON COMMIT DROP"
    ))
    names = ", ".join(["row_no", "geom", *(q(f.name) for f in fields)])
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY staging ({names}) FROM STDIN") as copy, tqdm(
        total=len(features), desc=f"loading {layer.name}", unit=" rows", disable=not show,
        leave=False,
    ) as bar:
        for start in range(0, len(features), _COPY_ROWS):
            chunk = features.iloc[start:start + _COPY_ROWS]
            copy.write(_copy_text(chunk, [f.name for f in fields], start + 1))
            bar.update(len(chunk))
    if len(features) > 50:  # for the point-in-polygon join; a single edit needs none
        conn.execute(text("CREATE INDEX ON staging USING gist (pt)"))


# A stable representative point: the middle of a line (a line's "point on surface" is
# an end point when it has only two vertices), a point inside a polygon; a point layer's
# own points (the same, without a call per row).
_REPRESENTATIVE_POINT = ("CASE WHEN ST_Dimension(geom) = 1 THEN ST_LineInterpolatePoint(geom, 0.5)"
                         " ELSE ST_PointOnSurface(geom) END")
_POINT_ITSELF = "geom"
# Rows per COPY message: the database reads one while the next is formatted.
_COPY_ROWS = 2_000
_COPY_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_COPY_SPECIAL = "\\\n\r\t"
_COPY_SPECIAL_RE = r"[\\\n\r\t]"


def _copy_text(features: gpd.GeoDataFrame, names: list[str], first_row: int) -> bytes:
    """Rows of COPY's text format: row number, WKB (hex), then the fields ``names``."""
    return _copy_rows([
        [str(n) for n in range(first_row, first_row + len(features))],
        _copy_geometries(features),
        *(_copy_column(features[name]) for name in names),
    ])


def _copy_rows(columns: list[list[str]]) -> bytes:
    """COPY text of ``columns`` (each a list of values already in COPY's text form)."""
    return ("\n".join(map("\t".join, zip(*columns, strict=True))) + "\n").encode()


def _copy_geometries(features: gpd.GeoDataFrame) -> list[str]:
    """The geometries as hex WKB without SRID: PostGIS gives them the column's, EPSG:4326."""
    geoms = features.geometry.values.to_numpy()
    if len(geoms) and (shapely.get_type_id(geoms) == 0).all() and not (
            shapely.is_empty(geoms) | shapely.has_z(geoms)).any():
        return _point_wkb_hex(shapely.get_coordinates(geoms))
    return [_COPY_NULL if g is None else g for g in shapely.to_wkb(geoms, hex=True)]


# A 2D point's WKB: byte order (1: little-endian), type (1: Point), x, y.
_POINT_WKB = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])
_HEX_DIGITS = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)


def _point_wkb_hex(xy: np.ndarray) -> list[str]:
    """Hex WKB of points at ``xy``: the text ``shapely.to_wkb(..., hex=True)`` writes.

    Built for all points at once from their coordinates (ten times faster than WKB
    written point by point).
    """
    wkb = np.empty(len(xy), dtype=_POINT_WKB)
    wkb["order"], wkb["type"], wkb["x"], wkb["y"] = 1, 1, xy[:, 0], xy[:, 1]
    raw = wkb.view(np.uint8).reshape(len(xy), _POINT_WKB.itemsize)
    digits = np.empty((len(xy), 2 * _POINT_WKB.itemsize), dtype=np.uint8)
    digits[:, 0::2], digits[:, 1::2] = _HEX_DIGITS[raw >> 4], _HEX_DIGITS[raw & 15]
    return digits.view(f"S{digits.shape[1]}").ravel().astype(f"U{digits.shape[1]}").tolist()


def _copy_column(series: pd.Series) -> list[str]:
    """One column as COPY text: escaped, NULL for nulls, date-times in UTC."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        utc = series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        out = (np.datetime_as_string(utc).astype(object) + "+00").tolist()
        nulls = np.isnat(utc)
        return [_COPY_NULL if null else t for t, null in zip(out, nulls, strict=True)] \
            if nulls.any() else out
    values = series.tolist()
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "iu":  # never null
        return list(map(str, values))
    if isinstance(series.dtype, pd.StringDtype) and not series.isna().any():
        if not series.str.contains(_COPY_SPECIAL_RE).any():
            return values
    elif all(type(v) is str for v in values):
        joined = "".join(values)
        if not any(c in joined for c in _COPY_SPECIAL):
            return values
    return [_copy_value(v) for v in values]


def _copy_value(value: object) -> str:
    if value is None:
        return _COPY_NULL
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT or value is pd.NA or (
            isinstance(value, float) and math.isnan(value)):
        return _COPY_NULL
    if isinstance(value, dt.date):  # datetimes too; without a zone: the session's
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value).translate(_COPY_ESCAPES)


def database_problems(conn: Connection, layer: Layer,
                      exclude_id: int | None = None) -> list[RowProblem]:
    """Check the staged rows: location, references, uniqueness; derive jurisdictions.

    ``exclude_id`` is the feature being replaced (its own code is not a clash).
    Also fills ``staging.derived_code``.
    """
    problems: list[RowProblem] = []
    if layer.located:
        problems += _location_problems(conn, layer)
    for f in layer.input_fields:
        if f.ref:
            problems += _reference_problems(conn, layer, f.name, f.ref)
        if f.unique:
            problems += _unique_problems(conn, layer, f.name, exclude_id)
    return problems


def _rows(conn: Connection, sql: str, reason: Callable[..., str], **params) -> list[RowProblem]:
    return [RowProblem(r[0], reason(*r[1:])) for r in conn.execute(text(sql), params)]


def _location_problems(conn: Connection, layer: Layer) -> list[RowProblem]:
    if not conn.execute(text("SELECT EXISTS (SELECT 1 FROM jurisdictions)")).scalar_one():
        return [RowProblem(1, "no jurisdictions are loaded: import the jurisdictions layer first")]
    leaves = ("SELECT code, geom FROM jurisdictions j WHERE NOT EXISTS "
              "(SELECT 1 FROM jurisdictions c WHERE c.parent_code = j.code)")
    if conn.execute(text("SELECT count(*) > 50 FROM staging")).scalar_one():
        # many rows: subdivided leaves make each point-in-polygon test cheap
        conn.execute(text(
            "CREATE TEMP TABLE leaf_parts ON COMMIT DROP AS "
            f"SELECT code, ST_Subdivide(geom, 128) AS geom FROM ({leaves}) j"))
        conn.execute(text("CREATE INDEX ON leaf_parts USING gist (geom)"))
        conn.execute(text("ANALYZE leaf_parts"))
        leaves = "SELECT code, geom FROM leaf_parts"
        _restage_located(conn, layer)
    else:
        conn.execute(text(  # on a border between leaves, the lower code (as above)
            f"UPDATE staging s SET derived_code = (SELECT l.code FROM ({leaves}) l "
            "WHERE ST_Intersects(l.geom, s.pt) ORDER BY l.code LIMIT 1)"
        ))
    conn.execute(text(f"""
        UPDATE staging s SET derived_code = (
            SELECT l.code FROM ({leaves}) l
            WHERE l.geom && ST_Expand(s.pt, {_degrees_for(NEAR_M)})
              AND ST_DWithin(l.geom::geography, s.pt::geography, :near)
            ORDER BY l.geom <-> s.pt, l.code LIMIT 1)
        WHERE s.derived_code IS NULL"""), {"near": NEAR_M})
    outside = _rows(
        conn,
        "SELECT row_no, ST_X(pt), ST_Y(pt) FROM staging WHERE derived_code IS NULL",
        lambda x, y: f"lies outside every jurisdiction, more than {NEAR_M:g} m away "
        f"(at {x:.5f}, {y:.5f}; wrong CRS or GCJ-02 coordinates?)",
    )
    far = _rows(
        conn,
        """SELECT s.row_no, s.jurisdiction_code,
                   ST_Distance(j.geom::geography, s.geom::geography)
            FROM staging s JOIN jurisdictions j ON j.code = s.jurisdiction_code
            WHERE s.derived_code IS NOT NULL
              AND NOT (ST_Intersects(j.geom, s.geom)
                       OR ST_DWithin(j.geom::geography, s.geom::geography, :near))""",
        lambda code, dist: f"lies {dist / 1000:.1f} km outside its jurisdiction {code!r}",
        near=NEAR_M,
    )
    return outside + far


def _restage_located(conn: Connection, layer: Layer) -> None:
    """Fill ``staging.derived_code`` with the leaf jurisdiction each ``pt`` lies in, at once.

    Rewritten as a new table: an UPDATE of every row would cost several times the
    point-in-polygon tests. A point on a border between leaves takes the lower code.
    """
    names = ", ".join(["row_no", "geom", *(q(f.name) for f in layer.input_fields), "pt"])
    conn.execute(text(
        "CREATE TEMP TABLE located ON COMMIT DROP AS "
        f"SELECT {names}, i.leaf_code AS derived_code FROM staging s LEFT JOIN "
        "(SELECT DISTINCT ON (s.row_no) s.row_no, l.code AS leaf_code FROM leaf_parts l "
        " JOIN staging s ON ST_Intersects(l.geom, s.pt) ORDER BY s.row_no, l.code) i "
        "USING (row_no)"
    ))
    conn.execute(text("DROP TABLE staging"))
    conn.execute(text("ALTER TABLE located RENAME TO staging"))


def _degrees_for(metres: float, point: str = "s.pt") -> str:
    """SQL for a bounding-box margin of ``metres`` around ``point`` in degrees."""
    return f"({metres} / (111320.0 * greatest(cos(radians(ST_Y({point}))), 0.01)))"


def _reference_problems(conn: Connection, layer: Layer, name: str, ref: str) -> list[RowProblem]:
    ref_layer, ref_field = ref.split(".")
    also_staged = (
        f" AND NOT EXISTS (SELECT 1 FROM staging s2 WHERE s2.{q(ref_field)} = s.{q(name)})"
        if ref_layer == layer.name else ""
    )
    return _rows(
        conn,
        f"SELECT row_no, s.{q(name)} FROM staging s WHERE s.{q(name)} IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {q(ref_layer)} t WHERE t.{q(ref_field)} = s.{q(name)})"
        + also_staged,
        lambda value: f"field {name!r}: {value!r} is not a {ref_field} in {ref_layer}",
    )


def _unique_problems(conn: Connection, layer: Layer, name: str,
                     exclude_id: int | None = None) -> list[RowProblem]:
    repeated = _rows(
        conn,
        f"SELECT row_no, v FROM (SELECT row_no, {q(name)} AS v, "
        f"count(*) OVER (PARTITION BY {q(name)}) AS n FROM staging) d WHERE n > 1",
        lambda value: f"field {name!r}: {value!r} appears more than once in the input",
    )
    taken = _rows(
        conn,
        f"SELECT s.row_no, s.{q(name)} FROM staging s "
        f"JOIN {q(layer.name)} t ON t.{q(name)} = s.{q(name)} AND t.id IS DISTINCT FROM :self",
        lambda value: f"field {name!r}: {value!r} already exists in layer {layer.name}",
        self=exclude_id,
    )
    return repeated + taken


def staged_columns(layer: Layer) -> tuple[list[str], list[str]]:
    """Input field names and the SQL that takes each from ``staging s``.

    A missing ``jurisdiction_code`` is the one derived from the geometry.
    """
    names = [f.name for f in layer.input_fields]
    select = [f"s.{q(n)}" for n in names]
    if layer.located:
        select[names.index("jurisdiction_code")] = "coalesce(s.jurisdiction_code, s.derived_code)"
    return names, select


def _insert_from_stage(conn: Connection, layer: Layer, actor: str) -> None:
    names, select = staged_columns(layer)
    conn.execute(
        text(
            f"INSERT INTO {q(layer.name)} (geom, {', '.join(map(q, names))}, updated_by) "
            f"SELECT s.geom, {', '.join(select)}, :actor FROM staging s ORDER BY s.row_no"
        ),
        {"actor": actor},
    )


# -- derived fields --------------------------------------------------------------------

# Each statement writes only the rows whose derived values change: an edit touches a
# handful of rows, not every row in its box.
_HOUSEHOLD_LINKS = """
UPDATE households h SET grid_code = n.grid_code, unit_code = n.unit_code
FROM (SELECT h2.id,
             (SELECT g.code FROM grids g WHERE g.geom && h2.geom
              AND ST_Intersects(g.geom, h2.geom) ORDER BY g.id LIMIT 1) AS grid_code,
             (SELECT u.code FROM household_units u WHERE u.geom && h2.geom
              AND ST_Intersects(u.geom, h2.geom) ORDER BY u.id LIMIT 1) AS unit_code
      FROM households h2 WHERE {box_h2}) n
WHERE h.id = n.id AND (h.grid_code IS DISTINCT FROM n.grid_code
                       OR h.unit_code IS DISTINCT FROM n.unit_code)
"""
_GRID_STATS = """
UPDATE grids g SET households = c.n, population = c.p, area_m2 = c.a
FROM (SELECT g2.id, count(h.id) AS n, coalesce(sum(h.persons), 0) AS p,
             ST_Area(g2.geom::geography) AS a
      FROM grids g2 LEFT JOIN households h ON h.geom && g2.geom AND h.grid_code = g2.code
      WHERE {box_g2} GROUP BY g2.id) c
WHERE c.id = g.id AND (g.households IS DISTINCT FROM c.n OR g.population IS DISTINCT FROM c.p
                       OR g.area_m2 IS DISTINCT FROM c.a)
"""
# Grid counts of what lies in them (key areas, recent incidents).
_GRID_CONTEXT = """
UPDATE grids g SET key_areas = c.k, incidents_30d = c.i
FROM (SELECT g2.id,
             (SELECT count(*) FROM key_areas k
              WHERE k.geom && g2.geom AND ST_Intersects(k.geom, g2.geom)) AS k,
             (SELECT count(*) FROM incidents i
              WHERE i.occurred_at >= now() - interval '30 days'
              AND i.geom && g2.geom AND ST_Intersects(i.geom, g2.geom)) AS i
      FROM grids g2 WHERE {box_g2}) c
WHERE c.id = g.id AND (g.key_areas IS DISTINCT FROM c.k OR g.incidents_30d IS DISTINCT FROM c.i)
"""
# What to recompute after a layer changes.
_CASCADE: dict[str, tuple[str, ...]] = {
    "grids": (_HOUSEHOLD_LINKS, _GRID_STATS, _GRID_CONTEXT),
    "households": (_HOUSEHOLD_LINKS, _GRID_STATS),
    "household_units": (_HOUSEHOLD_LINKS,),
    "key_areas": (_GRID_CONTEXT,),
    "incidents": (_GRID_CONTEXT,),
}


def refresh_derived(conn: Connection, changed: str, area: bytes | None = None) -> None:
    """Recompute derived fields that depend on layer ``changed`` (grid counts, links).

    ``area`` (EWKB, EPSG:4326) limits the work to what an edit can affect: households
    in it are linked again, grids touching it are counted again.
    """
    def box(alias: str) -> str:
        return f"ST_Intersects({alias}.geom, ST_GeomFromEWKB(:area))" if area else "TRUE"

    for sql in _CASCADE.get(changed, ()):
        conn.execute(text(sql.format(box_h2=box("h2"), box_g2=box("g2"))),
                     {"area": area} if area else {})


def audit_row(conn: Connection, actor: str, layer: str, action: str, before: dict | None,
              after: dict | None, feature_id: int | None = None) -> None:
    """Record a change: who, what (layer, feature, action), before and after."""
    conn.execute(
        text(
            "INSERT INTO audit (actor, layer, feature_id, action, before, after) "
            "VALUES (:actor, :layer, :fid, :action, CAST(:before AS jsonb), CAST(:after AS jsonb))"
        ),
        {
            "actor": actor, "layer": layer, "fid": feature_id, "action": action,
            "before": None if before is None else json.dumps(before, default=str),
            "after": None if after is None else json.dumps(after, default=str),
        },
    )


# -- reading ---------------------------------------------------------------------------


def read_features(
    engine: Engine,
    layer: Layer,
    bbox: tuple[float, float, float, float] | None = None,
    *,
    with_id: bool = False,
) -> gpd.GeoDataFrame:
    """All features of ``layer`` (optionally within a lon/lat ``bbox``), EPSG:4326."""
    columns = ", ".join(q(n) for n in layer.field_names)
    sql = f"SELECT id, geom, {columns} FROM {q(layer.name)}"
    params: dict = {}
    if bbox is not None:
        sql += " WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)"
        params = dict(zip(("x0", "y0", "x1", "y1"), bbox, strict=True))
    sql += " ORDER BY id"
    with engine.connect() as conn:
        gdf = gpd.read_postgis(text(sql), conn, geom_col="geom", params=params, crs=4326)
    gdf = gdf.rename_geometry("geometry")
    for f in layer.fields:
        if f.type == "datetime":
            gdf[f.name] = pd.to_datetime(gdf[f.name], utc=True)
    return gdf if with_id else gdf.drop(columns="id")


def layer_summary(engine: Engine) -> list[dict]:
    """``{"name", "count", "extent"}`` per layer; extent ``[minx, miny, maxx, maxy]`` or None."""
    out = []
    with engine.connect() as conn:
        for name in LAYERS:
            row = conn.execute(text(
                "SELECT n, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                f"FROM (SELECT count(*) AS n, ST_Extent(geom) AS e FROM {q(name)}) x"
            )).one()
            count = row[0]
            extent = [round(v, 6) for v in row[1:]] if row[1] is not None else None
            out.append({"name": name, "count": count, "extent": extent})
    return out

