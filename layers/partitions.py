"""Monthly partitions of time-partitioned layers (incidents, by ``occurred_at``).

A layer declared ``partitioned`` is a PostgreSQL table ``PARTITION BY RANGE`` of its
time field: one partition per calendar month in China Standard Time (the months of the
monthly notice, so a month's query reads one partition), plus a DEFAULT partition for
rows whose month has none yet. The partitions live in schema :data:`SCHEMA`, which the
application role may not use, and each has row-level security on with no policy: the
role reads and writes through the parent table only, where the policies of migration
0003 hold.

Creating a partition locks the whole table until the transaction ends, so a long
write (an import, the demo) first runs :func:`prepare` in a short transaction of its
own: the months it brings, this month and the next (live reports then never wait for
one), and every month found in DEFAULT. Inside the write, :func:`ensure_months` finds
them all and costs one catalog query; a single-feature edit creates its month there if
need be. A partition cannot be created while DEFAULT holds rows of its range, so those
rows (written around safegrid, with plain SQL) first move out of DEFAULT into it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text

from .registry import Layer
from .validate import LOCAL_TZ

__all__ = ["SCHEMA", "MonthsMissing", "adopt_default", "empty_partitions", "ensure_months",
           "index_loaded", "load_tables", "month_bounds", "months_of", "parent_indexes",
           "partition_name", "partitions_of", "prepare", "require_months", "row_months",
           "staged_months", "swap_in"]

SCHEMA = "partitions"
Month = tuple[int, int]  # (year, month)
LAST = (9999, 12)  # the first month without a partition of its own


def months_of(times: pd.Series) -> list[Month]:
    """The calendar months (China Standard Time) of ``times``, sorted, each once.

    ``times`` hold datetimes (as :func:`layers.validate.clean_features` gives them) or
    datetime64; those without a zone are China Standard Time, as on import.
    """
    if isinstance(times.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(times):
        local = times.dropna()
        local = local.dt.tz_localize(LOCAL_TZ) if local.dt.tz is None else local
        local = local.dt.tz_convert(LOCAL_TZ)
        return sorted(set(zip(local.dt.year.tolist(), local.dt.month.tolist(), strict=True)))
    # one by one: Python's datetimes reach year 9999, pandas' only 2262
    return sorted({m for m in map(_month, times.tolist()) if m is not None})


def row_months(times: pd.Series) -> list[Month | None]:
    """The calendar month (China Standard Time) of each of ``times``, as :func:`months_of`."""
    if isinstance(times.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(times):
        local = times.dt.tz_localize(LOCAL_TZ) if times.dt.tz is None else times
        local = local.dt.tz_convert(LOCAL_TZ)
        years, months = local.dt.year.to_numpy(), local.dt.month.to_numpy()
        if not local.isna().any():
            keys = years.astype(np.int64) * 100 + months.astype(np.int64)
            found = {k: (k // 100, k % 100) for k in np.unique(keys).tolist()}
            return [found[k] for k in keys.tolist()]
    return [_month(value) for value in times.tolist()]


def _month(value: dt.datetime | None) -> Month | None:
    if value is None or value is pd.NaT:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    try:
        local = value.astimezone(LOCAL_TZ)
    except OverflowError:  # past the end of year 9999
        return LAST
    return local.year, local.month


def _months_in(conn: Connection, layer: Layer, table: str) -> list[Month]:
    """The months of the rows of ``table`` (as integers: they may lie past year 9999)."""
    local = f'"{layer.time_field}" AT TIME ZONE :tz'
    return sorted(tuple(r) for r in conn.execute(text(
        f"SELECT DISTINCT extract(year FROM {local})::int, extract(month FROM {local})::int "
        f"FROM {table}"), {"tz": str(LOCAL_TZ)}).all())


def staged_months(conn: Connection, layer: Layer) -> list[Month]:
    """The months of the rows in the temporary table ``staging`` (see :mod:`layers.store`)."""
    return _months_in(conn, layer, "staging") if layer.partitioned else []


def month_bounds(month: Month) -> tuple[dt.datetime, dt.datetime]:
    """Start and end (exclusive) of a calendar month in China Standard Time."""
    year, number = month
    start = dt.datetime(year, number, 1, tzinfo=LOCAL_TZ)
    end = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=LOCAL_TZ)
    return start, end


def partition_name(layer: Layer, month: Month | None) -> str:
    """Table name (in :data:`SCHEMA`) of ``layer``'s partition of ``month``; None: DEFAULT."""
    if month is None:
        return f"{layer.name}_default"
    return f"{layer.name}_{month[0]:04d}_{month[1]:02d}"


def _qualified(name: str) -> str:
    return f'{SCHEMA}."{name}"'


def partitions_of(conn: Connection, layer: Layer) -> list[str]:
    """Names of the partitions of ``layer``'s table, DEFAULT included, sorted."""
    return list(conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = CAST(:t AS regclass) ORDER BY 1"),
        {"t": f"public.{layer.name}"}).scalars())


def _missing(conn: Connection, layer: Layer, months: list[Month]) -> list[Month]:
    have = set(partitions_of(conn, layer))
    return [m for m in months if partition_name(layer, m) not in have]


class MonthsMissing(Exception):
    """A write needs partitions that do not exist yet (``months``).

    Not an error of the caller's: the writer makes them with :func:`prepare` in a short
    transaction of its own and writes again. Made inside a long transaction, a
    partition would lock the whole table, readers included, until its end, and two
    such edits could deadlock on each other's row locks.
    """

    def __init__(self, months: list[Month]):
        self.months = months
        super().__init__(f"partitions missing for {months}")


def require_months(conn: Connection, layer: Layer, months: Iterable[Month]) -> None:
    """MonthsMissing unless every partition of ``months`` exists (one catalog query)."""
    if not layer.partitioned:
        return
    missing = _missing(conn, layer, sorted(m for m in set(months) if m < LAST))
    if missing:
        raise MonthsMissing(missing)


def ensure_months(conn: Connection, layer: Layer, months: Iterable[Month]) -> list[str]:
    """Create ``layer``'s partitions of ``months`` that do not exist; return their names.

    Runs in the caller's transaction, as the table's owner (before any ``SET ROLE``).
    Costs one catalog query when every month exists. Otherwise concurrent writers are
    serialised on an advisory lock, and rows of a new month already in DEFAULT move
    into its partition.
    """
    if not layer.partitioned:
        return []
    # December 9999 ends past Python's dates: its rows stay in DEFAULT
    wanted = sorted(m for m in set(months) if m < LAST)
    if not _missing(conn, layer, wanted):
        return []
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                 {"k": f"safegrid partitions {layer.name}"})
    created = []
    for month in _missing(conn, layer, wanted):  # again: another writer may have made some
        _create(conn, layer, month)
        created.append(partition_name(layer, month))
    return created


def _create(conn: Connection, layer: Layer, month: Month) -> None:
    """One month's partition, with the rows of its range taken out of DEFAULT first."""
    start, end = month_bounds(month)
    time = f'"{layer.time_field}"'
    default = _qualified(partition_name(layer, None))
    in_range = f"{time} >= :s AND {time} < :e"
    bounds = {"s": start, "e": end}
    moving = conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {default} WHERE {in_range})"),
                          bounds).scalar_one()
    if moving:
        conn.execute(text(f"CREATE TEMP TABLE moving_rows ON COMMIT DROP AS "
                          f"SELECT * FROM {default} WHERE {in_range}"), bounds)
        conn.execute(text(f"DELETE FROM {default} WHERE {in_range}"), bounds)
    table = _qualified(partition_name(layer, month))
    # bounds are literals (DDL takes no parameters), built from two integers
    conn.execute(text(
        f"CREATE TABLE {table} PARTITION OF public.\"{layer.name}\" "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"))
    conn.execute(text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
    if moving:
        conn.execute(text(f'INSERT INTO public."{layer.name}" SELECT * FROM moving_rows'))
        conn.execute(text("DROP TABLE moving_rows"))


def empty_partitions(conn: Connection, layer: Layer, months: list[Month]) -> list[Month]:
    """Those of ``months`` whose existing partition holds no row this transaction sees."""
    if not months:
        return []
    found = conn.execute(text(" UNION ALL ".join(
        f"SELECT {k} WHERE NOT EXISTS (SELECT 1 FROM {_qualified(partition_name(layer, m))})"
        for k, m in enumerate(months)))).scalars().all()
    return [months[k] for k in sorted(found)]


# -- bulk loading: a month's rows written into a table of their own, indexed at once, then
# swapped in for the (empty) partition. Building an index over loaded rows costs a third
# of updating it row by row.


def _loading_name(layer: Layer, month: Month) -> str:
    return partition_name(layer, month) + "_loading"


def load_tables(conn: Connection, layer: Layer, months: list[Month]) -> list[str]:
    """Create empty tables shaped as ``layer``'s partitions for ``months``; their names.

    The rows are written into them (COPY), then :func:`index_loaded` and :func:`swap_in`
    make them the months' partitions.
    """
    tables = [_qualified(_loading_name(layer, m)) for m in months]
    if tables:
        conn.execute(text(";\n".join(
            f'CREATE TABLE {t} (LIKE public."{layer.name}" INCLUDING DEFAULTS '
            f"INCLUDING CONSTRAINTS);\nALTER TABLE {t} ENABLE ROW LEVEL SECURITY"
            for t in tables)))
    return tables


def parent_indexes(conn: Connection, layer: Layer) -> list[tuple[str, str, str | None]]:
    """(name, CREATE INDEX statement, constraint definition or None) of the parent's indexes."""
    return [tuple(r) for r in conn.execute(text(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid), pg_get_constraintdef(k.oid) "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid "
        "WHERE i.indrelid = CAST(:t AS regclass) ORDER BY c.relname"),
        {"t": f'public."{layer.name}"'}).all()]


def index_loaded(conn: Connection, layer: Layer, months: list[Month],
                 parents: list[tuple[str, str, str | None]] | None = None) -> None:
    """Build on the loading tables of ``months`` every index (and key) the parent declares.

    Equal indexes are what ``ATTACH PARTITION`` looks for: it then adopts them instead of
    building its own while the table is locked. One round trip for all of them; pass
    ``parents`` (:func:`parent_indexes`) to save the look-up.
    """
    statements = []
    if parents is None:
        parents = parent_indexes(conn, layer) if months else []
    for month in months:
        loading = _loading_name(layer, month)
        for k, (_name, create, constraint) in enumerate(parents):
            index = f"{loading}_{k}"
            if constraint:  # a primary key or unique constraint
                statements.append(f'ALTER TABLE {_qualified(loading)} ADD CONSTRAINT '
                                  f'"{index}" {constraint}')
                continue
            using = re.match(r"CREATE (UNIQUE )?INDEX \S+ ON ONLY \S+ (USING .*)$", create)
            if using is None:
                raise RuntimeError(f"unexpected index definition: {create}")
            statements.append(f'CREATE {using[1] or ""}INDEX "{index}" ON '
                              f"{_qualified(loading)} {using[2]}")
    if statements:
        conn.execute(text(";\n".join(statements)))


def _child_indexes(conn: Connection, tables: list[str]) -> dict[tuple[str, str], str]:
    """(partition, parent index) -> name of the partition's index, for ``tables`` in SCHEMA."""
    return {(table, parent): child for table, parent, child in conn.execute(text(
        "SELECT t.relname, p.relname, c.relname FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
        "JOIN pg_inherits h ON h.inhrelid = i.indexrelid JOIN pg_class p ON p.oid = h.inhparent "
        "WHERE i.indrelid = ANY(CAST(:t AS regclass[]))"),
        {"t": [_qualified(t) for t in tables]}).all()}


def swap_in(conn: Connection, layer: Layer, months: list[Month]) -> None:
    """Make the indexed loading tables of ``months`` their partitions, for the empty ones.

    The caller holds ``ACCESS EXCLUSIVE`` on the parent and has checked, under it, that
    those partitions are empty. Index names stay those of the partitions replaced.
    """
    if not months:
        return
    names = _child_indexes(conn, [partition_name(layer, m) for m in months])
    parents = parent_indexes(conn, layer)
    statements = []
    for month in months:
        name, loading = partition_name(layer, month), _loading_name(layer, month)
        statements += [f"DROP TABLE {_qualified(name)}",
                       f'ALTER TABLE {_qualified(loading)} RENAME TO "{name}"']
        statements += [f'ALTER INDEX {SCHEMA}."{loading}_{k}" RENAME TO "{names[name, parent]}"'
                       for k, (parent, _create, _constraint) in enumerate(parents)
                       if (name, parent) in names]
        start, end = month_bounds(month)
        statements.append(
            f'ALTER TABLE public."{layer.name}" ATTACH PARTITION {_qualified(name)} '
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')")
    conn.execute(text(";\n".join(statements)))


def adopt_default(conn: Connection, layer: Layer) -> list[str]:
    """Give every month found in ``layer``'s DEFAULT partition its own; return the new ones.

    DEFAULT is then empty (but for rows of December 9999 or later).
    """
    if not layer.partitioned:
        return []
    default = _qualified(partition_name(layer, None))
    return ensure_months(conn, layer, _months_in(conn, layer, default))


def prepare(engine: Engine, layer: Layer, months: Iterable[Month] = ()) -> list[str]:
    """Create, in a transaction of its own, every partition a coming write may need.

    ``months`` (the write's), this month and the next, and the months found in DEFAULT.
    Returns the names of the partitions created.
    """
    if not layer.partitioned:
        return []
    today = dt.datetime.now(LOCAL_TZ)
    ahead = [(today.year, today.month), (today.year + today.month // 12, today.month % 12 + 1)]
    with engine.begin() as conn:
        return ensure_months(conn, layer, [*months, *ahead]) + adopt_default(conn, layer)
