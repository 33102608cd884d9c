"""Geometry checks shared by import and the API: type, coordinates, validity.

All functions take EPSG:4326 geometries (lon/lat degrees) and return, per geometry,
``None`` when it is acceptable or a short English reason when it is not.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

__all__ = [
    "GEOMETRY_FAMILIES",
    "SERVED_DECIMALS",
    "SERVED_GRID",
    "accepted_types",
    "coerce_type",
    "geometry_problems",
    "points_to_grid",
    "to_served",
]

# Decimals of a lon/lat coordinate as served (about 1 cm): geometries are stored on
# this grid, so a client reads exactly what topology checks saw.
SERVED_DECIMALS = 7
SERVED_GRID = 10.0 ** -SERVED_DECIMALS

# Geometry types a layer may declare, and the shapely types each accepts on input.
GEOMETRY_FAMILIES: dict[str, tuple[str, ...]] = {
    "Point": ("Point",),
    "LineString": ("LineString",),
    "Polygon": ("Polygon",),
    "MultiPolygon": ("MultiPolygon", "Polygon"),
    "PointOrPolygon": ("Point", "Polygon", "MultiPolygon"),
}
# shapely's type ids and names (``shapely.get_type_id``, ``geom_type``)
_TYPE_NAMES = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                        "MultiLineString", "MultiPolygon", "GeometryCollection"], dtype=object)
_TYPE_IDS = {name: i for i, name in enumerate(_TYPE_NAMES)}
_SINGLE_OF_MULTI = {
    "MultiPoint": "Point",
    "MultiLineString": "LineString",
    "MultiPolygon": "Polygon",
}


def accepted_types(declared: str) -> list[str]:
    """GeoJSON geometry types an input may have for a layer declared ``declared``.

    The family's types, and multi-part types holding one part of them (taken as that
    part by :func:`coerce_type`).
    """
    family = GEOMETRY_FAMILIES[declared]
    return sorted({*family, *(multi for multi, single in _SINGLE_OF_MULTI.items()
                              if single in family)})


def to_served(geoms: np.ndarray, grid_size: float = SERVED_GRID) -> np.ndarray:
    """``geoms`` with every coordinate rounded to ``grid_size`` and repeated points removed.

    Rounding is pointwise (each vertex to the nearest grid node, none added or merged
    across parts), so two polygons that share an edge vertex for vertex still share it
    after rounding. A geometry that pointwise rounding would leave invalid (a ring that
    collapses or touches itself at the grid's resolution) is reduced with noding
    instead; one that vanishes comes back empty for the checks to refuse. ``grid_size``
    is in the geometries' units (degrees for EPSG:4326: 1e-7 is about 1 cm).
    """
    geoms = np.asarray(geoms, dtype=object)
    points = (shapely.get_type_id(geoms) == 0) & ~shapely.is_empty(geoms)
    if points.any():  # points (a layer of 10^5 or more) are rounded as arrays
        out = geoms.copy()
        out[points] = points_to_grid(geoms[points], grid_size)
        if not points.all():
            out[~points] = to_served(geoms[~points], grid_size)
        return out
    rounded = shapely.set_precision(geoms, grid_size, mode="pointwise")
    try:
        out = shapely.remove_repeated_points(rounded, 0.0)
    except shapely.errors.GEOSException:  # a ring down to two points: one at a time
        out = np.array([_without_repeats(g) for g in rounded], dtype=object)
    broken = np.flatnonzero(~shapely.is_missing(geoms) & ~shapely.is_valid(out))
    for i in broken:
        out[i] = _repaired(out[i], geoms[i], grid_size)
    return out


def points_to_grid(points: np.ndarray, grid_size: float = SERVED_GRID) -> np.ndarray:
    """Non-empty points rounded to ``grid_size`` exactly as GEOS's pointwise rounding does.

    GEOS multiplies by the scale (``1 / grid_size``, snapped to a whole number when it
    is one), rounds half up and divides by the scale; this does the same with NumPy
    arrays, many times faster than one ``set_precision`` call per point. A point already
    on the grid comes back as itself (the same object).
    """
    scale = 1.0 / grid_size
    if abs(scale - round(scale)) < 1e-9 * scale:
        scale = float(round(scale))
    coords = shapely.get_coordinates(points)
    rounded = _round_half_up(coords * scale) / scale
    moved = (rounded != coords).any(axis=1)
    out = np.array(points, dtype=object, copy=True)
    out[moved] = shapely.points(rounded[moved])
    return out


def _round_half_up(values: np.ndarray) -> np.ndarray:
    """GEOS's ``util::round``: to the nearest integer, halves towards +infinity."""
    whole = np.trunc(values)
    fraction = np.abs(values - whole)  # exact for doubles
    away = np.where(values >= 0, whole + 1.0, whole - 1.0)
    up = np.where(values >= 0, fraction >= 0.5, fraction > 0.5)
    return np.where(up, away, whole)


def _repaired(rounded: BaseGeometry | None, original: BaseGeometry,
              grid_size: float) -> BaseGeometry:
    """A valid version of a rounded geometry that came out invalid.

    A ring pinched at a vertex is split there (no vertex moves, so neighbours still
    match); anything else is reduced with noding.
    """
    if rounded is not None:
        fixed = shapely.make_valid(rounded)
        polygonal = [p for p in shapely.get_parts(fixed)
                     if p.geom_type in ("Polygon", "MultiPolygon")]
        if polygonal and set(map(tuple, shapely.get_coordinates(fixed))) <= \
                set(map(tuple, shapely.get_coordinates(rounded))):
            return polygonal[0] if len(polygonal) == 1 else shapely.MultiPolygon(
                [q for p in polygonal for q in shapely.get_parts(p)])
    return shapely.set_precision(original, grid_size)


def _without_repeats(geom: BaseGeometry | None) -> BaseGeometry | None:
    """``geom`` without repeated points; None where that leaves a ring of two points."""
    try:
        return shapely.remove_repeated_points(geom, 0.0)
    except shapely.errors.GEOSException:
        return None


def coerce_type(geoms: np.ndarray, declared: str) -> np.ndarray:
    """Return ``geoms`` brought to the declared type where that loses nothing.

    A one-part multi-geometry becomes its single part for a single-type layer (Shapefile
    and some GeoJSON writers wrap parts); a Polygon becomes a MultiPolygon for a
    MultiPolygon layer. Anything else is returned unchanged for the checks to refuse.
    """
    out = np.array(geoms, dtype=object, copy=True)
    types = shapely.get_type_id(out)
    family = GEOMETRY_FAMILIES[declared]
    wrapped = [_TYPE_IDS[multi] for multi, single in _SINGLE_OF_MULTI.items()
               if single in family and multi not in family]
    candidates = np.isin(types, wrapped)
    if declared == "MultiPolygon":
        candidates |= types == _TYPE_IDS["Polygon"]
    for i in np.flatnonzero(candidates):  # a few rows, if any: most files are as declared
        g = out[i]
        if declared == "MultiPolygon" and g.geom_type == "Polygon":
            out[i] = shapely.MultiPolygon([g])
        elif shapely.get_num_geometries(g) == 1:
            out[i] = shapely.get_geometry(g, 0)
    return out


def geometry_problems(geoms: np.ndarray, declared: str) -> list[str | None]:
    """Check geometries against a layer's declared type; one reason or ``None`` per item.

    Checks, in order: present, not empty, of the declared type, finite coordinates,
    coordinates on the planet (longitude in [-180, 180], latitude in [-90, 90]),
    and OGC validity (self-intersections, bad rings), with shapely's reason.
    Vectorised: only the geometries that fail are looked at one by one.
    """
    allowed = GEOMETRY_FAMILIES[declared]
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    reasons: list[str | None] = [None] * n
    missing = shapely.is_missing(geoms)
    present = ~missing
    empty = np.zeros(n, dtype=bool)
    empty[present] = shapely.is_empty(geoms[present])
    names = np.array([None] * n, dtype=object)
    names[present] = _TYPE_NAMES[shapely.get_type_id(geoms[present])]
    wrong_type = present & ~np.isin(names, allowed)
    checkable = present & ~empty & ~wrong_type
    coords, index = shapely.get_coordinates(geoms[checkable], return_index=True)
    rows = np.flatnonzero(checkable)[index]
    nonfinite = np.zeros(n, dtype=bool)
    nonfinite[rows[~np.isfinite(coords).all(axis=1)]] = True
    off = np.zeros(n, dtype=bool)
    with np.errstate(invalid="ignore"):
        off[rows[(np.abs(coords[:, 0]) > 180.0) | (np.abs(coords[:, 1]) > 90.0)]] = True
    invalid = np.zeros(n, dtype=bool)
    rest = checkable & ~nonfinite & ~off
    invalid[rest] = ~shapely.is_valid(geoms[rest])
    for i in np.flatnonzero(missing | empty | wrong_type | nonfinite | off | invalid):
        if missing[i]:
            reasons[i] = "geometry is missing"
        elif empty[i]:
            reasons[i] = "geometry is empty"
        elif wrong_type[i]:
            reasons[i] = f"geometry is a {names[i]}, the layer takes {' or '.join(allowed)}"
        elif nonfinite[i]:
            reasons[i] = "coordinates contain NaN or infinity"
        elif off[i]:
            reasons[i] = _off_planet(geoms[i])
        else:
            reasons[i] = f"invalid geometry: {shapely.is_valid_reason(geoms[i])}"
    return reasons


def _off_planet(geom: BaseGeometry) -> str:
    coords = shapely.get_coordinates(geom)
    bad = coords[(np.abs(coords[:, 0]) > 180.0) | (np.abs(coords[:, 1]) > 90.0)][0]
    return (
        f"coordinate ({bad[0]:g}, {bad[1]:g}) is off the planet "
        "(longitude must be in [-180, 180], latitude in [-90, 90]; wrong CRS?)"
    )
