"""PostgreSQL's binary COPY format, built a whole column at a time with NumPy.

A bulk write sends its rows in this format: the database then decodes no text (no
hex WKB, no date-time parsing), and the rows are laid out with array operations
instead of a string per value. Each column is given as (lengths, data): the byte length
of every value (-1 for NULL) and the values' bytes one after another.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

__all__ = ["SIGNATURE", "TRAILER", "Column", "datetimes", "fixed", "floats", "geometries",
           "integers", "rows", "texts"]

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
Column = tuple[np.ndarray, np.ndarray]  # lengths (-1: NULL), the values' bytes
_EPOCH_2000_US = 946_684_800_000_000  # PostgreSQL counts from 2000-01-01 UTC
_INT32 = (-(2**31), 2**31 - 1)


def fixed(values: np.ndarray, dtype: str, nulls: np.ndarray | None = None) -> Column:
    """Numbers of one big-endian ``dtype`` (``>i4``, ``>i8``, ``>f8``); ``nulls`` are NULL."""
    values = np.asarray(values).astype(dtype)
    size = values.dtype.itemsize
    lengths = np.full(len(values), size, dtype=np.int64)
    if nulls is not None and nulls.any():
        lengths[nulls] = -1
        values = values[~nulls]
    return lengths, values.view(np.uint8).ravel()


def integers(values: pd.Series) -> Column | None:
    """PostgreSQL ``integer`` values (None: NULL); None when one does not fit in it."""
    if pd.api.types.is_integer_dtype(values.dtype) and isinstance(values.dtype, np.dtype):
        numbers, nulls = values.to_numpy(dtype=np.int64), None
    else:
        nulls = values.isna().to_numpy()
        present = values[~nulls].tolist()
        if not all(isinstance(v, int | np.integer) and not isinstance(v, bool)
                   for v in present):
            return None
        numbers = np.zeros(len(values), dtype=np.int64)
        numbers[~nulls] = np.array(present, dtype=object).astype(np.int64) if present else 0
    if len(numbers) and (numbers.min() < _INT32[0] or numbers.max() > _INT32[1]):
        return None
    return fixed(numbers, ">i4", nulls)


def floats(values: pd.Series) -> Column:
    """PostgreSQL ``double precision`` values; None and NaN are NULL (as in text COPY)."""
    numbers = pd.to_numeric(values, errors="raise").to_numpy(dtype=float, na_value=np.nan)
    return fixed(numbers, ">f8", np.isnan(numbers))


def datetimes(values: pd.Series) -> Column:
    """``timestamptz`` values from zone-aware date-times (None, NaT: NULL)."""
    times = pd.to_datetime(values, utc=True).dt.as_unit("us")
    nulls = times.isna().to_numpy()
    micros = times.to_numpy(dtype="datetime64[us]").astype(np.int64) - _EPOCH_2000_US
    return fixed(micros, ">i8", nulls)


def texts(values: list | np.ndarray | pd.Series) -> Column:
    """``text`` values as UTF-8 (None: NULL)."""
    array = pa.array(values, type=pa.large_string(), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    _validity, offsets, data = array.buffers()
    ends = np.frombuffer(offsets, dtype=np.int64)[array.offset:array.offset + len(array) + 1]
    lengths = np.diff(ends)
    lengths[array.is_null().to_numpy(zero_copy_only=False)] = -1
    payload = (np.frombuffer(data, dtype=np.uint8)[ends[0]:ends[-1]] if data is not None
               else np.zeros(0, dtype=np.uint8))
    return lengths, payload


def geometries(geoms: np.ndarray) -> Column:
    """``geometry`` values as WKB without SRID (the column gives its own); None: NULL."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) and (shapely.get_type_id(geoms) == 0).all() and not (
            shapely.is_empty(geoms) | shapely.has_z(geoms)).any():
        xy = shapely.get_coordinates(geoms)  # 2D points: 21 bytes each, built at once
        wkb = np.empty(len(xy), dtype=[("order", "u1"), ("type", "<u4"), ("x", "<f8"),
                                       ("y", "<f8")])
        wkb["order"], wkb["type"], wkb["x"], wkb["y"] = 1, 1, xy[:, 0], xy[:, 1]
        return np.full(len(xy), wkb.itemsize, dtype=np.int64), wkb.view(np.uint8).ravel()
    blobs = shapely.to_wkb(geoms)
    lengths = np.array([-1 if b is None else len(b) for b in blobs], dtype=np.int64)
    return lengths, np.frombuffer(b"".join(b for b in blobs if b is not None), dtype=np.uint8)


def rows(columns: list[Column], per_message: int) -> list[bytes]:
    """The tuples of ``columns`` in binary COPY format, ``per_message`` rows per message.

    Without :data:`SIGNATURE` (put it before the first) and :data:`TRAILER` (after the
    last).
    """
    n = len(columns[0][0]) if columns else 0
    if n == 0:
        return []
    sizes = [np.maximum(lengths, 0) for lengths, _ in columns]
    row_bytes = 2 + sum(4 + size for size in sizes)
    ends = np.cumsum(row_bytes)
    starts = ends - row_bytes
    out = np.empty(int(ends[-1]), dtype=np.uint8)
    count = np.array([len(columns)], dtype=">i2").view(np.uint8)
    out[starts], out[starts + 1] = count[0], count[1]
    at = starts + 2
    for (lengths, data), size in zip(columns, sizes, strict=True):
        out[at[:, None] + np.arange(4)] = lengths.astype(">i4").view(np.uint8).reshape(-1, 4)
        at = at + 4
        if len(data):
            first = np.cumsum(size) - size
            out[np.repeat(at - first, size) + np.arange(len(data))] = data
        at = at + size
    cuts = [0, *ends[per_message - 1::per_message].tolist()]
    if cuts[-1] != len(out):
        cuts.append(len(out))
    view = out.tobytes()
    return [view[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
