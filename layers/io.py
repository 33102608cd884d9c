"""Read and write layer files through pyogrio.

Formats: GeoJSON, GeoPackage, Shapefile (also zipped), FlatGeobuf, KML, and tables: CSV
(UTF-8 or GBK/GB18030) and Excel workbooks (.xlsx, .xls) with lon/lat or WKT columns,
read by :mod:`layers.tables` with the layer's header map (Chinese headers and values).
Reading returns features in EPSG:4326 with the file's column names mapped to the layer's
fields; writing takes EPSG:4326 features and writes them in the CRS asked for, or in
GCJ-02 (AMap, Tencent) or BD-09 (Baidu), the offsets of Chinese web maps.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from geo.crs import bd09_to_wgs84, gcj02_to_wgs84, wgs84_to_bd09, wgs84_to_gcj02

from .errors import InputRejected
from .registry import SKIP, SYSTEM_COLUMNS, Layer, header_key, without_unit
from .tables import parse_columns, read_table

__all__ = ["COORDS", "FORMATS", "WRITE_FORMATS", "format_of", "parse_crs", "read_file",
           "write_file"]

# extension -> (GDAL driver, description)
FORMATS: dict[str, tuple[str, str]] = {
    ".geojson": ("GeoJSON", "GeoJSON"),
    ".json": ("GeoJSON", "GeoJSON"),
    ".gpkg": ("GPKG", "GeoPackage"),
    ".shp": ("ESRI Shapefile", "Shapefile"),
    ".zip": ("ESRI Shapefile", "zipped Shapefile"),
    ".fgb": ("FlatGeobuf", "FlatGeobuf"),
    ".kml": ("LIBKML", "KML"),
    ".csv": ("CSV", "CSV (UTF-8 or GBK/GB18030) with lon/lat or WKT columns"),
    ".xlsx": ("XLSX", "Excel workbook with lon/lat or WKT columns"),
    ".xls": ("XLS", "Excel 97-2003 workbook (needs xlrd)"),
}
# What export writes: every format but the workbooks (a CSV opens in Excel).
WRITE_FORMATS = tuple(s for s in FORMATS if s not in (".xlsx", ".xls"))
# Tables read by layers.tables, with header rows, header maps and encodings.
_TABLES = ("CSV", "XLSX", "XLS")
# KML's own placemark properties (styling, time span) that LIBKML reads as columns.
_KML_STANDARD = (
    "name", "description", "timestamp", "begin", "end", "altitudemode", "tessellate", "extrude",
    "visibility", "draworder", "icon", "snippet",
)
# Lon/lat conventions: WGS 84, GCJ-02 (AMap, Tencent), BD-09 (Baidu).
COORDS = ("wgs84", "gcj02", "bd09")
_FROM = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}
_TO = {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}


def format_of(path: str | os.PathLike, writing: bool = False) -> tuple[str, str]:
    """Return (driver, description) for ``path`` by its extension, or raise.

    With ``writing``, only the formats export writes (:data:`WRITE_FORMATS`).
    """
    suffix = Path(path).suffix.lower()
    known = WRITE_FORMATS if writing else tuple(FORMATS)
    if suffix not in known:
        what = "cannot write" if suffix in FORMATS else "unknown file type"
        raise InputRejected(
            f"{Path(path).name}: {what} {suffix or '(none)'!r}; use one of {', '.join(known)}"
        )
    return FORMATS[suffix]


def parse_crs(text: str | None) -> CRS | None:
    """A CRS from anything PROJ understands (``EPSG:4547``, WKT, PROJ string), or None."""
    if text is None or text == "":
        return None
    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise InputRejected(f"unknown CRS {text!r}: {exc}") from None


def _check_coords(coords: str) -> None:
    if coords not in COORDS:
        raise InputRejected(f"--coords must be one of {', '.join(COORDS)}, got {coords!r}")


def read_file(
    path: str | os.PathLike,
    layer: Layer,
    crs: str | None = None,
    coords: str = "wgs84",
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    columns: str | None = None,
) -> gpd.GeoDataFrame:
    """Read ``path`` as features of ``layer``, reprojected to EPSG:4326.

    ``crs`` overrides the file's own CRS (files without one are taken as EPSG:4326);
    ``coords`` ``"gcj02"`` or ``"bd09"`` says the lon/lat are GCJ-02 or BD-09 and undoes
    the offset. Columns keep their values as read; :func:`layers.validate.clean_features`
    types and checks them.

    Tables (CSV, .xlsx, .xls) also take ``sheet`` (a workbook's sheet by name; default the
    first), ``encoding`` (a CSV's; default UTF-8 with or without BOM, else GB18030) and
    ``columns`` (``"经度=lon,状态=status,地址=-"``: headers to fields, ``-`` leaves one
    out). Their rows are numbered as the sheet shows them: ``attrs["rows"]`` holds each
    feature's number and ``attrs["problems"]`` (position -> reason) the rows whose
    position could not be read (their geometry is None); ``attrs["header_row"]``,
    ``attrs["sheet"]`` and ``attrs["columns"]`` say how the table was understood.
    """
    _check_coords(coords)
    path = Path(path)
    if not path.exists():
        raise InputRejected(f"{path}: no such file")
    driver, _ = format_of(path)
    override = parse_crs(crs)
    table = None
    if driver in _TABLES:
        table = read_table(path, driver, layer, sheet=sheet, encoding=encoding,
                           columns=parse_columns(columns, layer),
                           geographic=override is None or override.is_geographic)
        gdf = gpd.GeoDataFrame(table.frame, geometry=table.geometry)
    else:
        if sheet:
            raise InputRejected(f"{path.name}: --sheet applies to workbooks (.xlsx, .xls)")
        if encoding and driver != "ESRI Shapefile":
            raise InputRejected(f"{path.name}: --encoding applies to tables (.csv, .xlsx, "
                                ".xls) and shapefiles (.shp)")
        gdf = _rename_columns(_read_raw(path, driver, encoding), layer, driver,
                              parse_columns(columns, layer))
    gdf = _to_wgs84(gdf, override, coords, path)
    if table is not None:
        gdf.attrs.update(rows=table.rows, problems=table.problems,
                         header_row=table.header_row, sheet=table.sheet,
                         columns=table.columns)
    return gdf


def _to_wgs84(gdf: gpd.GeoDataFrame, override: CRS | None, coords: str,
              path: Path) -> gpd.GeoDataFrame:
    """``gdf`` in EPSG:4326: 2D, from its CRS (or ``override``), offsets undone."""
    geoms = gdf.geometry.values
    if (shapely.has_z(geoms) | shapely.has_m(geoms)).any():  # KML and others carry Z
        gdf = gdf.set_geometry(shapely.force_2d(geoms))
    source_crs = override or gdf.crs or CRS.from_epsg(4326)
    gdf = gdf.set_crs(source_crs, allow_override=True)
    if not source_crs.equals(CRS.from_epsg(4326)):
        if not source_crs.is_geographic and not source_crs.is_projected:
            raise InputRejected(f"{path.name}: CRS {source_crs.name!r} is not a 2D map CRS")
        with np.errstate(all="ignore"):
            gdf = gdf.to_crs(4326)
    if coords in _FROM:
        gdf = gdf.set_geometry(_transform_lonlat(gdf.geometry, _FROM[coords]))
    return gdf


def _read_raw(path: Path, driver: str, encoding: str | None = None) -> gpd.GeoDataFrame:
    try:
        if encoding:  # a shapefile whose .dbf is GBK with no .cpg saying so
            gdf = pyogrio.read_dataframe(path, encoding=encoding)
        elif path.suffix.lower() == ".zip":
            gdf = _read_zip(path)
        elif driver in _ARROW_DRIVERS:
            gdf = _read_arrow(path)
        else:
            gdf = pyogrio.read_dataframe(path)
    except InputRejected:
        raise
    except Exception as exc:  # pyogrio raises several GDAL error types
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputRejected(f"{path.name}: cannot read the file: {message}") from None
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        raise InputRejected(f"{path.name}: the file has no geometry")
    return gdf


# Typed formats read through Arrow (a third faster for 10^5 rows, the same frame).
_ARROW_DRIVERS = ("FlatGeobuf", "GPKG")


def _read_arrow(path: Path) -> gpd.GeoDataFrame:
    """``path`` read through Arrow; a file Arrow cannot read is read the usual way.

    The usual reader then also gives the usual message for a broken file.
    """
    try:
        return pyogrio.read_dataframe(path, use_arrow=True)
    except Exception:  # pyogrio and pyarrow raise several error types
        return pyogrio.read_dataframe(path)


def _read_zip(path: Path) -> gpd.GeoDataFrame:
    """All shapefiles in a zip, one after another (a mixed layer has one per type)."""
    names = [str(n) for n, _ in pyogrio.list_layers(path)]
    if not names:
        raise InputRejected(f"{path.name}: the zip holds no shapefile")
    parts = [pyogrio.read_dataframe(path, layer=name) for name in sorted(names)]
    crs = parts[0].crs
    parts = [p.to_crs(crs) if p.crs and crs and not p.crs.equals(crs) else p for p in parts]
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=crs)


def _rename_columns(gdf: gpd.GeoDataFrame, layer: Layer, driver: str,
                    columns: dict[str, str] | None = None) -> gpd.GeoDataFrame:
    """Map file column names to field names.

    A field's own name matches whatever its case (and a Shapefile's 10-character cut of
    it); ``columns`` (``--columns``) and then the layer's header map
    (:meth:`layers.registry.Layer.header_map`: 编码, 名称, 级别, 上级代码...) name the
    rest. Columns mapped to ``-`` and KML's standard columns the layer lacks are left out;
    the position comes from the file's geometry, so lon/lat/wkt columns are left as read.
    """
    wanted = list(layer.field_names) + list(SYSTEM_COLUMNS)
    headers = {**layer.header_map(), **(columns or {})}
    geometry = gdf.geometry.name
    renames: dict[str, str] = {}
    drops: list[str] = []
    for column in gdf.columns:
        if column == geometry:
            continue
        low = column.lower()
        if driver == "LIBKML" and low in _KML_STANDARD and low not in wanted:
            drops.append(column)
            continue
        exact = [w for w in wanted if w == low]
        cut = [w for w in wanted if len(low) == 10 and w[:10] == low]
        match = exact or (cut if driver == "ESRI Shapefile" and len(cut) == 1 else [])
        key = header_key(column)
        target = headers.get(key, headers.get(without_unit(key)))
        if key in (columns or {}) or (not match and target is not None):
            if target == SKIP:
                drops.append(column)
            elif target not in ("lon", "lat", "wkt"):
                renames[column] = target
        elif match:
            renames[column] = match[0]
    taken = list(renames.values())
    twice = sorted({t for t in taken if taken.count(t) > 1})
    if twice:
        named = ", ".join(f"{t} ({', '.join(c for c, v in renames.items() if v == t)})"
                          for t in twice)
        raise InputRejected(f"more than one column names the same field: {named}; "
                            "say which with --columns HEADER=-")
    return gdf.drop(columns=drops).rename(columns=renames)


def _transform_lonlat(geoms: gpd.GeoSeries, func) -> gpd.GeoSeries:
    """Apply a vectorised (lon, lat) -> (lon, lat) function to every coordinate."""

    def apply(xy: np.ndarray) -> np.ndarray:
        lon, lat = func(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return gpd.GeoSeries(shapely.transform(geoms.values, apply), index=geoms.index, crs=geoms.crs)


def write_file(
    gdf: gpd.GeoDataFrame,
    path: str | os.PathLike,
    crs: str | None = None,
    coords: str = "wgs84",
    layer_name: str = "features",
) -> int:
    """Write EPSG:4326 features to ``path`` (format by extension); return the count.

    ``crs`` reprojects on the way out; ``coords`` ``"gcj02"`` or ``"bd09"`` writes GCJ-02
    or BD-09 lon/lat. Date-times go out as ISO 8601 text where the format has no time
    zone support.
    """
    _check_coords(coords)
    if coords in _TO and crs:
        raise InputRejected(f"--coords {coords} writes lon/lat; it cannot be combined with --crs")
    path = Path(path)
    driver, _ = format_of(path, writing=True)
    out = gdf.copy()
    target = parse_crs(crs)
    if target is not None:
        out = out.to_crs(target)
    if coords in _TO:
        out = out.set_geometry(_transform_lonlat(out.geometry, _TO[coords]))
    if driver in ("ESRI Shapefile", "LIBKML", "CSV"):
        for column in out.columns:
            if pd.api.types.is_datetime64_any_dtype(out[column]):
                out[column] = out[column].map(lambda t: None if pd.isna(t) else t.isoformat())
    families = _families(out)
    if driver == "ESRI Shapefile" and path.suffix.lower() == ".shp" and len(families) > 1:
        raise InputRejected(
            f"a Shapefile holds one geometry type and this layer mixes "
            f"{' and '.join(sorted(families))}: export to .zip (one shapefile per type), "
            ".gpkg or .geojson"
        )
    if path.exists():
        path.unlink()
    if path.suffix.lower() == ".zip":
        _write_zipped_shapefile(out, path, layer_name)
    else:
        options: dict = {"GEOMETRY": "AS_WKT"} if driver == "CSV" else {}
        if driver == "ESRI Shapefile":
            options["encoding"] = "UTF-8"
        pyogrio.write_dataframe(out, path, driver=driver, layer=layer_name, **options)
    return len(out)


def _families(gdf: gpd.GeoDataFrame) -> dict[str, np.ndarray]:
    """Rows by geometry family (point, line, polygon): Shapefile keeps one per file."""
    kinds = gdf.geometry.geom_type.fillna("").str.replace("Multi", "").str.lower()
    return {k: (kinds == k).to_numpy() for k in kinds.unique() if k}


def _write_zipped_shapefile(gdf: gpd.GeoDataFrame, path: Path, layer_name: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="safegrid-shp-"))
    try:
        families = _families(gdf)
        for family, rows in families.items():
            name = layer_name if len(families) == 1 else f"{layer_name}_{family}"
            pyogrio.write_dataframe(gdf[rows], tmp / f"{name}.shp", driver="ESRI Shapefile",
                                    encoding="UTF-8")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for part in sorted(tmp.iterdir()):
                zf.write(part, part.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
