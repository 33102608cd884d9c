"""Parse and check OGC API query parameters; every problem is a 400 naming the parameter."""

from __future__ import annotations

import datetime as dt
import json
import math

from flask import request
from werkzeug.datastructures import MultiDict

from geo.crs import Projection
from layers.errors import BadRequest
from layers.features import CRS84, OUTPUT_CRS, ItemQuery
from layers.registry import Layer
from layers.validate import instant

__all__ = ["BadRequest", "cells_query", "flag_arg", "item_query", "json_body", "number_arg",
           "only_params", "parse_crs_uri"]

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100
_COMMON = {"f", "limit", "bbox", "bbox-crs", "datetime", "crs", "after", "before"}
OUTPUT_CRS_4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
OUTPUT_CRS_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"


def refuse_nul_args() -> None:
    """BadRequest naming a query parameter whose name or value holds a NUL character.

    Runs before every request (PostgreSQL text cannot hold NUL).
    """
    for key, value in request.args.items(multi=True):
        if "\x00" in key or "\x00" in value:
            raise BadRequest(f"parameter {key!r} contains a NUL character")


def _nul_path(value: object, path: str) -> str | None:
    """Where in a parsed JSON ``value`` a string holds a NUL character, or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return None
    for key, item in items:
        where = f"{path}.{key}" if path else str(key)
        if "\x00" in str(key):
            return where
        found = _nul_path(item, where)
        if found:
            return found
    return None


def only_params(allowed: set[str] | frozenset[str]) -> None:
    """BadRequest naming every query parameter of the request not in ``allowed``."""
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        takes = f"; this takes {', '.join(sorted(allowed))}" if allowed else \
            "; this takes none"
        raise BadRequest(f"unknown parameter(s) {', '.join(map(repr, unknown))}{takes}")


def numbers_arg(name: str) -> tuple[float, ...] | None:
    """Query parameter ``name`` as comma-separated finite numbers (None when absent)."""
    raw = request.args.get(name)
    if raw is None:
        return None
    values = []
    for item in raw.split(","):
        try:
            value = float(item)
        except ValueError:
            raise BadRequest(f"{name}={raw!r}: {item.strip()!r} is not a number") from None
        if not math.isfinite(value):
            raise BadRequest(f"{name}={raw!r}: {item.strip()!r} is not a finite number")
        values.append(value)
    return tuple(values)


def whole_arg(name: str, default: int) -> int:
    """Query parameter ``name`` as a whole number (``default`` when absent)."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.strip().isdecimal() and len(raw.strip()) <= 18):
        raise BadRequest(f"{name}={raw!r} is not a whole number of 0 or more")
    return int(raw)


def number_arg(name: str) -> float | None:
    """Query parameter ``name`` as a finite number (None when absent), or BadRequest."""
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise BadRequest(f"{name}={raw!r} is not a finite number")
    return value


def flag_arg(name: str, default: bool) -> bool:
    """Query parameter ``name`` as true/false (``default`` when absent), or BadRequest."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false, got {raw!r}")
    return raw.lower() == "true"


def json_body(fields: dict[str, type | tuple[type, ...]], required: set[str]) -> dict:
    """The request's JSON object, its fields checked by type, or BadRequest naming the problem."""
    if (request.mimetype or "") != "application/json":
        raise BadRequest("send the parameters as application/json")
    try:
        body = json.loads(request.get_data(cache=False) or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    nul = _nul_path(body, "")
    if nul:
        raise BadRequest(f"field {nul!r} contains a NUL character")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(map(repr, unknown))}; "
                         f"this takes {', '.join(fields)}")
    missing = sorted(required - set(body))
    if missing:
        raise BadRequest(f"missing field(s) {', '.join(map(repr, missing))}")
    for name, kind in fields.items():
        kinds = kind if isinstance(kind, tuple) else (kind,)
        value = body.get(name)
        if name in body and (not isinstance(value, kinds)
                             or (isinstance(value, bool) and bool not in kinds)):
            raise BadRequest(f"{name} must be a {' or '.join(k.__name__ for k in kinds)}")
    return body


def parse_crs_uri(value: str | None, name: str) -> str:
    """The canonical URI of a supported CRS given as URI, ``EPSG:n`` or ``CRS84``."""
    if value is None or value == "":
        return CRS84
    aliases = {"CRS84": CRS84, "OGC:CRS84": CRS84, "EPSG:4326": OUTPUT_CRS_4326,
               "EPSG:3857": OUTPUT_CRS_3857}
    uri = aliases.get(value.strip("[]").upper(), value.strip("[]"))
    if uri not in OUTPUT_CRS:
        raise BadRequest(f"{name} {value!r} is not supported; use one of {', '.join(OUTPUT_CRS)}")
    return uri


def item_query(args: MultiDict, layer: Layer) -> ItemQuery:
    """Build an :class:`ItemQuery` from the request's query string, or raise 400."""
    scalar = {f.name: f for f in layer.fields}
    for key in args:
        if key not in _COMMON and key not in scalar:
            raise BadRequest(
                f"unknown parameter {key!r}; {layer.name} items take "
                f"{', '.join(sorted(_COMMON))} and its fields: {', '.join(scalar)}"
            )
        if len(args.getlist(key)) > 1:
            raise BadRequest(f"parameter {key!r} is given more than once")
    fmt = args.get("f", "json")
    if fmt not in ("json", "geojson"):
        raise BadRequest(f"f={fmt!r} is not offered; items come as GeoJSON (f=json)")
    start, end = _interval(args.get("datetime"), layer)
    return ItemQuery(
        bbox=_bbox(args.get("bbox"), parse_crs_uri(args.get("bbox-crs"), "bbox-crs")),
        start=start,
        end=end,
        filters={name: _value(args[name], scalar[name]) for name in args if name in scalar},
        limit=parse_limit(args.get("limit")),
        after=_id(args.get("after"), "after"),
        before=_id(args.get("before"), "before"),
        crs=parse_crs_uri(args.get("crs"), "crs"),
    )


def parse_limit(value: str | None) -> int:
    """The page size from ``limit`` (default DEFAULT_LIMIT, at most MAX_LIMIT); 400 if bad."""
    if value is None:
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise BadRequest(f"limit {value!r} is not a whole number") from None
    if limit < 1:
        raise BadRequest(f"limit must be at least 1, got {limit}")
    return min(limit, MAX_LIMIT)


def _id(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{name} {value!r} is not a feature id") from None


def _bbox(value: str | None, crs_uri: str) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        raise BadRequest(f"bbox {value!r} must be 4 comma-separated numbers") from None
    if len(numbers) == 6:
        numbers = numbers[0:2] + numbers[3:5]
    if len(numbers) != 4 or not all(math.isfinite(v) for v in numbers):
        raise BadRequest(f"bbox {value!r} must be 4 comma-separated numbers")
    if crs_uri == OUTPUT_CRS_4326:  # EPSG:4326 is latitude first
        numbers = [numbers[1], numbers[0], numbers[3], numbers[2]]
    if crs_uri == OUTPUT_CRS_3857:
        numbers = list(Projection(4326, source=3857).transformer.transform_bounds(*numbers))
    x0, y0, x1, y1 = numbers
    if not (-180 <= x0 <= 180 and -180 <= x1 <= 180 and -90 <= y0 <= 90 and -90 <= y1 <= 90):
        raise BadRequest(f"bbox {value!r} is off the planet for {crs_uri}")
    if y0 > y1 or x0 > x1:
        raise BadRequest(f"bbox {value!r}: the lower corner must come first")
    return (x0, y0, x1, y1)


# Clients with no open-ended interval of their own write the first or last year they
# can (QGIS: 0000-01-01T00:00:00Z/..., .../9999-12-31T00:00:00Z): no bound at all.
FAR_YEARS = ("0000", "9999")


def _far_year(text: str) -> bool:
    """Whether ``text`` is a date or date-time in the year 0000 or 9999."""
    text = text.strip()
    return text[:4] in FAR_YEARS and text[4:5] == "-"


def _open_bound(text: str) -> bool:
    """Whether one end of an interval is open: empty, ``..`` or in a far year."""
    return text.strip() in ("", "..") or _far_year(text)


def _interval(value: str | None, layer: Layer) -> tuple[dt.datetime | None, dt.datetime | None]:
    if value is None:
        return None, None
    if not layer.time_field:
        raise BadRequest(f"datetime: layer {layer.name} has no time field")
    if "/" not in value:
        if len(value.strip()) == 10:
            return instant(value, False), instant(value, True)
        moment = instant(value, False)
        return moment, moment
    lo, hi = value.split("/", 1)
    if _open_bound(lo) and _open_bound(hi) and not (_far_year(lo) or _far_year(hi)):
        raise BadRequest("datetime '../..' is not an interval: give at least one end")
    start = None if _open_bound(lo) else instant(lo, False)
    end = None if _open_bound(hi) else instant(hi, True)
    if start and end and start > end:
        raise BadRequest(f"datetime {value!r}: the start is after the end")
    return start, end


def _value(raw: str, f) -> object:
    try:
        if f.type == "int":
            return int(raw)
        if f.type == "float":
            number = float(raw)
            if not math.isfinite(number):
                raise ValueError
            return number
        if f.type == "datetime":
            return instant(raw, False)
    except ValueError:
        raise BadRequest(f"{f.name}={raw!r} is not a valid {f.type}") from None
    if f.choices and raw not in f.choices:
        raise BadRequest(f"{f.name}={raw!r} is not one of {', '.join(f.choices)}")
    return raw


CELLS_PARAMS = ("f", "bbox", "datetime", "width", "tolerance", "limit", "after")


def cells_query(args: MultiDict, layer: Layer) -> dict:
    """The parameters of an ``incident_cells`` items request, or 400 naming the first bad one.

    ``layer`` is the incidents layer (its time field reads ``datetime``). Returns bbox
    (lon/lat or None), start, end, width and tolerance (metres or None: the border's
    defaults), limit and after.
    """
    for key in args:
        if key not in CELLS_PARAMS:
            raise BadRequest(f"unknown parameter {key!r}; incident_cells items take "
                             f"{', '.join(CELLS_PARAMS)}")
        if len(args.getlist(key)) > 1:
            raise BadRequest(f"parameter {key!r} is given more than once")
    if args.get("f", "json") not in ("json", "geojson"):
        raise BadRequest(f"f={args['f']!r} is not offered; items come as GeoJSON (f=json)")
    start, end = _interval(args.get("datetime"), layer)
    out: dict = {"bbox": _bbox(args.get("bbox"), CRS84), "start": start, "end": end,
                 "limit": parse_limit(args.get("limit")), "after": _id(args.get("after"),
                                                                       "after")}
    for name in ("width", "tolerance"):
        raw = args.get(name)
        try:
            out[name] = None if raw is None else float(raw)
        except ValueError:
            raise BadRequest(f"{name} {raw!r} is not a number of metres") from None
    return out
