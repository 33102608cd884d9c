"""Tables as features: CSV (UTF-8 or GBK/GB18030), Excel workbooks (.xlsx, .xls).

A city's camera ledgers and key-area lists come as spreadsheets with Chinese headers,
sometimes with title rows above the header. :func:`read_table` finds the header row
(the first of the first :data:`HEADER_ROWS` rows naming at least two known columns),
maps each header to a field by the layer's header map
(:meth:`layers.registry.Layer.header_map`, overridden by ``--columns``) and reads the
position from lon/lat columns or a WKT column. Rows keep the numbers the sheet shows
(the header of a plain sheet is row 1, so its first data row is 2).
:func:`layers.io.read_file` is the one way in; this module is its reader for tables.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from .errors import InputRejected
from .registry import SKIP, SYSTEM_COLUMNS, Layer, header_key, without_unit

__all__ = ["ENCODINGS", "HEADER_ROWS", "Table", "parse_columns", "read_table"]

# Rows at the top of a sheet searched for the header.
HEADER_ROWS = 10
# Encodings tried, in order, for a CSV without --encoding.
ENCODINGS = ("utf-8-sig", "gb18030")
_POSITION = ("lon", "lat", "wkt")
_RANGES = {"lon": (-180.0, 180.0), "lat": (-90.0, 90.0)}


@dataclass
class Table:
    """A table read as features, before any CRS or checks.

    ``frame`` holds one column per mapped field (values as the cells hold them) and the
    geometry (lon/lat as given); ``rows`` the sheet's row number of each feature;
    ``problems`` why the position of a feature (by position in ``frame``) could not be
    read; ``header_row`` and ``columns`` (header -> field) say what was understood.
    """

    frame: pd.DataFrame
    geometry: np.ndarray
    rows: np.ndarray
    problems: dict[int, str] = field(default_factory=dict)
    header_row: int = 1
    sheet: str | None = None
    columns: dict[str, str] = field(default_factory=dict)


def parse_columns(text: str | None, layer: Layer) -> dict[str, str]:
    """``"经度=lon,纬度=lat,地址=-"`` as {header key: field}, checked against ``layer``.

    A target is a field of the layer, ``lon``, ``lat``, ``wkt`` or ``-`` (leave the
    column out). Raises :class:`InputRejected` in one line on bad syntax or a target
    the layer does not have.
    """
    if not text:
        return {}
    allowed = [*layer.field_names, *SYSTEM_COLUMNS, *_POSITION, SKIP]
    out: dict[str, str] = {}
    for item in unicodedata.normalize("NFKC", text).split(","):
        header, sep, target = item.partition("=")
        header, target = header.strip(), target.strip()
        if not sep or not header or not target or "=" in target:
            raise InputRejected(f"--columns {item.strip()!r} is not HEADER=FIELD "
                                "(e.g. --columns 经度=lon,纬度=lat,状态=status)")
        if target not in allowed:
            shown = [*(f.name for f in layer.input_fields), *_POSITION]
            raise InputRejected(
                f"--columns {item.strip()!r}: {target!r} is not a field of layer "
                f"{layer.name}; use one of {', '.join(shown)} or - (leave it out)")
        out[header_key(header)] = target
    return out


def read_table(path: Path, kind: str, layer: Layer, *, sheet: str | None = None,
               encoding: str | None = None, columns: dict[str, str] | None = None,
               geographic: bool = True) -> Table:
    """Read the table at ``path`` (``kind`` CSV, XLSX or XLS) as features of ``layer``.

    ``columns`` ({header key: field}, see :func:`parse_columns`) wins over the layer's
    header map. With ``geographic`` the lon/lat columns are checked to be degrees on the
    planet. Raises :class:`InputRejected` for a problem of the table as a whole.
    """
    if kind != "CSV" and encoding:
        raise InputRejected("--encoding applies to CSV files; a workbook says its own")
    if kind == "CSV" and sheet:
        raise InputRejected("--sheet applies to workbooks (.xlsx, .xls); a CSV has one table")
    if kind == "CSV":
        name, rows = None, _csv_rows(path, encoding)
    elif kind == "XLSX":
        name, rows = _xlsx_rows(path, sheet)
    else:
        name, rows = _xls_rows(path, sheet)
    grid = _grid(rows)
    filled = np.flatnonzero(grid.notna().any(axis=1).to_numpy())
    lookup = {**layer.header_map(), **(columns or {})}
    try:
        at = _header_at(grid, filled, lookup, layer)
    except InputRejected as exc:
        where = f"{path.name}, sheet {name!r}" if name else path.name
        hint = "; --sheet names another sheet" if name else ""
        raise InputRejected(f"{where}: {exc.message}{hint}") from None
    header = grid.iloc[at].tolist()
    below = filled[filled > at]
    body = grid.iloc[below]
    targets = _targets(header, body, lookup, layer, path, at + 1)
    _require(targets, layer, path)
    data = {t: body[j].tolist() for j, t in enumerate(targets) if t not in (None, SKIP)}
    for target, values in data.items():
        if target in layer.field_names:
            data[target] = _without_units(values, layer.get_field(target).title_zh)
    geometry, problems = _geometry(data, targets, header, path, geographic)
    for position in _POSITION:
        data.pop(position, None)
    named = {str(header[j]): t for j, t in enumerate(targets)
             if t is not None and header[j] is not None}
    return Table(pd.DataFrame(data, index=pd.RangeIndex(len(body)), dtype=object),
                 geometry, below + 1, problems, at + 1, name, named)


def _grid(rows: list[list]) -> pd.DataFrame:
    """The cells as a frame (columns 0, 1...; row i is the sheet's row i + 1).

    Text is stripped; empty cells are None.
    """
    grid = pd.DataFrame(rows, dtype=object)
    return grid.apply(_tidy) if len(grid.columns) else grid


def _tidy(column: pd.Series) -> pd.Series:
    present = column.notna()
    if column[present].map(type).eq(str).all():  # CSV: text, read at once
        stripped = column.str.strip()
        return stripped.where(present & (stripped != ""), None)
    return column.map(_tidy_value)


def _tidy_value(value: object) -> object:
    if isinstance(value, str):
        return value.strip() or None
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value


# Units a ledger writes after a number, by the unit in a field's Chinese title.
_UNITS = {"米": ("米", "m"), "度": ("度", "°")}


def _without_units(values: list, title: str) -> list:
    """``values`` with a number's unit dropped where the field's title names it.

    ``6米`` or ``6 m`` for 安装高度(米), ``90°`` for 朝向(度); other text stays as it is
    (and is refused with its reason).
    """
    unit = re.search(r"\((\w+)\)$", unicodedata.normalize("NFKC", title))
    words = _UNITS.get(unit.group(1), ()) if unit else ()
    if not words:
        return values
    pattern = re.compile(r"\s*([-+]?\d+(?:\.\d+)?)\s*(?:" + "|".join(words) + r")\s*")
    out = []
    for value in values:
        text = unicodedata.normalize("NFKC", value) if isinstance(value, str) else None
        found = pattern.fullmatch(text) if text else None
        out.append(found.group(1) if found else value)
    return out


def _csv_rows(path: Path, encoding: str | None) -> list[list]:
    """The records of a CSV, decoded as ``encoding``, or as :data:`ENCODINGS` in turn."""
    raw = path.read_bytes()
    text = None
    for name in (encoding,) if encoding else ENCODINGS:
        try:
            text = raw.decode(name)
            break
        except LookupError:
            raise InputRejected(f"--encoding {name!r} is not an encoding Python knows "
                                "(e.g. utf-8, gbk, gb18030)") from None
        except UnicodeDecodeError as exc:
            if encoding:
                raise InputRejected(f"{path.name}: not {name} text (byte {exc.start}); "
                                    "try another --encoding") from None
    if text is None:
        raise InputRejected(f"{path.name}: neither UTF-8 nor GB18030 text; "
                            "say its encoding with --encoding")
    if encoding and text.startswith("\ufeff"):
        text = text[1:]
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise InputRejected(f"{path.name}: cannot read the file: {exc}") from None


def _pick_sheet(path: Path, names: list[str], sheet: str | None) -> str:
    if sheet is None:
        if not names:
            raise InputRejected(f"{path.name}: the workbook has no sheet")
        return names[0]
    if sheet not in names:
        raise InputRejected(f"{path.name}: no sheet {sheet!r}; its sheets are: "
                            + ", ".join(repr(n) for n in names))
    return sheet


def _xlsx_rows(path: Path, sheet: str | None) -> tuple[str, list[list]]:
    """Rows of a sheet (the first unless named) of an .xlsx workbook, from row 1."""
    try:
        import openpyxl
    except ImportError:
        raise InputRejected(f"{path.name}: reading .xlsx needs the openpyxl package "
                            "(pip install openpyxl)") from None
    try:
        book = openpyxl.load_workbook(path, data_only=True)
    except Exception as exc:  # zip, XML and openpyxl's own errors
        raise InputRejected(f"{path.name}: cannot read the workbook: "
                            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                            ) from None
    try:
        name = _pick_sheet(path, book.sheetnames, sheet)
        rows = [list(cells) for cells in book[name].iter_rows(values_only=True)]
    finally:
        book.close()
    return name, rows


def _xls_rows(path: Path, sheet: str | None) -> tuple[str, list[list]]:
    """Rows of a sheet of an Excel 97-2003 (.xls) workbook; dates as date-times."""
    try:
        import xlrd
    except ImportError:
        raise InputRejected(f"{path.name}: reading .xls needs the xlrd package "
                            "(pip install xlrd), or save the workbook as .xlsx") from None
    try:
        book = xlrd.open_workbook(path)
    except Exception as exc:  # xlrd raises XLRDError and struct/zip errors
        raise InputRejected(f"{path.name}: cannot read the workbook: "
                            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                            ) from None
    name = _pick_sheet(path, book.sheet_names(), sheet)
    table = book.sheet_by_name(name)
    rows = []
    for i in range(table.nrows):
        cells = []
        for cell in table.row(i):
            if cell.ctype == xlrd.XL_CELL_DATE:
                cells.append(xlrd.xldate_as_datetime(cell.value, book.datemode))
            elif cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                cells.append(None)
            else:
                cells.append(cell.value)
        rows.append(cells)
    return name, rows


def _lookup(header: object, lookup: dict[str, str]) -> str | None:
    if header is None:
        return None
    key = header_key(header)
    if key in lookup:
        return lookup[key]
    return lookup.get(without_unit(key))


def _header_at(grid: pd.DataFrame, filled: np.ndarray, lookup: dict[str, str],
               layer: Layer) -> int:
    """Position of the header row in ``grid``.

    The first of the first filled rows naming two known columns (or one, in a table of
    one column); else the first naming any.
    """
    if not len(filled):
        raise InputRejected("the table is empty: no header row and no data")
    best = None
    for i in filled[:HEADER_ROWS]:
        cells = [c for c in grid.iloc[i] if c is not None]
        known = sum(_lookup(c, lookup) is not None for c in cells)
        if known >= min(2, len(cells)):
            return int(i)
        best = int(i) if best is None and known else best
    if best is None:
        raise InputRejected(f"no header row: none of the first {HEADER_ROWS} rows names a "
                            f"column of layer {layer.name} (such as 经度, 纬度)")
    return best


def _letter(j: int) -> str:
    """The spreadsheet letter of column ``j`` (0-based): A, B, ... Z, AA."""
    out = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        out = chr(65 + r) + out
    return out


def _targets(header: list, body: pd.DataFrame, lookup: dict[str, str], layer: Layer,
             path: Path, header_row: int) -> list[str | None]:
    """The field each column goes to; raises naming unknown or doubled columns."""
    targets: list[str | None] = []
    unknown: list[str] = []
    for j, title in enumerate(header):
        target = _lookup(title, lookup)
        if target is None and not (title is None and body[j].isna().all()):
            unknown.append(f"{_letter(j)} (no header)" if title is None else str(title))
        targets.append(target)
    if unknown:
        example = unknown[0] if "(no header)" not in unknown[0] else "地址"
        raise InputRejected(
            f"{path.name}: column(s) {', '.join(map(repr, unknown))} of the header "
            f"(row {header_row}) match no field of layer {layer.name}; name the field with "
            f"--columns {example}=FIELD or leave a column out with --columns {example}=-; "
            f"fields: {', '.join(f.name for f in layer.input_fields)}, lon, lat, wkt")
    seen: dict[str, int] = {}
    for j, target in enumerate(targets):
        if target is None or target == SKIP:
            continue
        if target in seen:
            raise InputRejected(
                f"{path.name}: columns {str(header[seen[target]])!r} and "
                f"{str(header[j])!r} both give {target!r}; leave one out with "
                f"--columns {header[j]}=-")
        seen[target] = j
    return targets


def _require(targets: list, layer: Layer, path: Path) -> None:
    """Raise naming the headers a required field could have, when no column gives it."""
    absent = [f for f in layer.input_fields if f.required and f.name not in targets]
    if not absent:
        return
    heads = []
    for f in absent:
        names = list(dict.fromkeys(h for h in f.header_names() if h))
        heads.append(" or ".join(names[:6]) + (" ..." if len(names) > 6 else ""))
    raise InputRejected(
        f"{path.name}: required field(s) {', '.join(repr(f.name) for f in absent)} missing "
        f"for layer {layer.name}: no column headed {'; nor '.join(heads)}; name one with "
        f"--columns HEADER={absent[0].name}")


def _label(header: list, targets: list, target: str) -> str:
    title = str(header[targets.index(target)])
    return title if header_key(title) == target else f"{title} ({target})"


def _geometry(data: dict[str, list], targets: list, header: list, path: Path,
              geographic: bool) -> tuple[np.ndarray, dict[int, str]]:
    """Points from lon/lat, or shapes from WKT; and why a row has none."""
    if "lon" in data and "lat" in data:
        return _points(data, targets, header, geographic)
    if "wkt" in data:
        texts = data["wkt"]
        label = _label(header, targets, "wkt")
        shapes = shapely.from_wkt([t if isinstance(t, str) else None for t in texts],
                                  on_invalid="ignore")
        problems = {i: (f"{label} is missing a value" if t is None else
                        f"{label}: {str(t)[:60]!r} is not WKT")
                    for i, (t, s) in enumerate(zip(texts, shapes, strict=True)) if s is None}
        return shapes, problems
    one = "lon" if "lon" in data else "lat" if "lat" in data else None
    hint = f" (it has {one} but not {'lat' if one == 'lon' else 'lon'})" if one else ""
    raise InputRejected(f"{path.name}: the file has no geometry{hint}: a table needs "
                        "lon/lat (经度/纬度) or wkt columns")


def _points(data: dict[str, list], targets: list, header: list,
            geographic: bool) -> tuple[np.ndarray, dict[int, str]]:
    values: dict[str, np.ndarray] = {}
    reasons: dict[int, list[str]] = {}
    for axis in ("lon", "lat"):
        raw = data[axis]
        label = _label(header, targets, axis)
        numbers = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(float)
        low, high = _RANGES[axis]
        for i in np.flatnonzero(~np.isfinite(numbers) | (
                geographic & ((numbers < low) | (numbers > high)))):
            if raw[i] is None:
                why = f"{label} is missing a value"
            elif not np.isfinite(numbers[i]):
                why = f"{label}: {raw[i]!r} is not a number"
            else:
                why = f"{label}: {numbers[i]:g} is out of range [{low:g}, {high:g}]"
            reasons.setdefault(int(i), []).append(why)
        values[axis] = numbers
    lon, lat = values["lon"], values["lat"]
    if geographic:  # a latitude of 112 beside a longitude of 28: the columns are swapped
        swapped = (np.abs(lat) > 90) & (np.abs(lat) <= 180) & (np.abs(lon) <= 90)
        for i in np.flatnonzero(swapped):
            reasons[int(i)].append(f"are {_label(header, targets, 'lon')} and "
                                   f"{_label(header, targets, 'lat')} swapped?")
    points = shapely.points(lon, lat)
    points[list(reasons)] = None
    return points, {i: "; ".join(r) for i, r in reasons.items()}
