"""Coordinate systems: the metric CRS for computations and the GCJ-02 and BD-09 offsets.

Everything stored by safegrid is EPSG:4326 (lon/lat, WGS 84). Distances and areas are
computed in a metric CRS picked per area: the UTM zone of the area's centre by default,
or the CGCS2000 3-degree Gauss-Krüger zone that Chinese survey data uses. A
``Projection`` moves points and shapely geometries there and back (``Projection.around``
a centre, ``Projection.over`` a geometry, or between two given CRSs); ``LocalMetres`` is
the Projection onto a linear plane about a point, for areas of a few kilometres.

GCJ-02 is the obfuscated datum used by Chinese web maps (Amap, Tencent). It is not a
PROJ CRS: it is a non-linear offset of up to a few hundred metres applied inside China.
``wgs84_to_gcj02`` implements the published forward formula; ``gcj02_to_wgs84`` inverts
it by fixed-point iteration to well below a centimetre.

BD-09 is Baidu's datum: a second offset (about 1 km) applied on top of GCJ-02.
``gcj02_to_bd09`` implements Baidu's published forward formula; ``bd09_to_gcj02``
inverts it by fixed-point iteration on that formula (not the usual one-step approximate
inverse, which is off by up to about a metre), to well below a centimetre.
``wgs84_to_bd09`` and ``bd09_to_wgs84`` chain the two. Like GCJ-02, BD-09 is applied
only inside the rough box of ``in_china``: elsewhere every function here is the
identity (the published libraries add Baidu's offset everywhere; inside China the
results agree). NaN coordinates stay NaN; any array shape is kept.

References
----------
- GCJ-02 forward formula: googollee/eviltransform and wandergis/coordtransform
  (open-source implementations that publish it with test points).
- BD-09 forward formula: the ``bd_encrypt`` formula circulated for Baidu Maps, as in
  wandergis/coordtransform (``gcj02tobd09``) and its ports, with test points.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cached_property
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer

__all__ = [
    "METRIC_KINDS",
    "LocalMetres",
    "Projection",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_china",
    "metric_crs",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

METRIC_KINDS = ("utm", "cgcs2000")

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 formula.
_A = 6378245.0
_EE = 0.00669342162296594323
# Baidu's constant: pi * 3000 / 180.
_X_PI = math.pi * 3000.0 / 180.0


def metric_crs(lon: float, lat: float, kind: str = "utm") -> CRS:
    """Return the metric CRS for an area centred on ``lon``/``lat`` (degrees, EPSG:4326).

    Parameters
    ----------
    lon, lat
        Centre of the area in degrees.
    kind
        ``"utm"`` (WGS 84 / UTM zone, EPSG:326xx or 327xx) or ``"cgcs2000"``
        (CGCS2000 / 3-degree Gauss-Kruger CM, EPSG:4534-4554, China only).

    Returns
    -------
    pyproj.CRS
        A projected CRS whose unit is the metre.
    """
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0) or not (
        math.isfinite(lon) and math.isfinite(lat)
    ):
        raise ValueError(f"centre ({lon}, {lat}) is not a longitude/latitude on the planet")
    if kind == "utm":
        zone = min(int((lon + 180.0) // 6.0) + 1, 60)
        return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)
    if kind == "cgcs2000":
        central = round(lon / 3.0) * 3
        if not 75 <= central <= 135:
            raise ValueError(f"longitude {lon} is outside the CGCS2000 3-degree zones (75E-135E)")
        return CRS.from_epsg(4534 + (central - 75) // 3)
    raise ValueError(f"unknown metric CRS kind {kind!r}; use one of {', '.join(METRIC_KINDS)}")


def in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Return a boolean mask of points inside the rough box where GCJ-02 applies."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 offset (degrees) of WGS 84 points, zero outside China."""
    x = lon - 105.0
    y = lat - 35.0
    dlat = (
        -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    inside = in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS 84 lon/lat (degrees) to GCJ-02 lon/lat (degrees); identity outside China."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _offset(lon, lat)
    return lon + dlon, lat + dlat


def _invert(
    forward: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    lon: np.ndarray, lat: np.ndarray, tol_deg: float, max_iter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``forward(w) = (lon, lat)`` by the fixed-point iteration ``w <- w + (g - f(w))``.

    Both offsets vary slowly (their derivatives are a few hundredths at most), so each
    step shrinks the error by that factor and a handful of steps reach ``tol_deg``.
    """
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(max_iter):
        flon, flat = forward(wlon, wlat)
        elon, elat = glon - flon, glat - flat
        wlon = wlon + elon
        wlat = wlat + elat
        if np.all(np.abs(elon[np.isfinite(elon)]) < tol_deg) and np.all(
            np.abs(elat[np.isfinite(elat)]) < tol_deg
        ):
            break
    return wlon, wlat


def gcj02_to_wgs84(
    lon: np.ndarray, lat: np.ndarray, tol_deg: float = 1e-10, max_iter: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """Convert GCJ-02 lon/lat (degrees) to WGS 84 by inverting the forward offset.

    Fixed-point iteration ``w <- w + (g - f(w))``; the offset varies slowly, so it
    converges to ``tol_deg`` (1e-10 degrees, about 0.01 mm) in a handful of steps.
    """
    return _invert(wgs84_to_gcj02, lon, lat, tol_deg, max_iter)


def gcj02_to_bd09(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert GCJ-02 lon/lat (degrees) to BD-09 lon/lat (degrees); identity outside China.

    Baidu's published formula: with ``x_pi = pi * 3000 / 180``,
    ``z = sqrt(x² + y²) + 0.00002 sin(y x_pi)``, ``θ = atan2(y, x) + 0.000003 cos(x x_pi)``,
    BD-09 = ``(z cos θ + 0.0065, z sin θ + 0.006)``.
    """
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    inside = in_china(x, y)
    return (np.where(inside, z * np.cos(theta) + 0.0065, x),
            np.where(inside, z * np.sin(theta) + 0.006, y))


def bd09_to_gcj02(
    lon: np.ndarray, lat: np.ndarray, tol_deg: float = 1e-10, max_iter: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """Convert BD-09 lon/lat (degrees) to GCJ-02 by inverting ``gcj02_to_bd09``.

    Fixed-point iteration on the forward formula to ``tol_deg`` (1e-10 degrees, about
    0.01 mm); identity outside China.
    """
    return _invert(gcj02_to_bd09, lon, lat, tol_deg, max_iter)


def wgs84_to_bd09(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS 84 lon/lat (degrees) to BD-09 (via GCJ-02); identity outside China."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(
    lon: np.ndarray, lat: np.ndarray, tol_deg: float = 1e-10, max_iter: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """Convert BD-09 lon/lat (degrees) to WGS 84 (via GCJ-02), each step inverted to ``tol_deg``."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat, tol_deg, max_iter), tol_deg, max_iter)


class Projection:
    """Lon/lat to a metric CRS and back, for points, shapely geometries and arrays of them.

    ``Projection(crs, source=4326)`` goes between two given CRSs; :meth:`around` picks
    the metric CRS of a centre (:func:`metric_crs`) and :meth:`over` that of a geometry's
    centroid. :meth:`project` and :meth:`project_xy` go from ``source`` (lon/lat,
    EPSG:4326, unless told) to ``crs`` (metres), :meth:`unproject` and
    :meth:`unproject_xy` back. x is always east / longitude (``always_xy``).

    Attributes
    ----------
    crs
        The metric (target) CRS.
    source
        The source CRS, EPSG:4326 unless told.
    transformer, inverse_transformer
        The pyproj Transformers ``source -> crs`` and ``crs -> source`` (built on first use).
    """

    def __init__(self, crs: Any, source: Any = 4326) -> None:
        self.crs: CRS = CRS.from_user_input(crs)
        self.source: CRS = CRS.from_user_input(source)

    @staticmethod
    def around(lon: float, lat: float, kind: str = "utm") -> Projection:
        """Lon/lat (EPSG:4326) to the metric CRS of ``kind`` centred on ``lon``/``lat``."""
        return Projection(metric_crs(lon, lat, kind))

    @staticmethod
    def over(geom: shapely.Geometry, kind: str = "utm") -> Projection:
        """Lon/lat (EPSG:4326) to the metric CRS of ``kind`` at the centroid of ``geom``."""
        centre = shapely.centroid(geom)
        return Projection.around(centre.x, centre.y, kind)

    @cached_property
    def transformer(self) -> Transformer:
        """``source`` -> ``crs``."""
        return Transformer.from_crs(self.source, self.crs, always_xy=True)

    @cached_property
    def inverse_transformer(self) -> Transformer:
        """``crs`` -> ``source``."""
        return Transformer.from_crs(self.crs, self.source, always_xy=True)

    def project_xy(self, x: Any, y: Any) -> tuple[Any, Any]:
        """Points from ``source`` to ``crs``: lon, lat (scalars or arrays) -> x, y (metres)."""
        return self.transformer.transform(x, y)

    def unproject_xy(self, x: Any, y: Any) -> tuple[Any, Any]:
        """Points from ``crs`` back to ``source``: x, y (metres) -> lon, lat."""
        return self.inverse_transformer.transform(x, y)

    def project(self, geoms: Any) -> Any:
        """A shapely geometry, or an array of them, from ``source`` to ``crs`` (2D)."""
        return shapely.transform(geoms, self._project_coords)

    def unproject(self, geoms: Any) -> Any:
        """A shapely geometry, or an array of them, from ``crs`` back to ``source`` (2D)."""
        return shapely.transform(geoms, self._unproject_coords)

    def _project_coords(self, coords: np.ndarray) -> np.ndarray:
        return np.column_stack(self.project_xy(coords[:, 0], coords[:, 1]))

    def _unproject_coords(self, coords: np.ndarray) -> np.ndarray:
        return np.column_stack(self.unproject_xy(coords[:, 0], coords[:, 1]))


class LocalMetres(Projection):
    """A :class:`Projection` onto an equirectangular plane about ``(lon0, lat0)``.

    Metres east and north of the centre, with the WGS 84 ellipsoid's metres per degree
    at ``lat0``. For areas of a few kilometres (a grid, a community) its distortion is
    well under 0.1 %, and it is linear, so shapes map back to lon/lat without bending.
    Points move by the linear formula itself (no PROJ call); ``crs`` is a local
    engineering CRS naming the plane and the Transformers are the same affine map in PROJ.
    """

    def __init__(self, lon0: float, lat0: float) -> None:
        self.lon0, self.lat0 = lon0, lat0
        phi = math.radians(lat0)  # metres per degree on the WGS 84 ellipsoid at lat0
        self.kx = 111_412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)
        self.ky = 111_132.92 - 559.82 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
        name = f"Local plane about {lon0!r}E {lat0!r}N"
        super().__init__(CRS.from_wkt(
            f'ENGCRS["{name}",EDATUM["{name}, WGS 84 degrees scaled at {lat0!r}N"],'
            'CS[Cartesian,2],AXIS["easting (X)",east,LENGTHUNIT["metre",1]],'
            'AXIS["northing (Y)",north,LENGTHUNIT["metre",1]]]'))

    @cached_property
    def transformer(self) -> Transformer:
        """The plane's affine map in PROJ, lon/lat -> metres."""
        return Transformer.from_pipeline(self._affine())

    @cached_property
    def inverse_transformer(self) -> Transformer:
        """The plane's affine map in PROJ, metres -> lon/lat."""
        return Transformer.from_pipeline(f"+proj=pipeline +step +inv {self._affine()}")

    def _affine(self) -> str:
        return (f"+proj=affine +xoff={-self.lon0 * self.kx!r} +s11={self.kx!r} +s12=0 "
                f"+yoff={-self.lat0 * self.ky!r} +s21=0 +s22={self.ky!r}")

    def project_xy(self, x: Any, y: Any) -> tuple[Any, Any]:
        """Lon, lat (degrees) -> metres east, north of the centre."""
        return ((np.asarray(x, dtype=float) - self.lon0) * self.kx,
                (np.asarray(y, dtype=float) - self.lat0) * self.ky)

    def unproject_xy(self, x: Any, y: Any) -> tuple[Any, Any]:
        """Metres east, north of the centre -> lon, lat (degrees)."""
        return (np.asarray(x, dtype=float) / self.kx + self.lon0,
                np.asarray(y, dtype=float) / self.ky + self.lat0)
