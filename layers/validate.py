"""Check and coerce input features against a layer declaration.

Used by file import and the HTTP API alike: a GeoDataFrame in EPSG:4326 comes in, a
clean one (declared input fields only, typed, defaults filled) comes out, or
:class:`~layers.errors.InputRejected` lists every bad row. Nothing here touches the
database; checks that need it (location, references, uniqueness) are in
:mod:`layers.store`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.validate import SERVED_DECIMALS, coerce_type, geometry_problems, to_served

from .errors import BadRequest, InputRejected, RowProblem
from .registry import SYSTEM_COLUMNS, Field, Layer

__all__ = ["LOCAL_TZ", "YEARS", "at_source_rows", "check_year", "clean_features", "instant",
           "period_end"]

# Timestamps without a zone are taken as China Standard Time.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# The years a date-time may fall in, first and last.
YEARS = (1900, 2200)


def clean_features(gdf: gpd.GeoDataFrame, layer: Layer, first_row: int = 1) -> gpd.GeoDataFrame:
    """Validate ``gdf`` (EPSG:4326) for ``layer``; return it typed, with declared fields only.

    Raises :class:`InputRejected` naming unknown or missing fields as a whole, or every
    bad row (numbered from ``first_row``, or as ``gdf.attrs["rows"]`` says for a table
    read by :func:`layers.io.read_file`) with its reason. A choice may be given by one of
    its words (``在线`` for ``online``). ``gdf.attrs["problems"]`` (position -> reason)
    says why a row's geometry is missing; the returned frame keeps ``attrs["rows"]``.
    """
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    known = set(layer.field_names) | set(SYSTEM_COLUMNS)
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise InputRejected(
            f"unknown field(s) {', '.join(map(repr, unknown))} for layer {layer.name}; "
            f"it takes: {', '.join(f.name for f in layer.input_fields)}"
        )
    absent = [f.name for f in layer.input_fields if f.required and f.name not in columns]
    if absent:
        raise InputRejected(
            f"required field(s) {', '.join(map(repr, absent))} missing for layer {layer.name}"
        )
    rows = gdf.attrs.get("rows")
    if rows is not None and len(rows) != len(gdf):  # a subset of a table: its own order
        rows = None
    number = (lambda i: int(rows[i])) if rows is not None else (lambda i: first_row + i)
    problems: list[RowProblem] = []
    out = gpd.GeoDataFrame(index=gdf.index)
    for f in layer.input_fields:
        raw = gdf[f.name] if f.name in columns else pd.Series([None] * len(gdf), index=gdf.index)
        values, bad = _coerce_field(raw, f)
        problems += [RowProblem(number(i), reason) for i, reason in bad]
        out[f.name] = values
    problems += [RowProblem(number(i), reason) for i, reason in layer.order_problems(out)]
    geoms = coerce_type(gdf.geometry.values.to_numpy(), layer.geometry)
    reasons = geometry_problems(geoms, layer.geometry)
    if not any(reasons):
        served = to_served(geoms)  # stored as served: a client reads what checks saw
        # only what rounding changed needs checking again, points aside: a finite point
        # on the planet stays one on the grid (its limits, 180 and 90, are grid nodes)
        moved = np.flatnonzero([a is not b for a, b in zip(geoms, served, strict=True)])
        moved = moved[shapely.get_type_id(served[moved]) != 0]
        reasons = [None] * len(geoms)
        for i, r in zip(moved, geometry_problems(served[moved], layer.geometry), strict=True):
            reasons[i] = r and f"at the served precision ({SERVED_DECIMALS} decimals) {r}"
        geoms = served
    unread = (gdf.attrs.get("problems") or {}) if rows is not None else {}
    for i, reason in enumerate(reasons):
        if reason:
            problems.append(RowProblem(number(i), unread.get(i, reason)))
    if problems:
        raise InputRejected(
            f"{len({p.row for p in problems})} of {len(gdf)} rows refused for layer "
            f"{layer.name}; nothing was written",
            problems,
        )
    clean = out.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs="EPSG:4326"))
    clean.attrs = {"rows": rows} if rows is not None else {}
    return clean


def at_source_rows(exc: InputRejected, rows: Sequence[int] | None) -> InputRejected:
    """``exc`` with its rows renumbered as the source shows them.

    :mod:`layers.store` numbers rows 1, 2... in feature order; ``rows[i]`` is the
    source's number of feature i.
    """
    if rows is None or not exc.problems:
        return exc
    return InputRejected(exc.message, [
        RowProblem(int(rows[p.row - 1]) if 0 < p.row <= len(rows) else p.row, p.reason)
        for p in exc.problems])


def _is_null(value: object) -> bool:
    if value is None or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _coerce_field(raw: pd.Series, f: Field) -> tuple[Sequence, list[tuple[int, str]]]:
    """Coerce one column; return the values and (position, reason) of bad ones."""
    whole = _coerce_column(raw, f)
    if whole is not None:
        return whole, []
    if not f.required and raw.isna().all():  # an optional field the input leaves out
        return [f.default] * len(raw), []
    convert = {"text": _to_text, "int": _to_int, "float": _to_float, "datetime": _to_datetime}[
        f.type
    ]
    values: list = []
    bad: list[tuple[int, str]] = []
    for i, value in enumerate(raw.tolist()):
        if _is_null(value):
            if f.required:
                bad.append((i, f"field {f.name!r} is missing a value"))
            values.append(f.default)
            continue
        try:
            converted = convert(value)
        except (TypeError, ValueError) as exc:
            bad.append((i, f"field {f.name!r}: {exc}"))
            values.append(None)
            continue
        if f.choices is not None:
            converted = f.choice_of(converted) or converted
        reason = _domain_problem(converted, f)
        if reason:
            bad.append((i, reason))
        values.append(converted)
    return values, bad


def _coerce_column(raw: pd.Series, f: Field) -> Sequence | None:
    """The whole column coerced at once when every value is present and good, else None.

    What typed files hold (numbers, date-times, text) needs no look at each value; a
    null, a bad value or text to parse goes value by value for its reason. The result
    equals the value-by-value one.
    """
    if len(raw) == 0 or raw.isna().any():
        return None
    if f.type == "datetime":
        return _datetime_column(raw, f)
    if f.type in ("int", "float"):
        return _number_column(raw, f)
    return _text_column(raw.tolist(), f)


def _datetime_column(raw: pd.Series, f: Field) -> pd.arrays.DatetimeArray | None:
    # nanoseconds: Python's datetimes, and so the value-by-value path, drop them
    if f.choices is not None or not pd.api.types.is_datetime64_any_dtype(raw.dtype) \
            or raw.dt.unit == "ns":
        return None
    if raw.dt.tz is None:
        try:  # a time a clock change skips or repeats goes value by value
            raw = raw.dt.tz_localize(LOCAL_TZ, ambiguous="raise", nonexistent="raise")
        except ValueError:
            return None
    if not raw.dt.year.between(*YEARS).all():
        return None
    return raw.dt.as_unit("us").array


def _number_column(raw: pd.Series, f: Field) -> list | None:
    kind = raw.dtype
    if f.choices is not None or pd.api.types.is_bool_dtype(kind) or not (
            pd.api.types.is_integer_dtype(kind) or pd.api.types.is_float_dtype(kind)):
        return None
    numbers = raw.to_numpy(dtype=float)
    # beyond 2**53 a float is not the whole number it rounds to
    if not (np.isfinite(numbers).all() and (np.abs(numbers) < 2.0**53).all()):
        return None
    if f.type == "int" and not (numbers == np.floor(numbers)).all():
        return None
    if f.minimum is not None and not (
            numbers > f.minimum if f.exclusive_minimum else numbers >= f.minimum).all():
        return None
    if f.maximum is not None and not (
            numbers < f.maximum if f.exclusive_maximum else numbers <= f.maximum).all():
        return None
    return (numbers.astype(np.int64) if f.type == "int" else numbers).tolist()


def _text_column(values: list, f: Field) -> list | None:
    if not all(type(v) is str for v in values):
        return None
    texts = [v.strip() for v in values]
    if not all(texts) or any("\x00" in t for t in texts):
        return None
    if f.choices is not None and not set(texts) <= set(f.choices):
        return None  # words for choices (在线) go value by value
    return texts


def _domain_problem(value: object, f: Field) -> str | None:
    if f.choices is not None and value not in f.choices:
        return f"field {f.name!r}: {value!r} is not one of {f.choices_text()}"
    if f.type in ("int", "float"):
        low_bad = f.minimum is not None and (
            value <= f.minimum if f.exclusive_minimum else value < f.minimum
        )
        high_bad = f.maximum is not None and (
            value >= f.maximum if f.exclusive_maximum else value > f.maximum
        )
        if low_bad or high_bad:
            return f"field {f.name!r}: {value:g} is out of range {f.range_text()}"
    return None


def _to_text(value: object) -> str:
    if isinstance(value, dict | list | tuple):
        raise ValueError(f"{value!r} is not a text value")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if "\x00" in text:  # PostgreSQL text cannot hold it
        raise ValueError(f"{text!r} contains a NUL character")
    return text


def _to_float(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _to_int(value: object) -> int:
    number = _to_float(value)
    if not number.is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


def _to_datetime(value: object) -> dt.datetime:
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    elif isinstance(value, dt.datetime):
        pass
    elif isinstance(value, dt.date):
        value = dt.datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip().replace("/", "-")
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    check_year(value)
    return value


def check_year(moment: dt.datetime) -> None:
    """ValueError unless ``moment`` lies in the years safegrid works with (:data:`YEARS`).

    Far-off years are typing errors, and near year 1 or 9999 a time-zone shift leaves the
    range Python and PostgreSQL share.
    """
    if not YEARS[0] <= moment.year <= YEARS[1]:
        raise ValueError(f"the year {moment.year} is not in {YEARS[0]}-{YEARS[1]}")


def instant(text: str, end_of_day: bool) -> dt.datetime:
    """A date (its first or last moment, local time) or an RFC 3339 date-time.

    Parameters
    ----------
    text
        ``YYYY-MM-DD``, or a date-time such as ``2025-03-01T08:00:00Z``; one without an
        offset is taken in :data:`LOCAL_TZ` (China Standard Time).
    end_of_day
        For a date: its last moment (23:59:59.999999) instead of its first.

    Returns
    -------
    datetime.datetime
        Zone-aware.

    Raises
    ------
    BadRequest
        Naming ``text`` when it is neither, or its year is not in :data:`YEARS`.
    """
    text = text.strip()
    try:
        if "T" not in text.upper() and len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time.max if end_of_day else dt.time.min)
        else:
            moment = dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"datetime {text!r} is not an RFC 3339 date or date-time") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=LOCAL_TZ)
    try:
        check_year(moment)
    except ValueError as exc:
        raise BadRequest(f"datetime {text!r}: {exc}") from None
    return moment


def period_end(text: str) -> dt.datetime:
    """The exclusive end of a period given as ``to``: a date includes that whole day.

    ``to=2025-12-31`` ends at the first moment of 1 January 2026 (local time), so a
    period of dates is whole days and whole months; a date-time is taken as it is.

    Raises
    ------
    BadRequest
        As :func:`instant`.
    """
    text = text.strip()
    if "T" not in text.upper() and len(text) == 10:
        return instant(text, False) + dt.timedelta(days=1)
    return instant(text, True)
