"""The one reader of stored incidents: points in a metric CRS with time, severity, category.

Every service that analyses incidents (hot spots, the safety index, the monthly
notice, border joint defence, camera coverage gaps, the Dask batch runs) reads them
through :func:`read_incidents`, which returns :class:`Incidents`. The read goes through
whatever row-level scope the connection is in, and a period reads only its months'
partitions of ``incidents`` (see :mod:`layers.partitions`). The times of day and days
of the week an analysis keeps (``hours``, ``weekdays``, local time
:data:`layers.validate.LOCAL_TZ`) are applied here too, once for every service.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import CRS
from sqlalchemy import Connection, text

from geo.clock import parse_hours, parse_weekdays, time_mask
from geo.crs import Projection

from .errors import BadRequest
from .validate import LOCAL_TZ

__all__ = ["BadTimeFilter", "Incidents", "check_time_filter", "read_incidents"]

_SELECT = ("SELECT ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, "
           "extract(epoch FROM i.occurred_at) AS epoch, coalesce(i.severity, 1) AS severity, "
           "i.category AS category, extract(epoch FROM i.occurred_until) AS until_epoch "
           "FROM incidents i")
_IN_JURISDICTION = (", jurisdictions j WHERE j.code = :jurisdiction AND i.geom && j.geom "
                    "AND ST_Intersects(i.geom, j.geom)")
_IN_AREA = (", ST_GeomFromWKB(:area, 4326) AS z WHERE i.geom && z "
            "AND ST_Intersects(i.geom, z)")
_IN_BOX = " WHERE i.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)"
_FROM = " AND i.occurred_at >= :start"
_TO = " AND i.occurred_at < :end"
_OF_CATEGORY = " AND i.category = :category"


class BadTimeFilter(BadRequest):
    """``hours`` or ``weekdays`` that cannot be read (HTTP 400)."""

    http_status = 400


def check_time_filter(hours: str | None, weekdays: str | None) -> None:
    """BadTimeFilter with the parser's message (it names ``hours`` or ``weekdays``).

    ``hours`` as :func:`geo.clock.parse_hours` reads them (``"22-6"``: 22:00 to 05:59),
    ``weekdays`` as :func:`geo.clock.parse_weekdays` (``"1-5"``: Monday to Friday);
    None: not filtered.
    """
    try:
        if hours is not None:
            parse_hours(hours)
        if weekdays is not None:
            parse_weekdays(weekdays)
    except ValueError as exc:
        raise BadTimeFilter(str(exc)) from None


@dataclass(frozen=True)
class Incidents:
    """Incidents as arrays, one entry per incident, in no particular order.

    ``xy``: (n, 2) float, metres in ``crs``; ``epoch``: (n,) float, seconds since
    1970-01-01 UTC; ``severity``: (n,) float, 1 (least) to 5, 1 where none was recorded;
    ``category``: (n,) object, one of :data:`layers.registry.INCIDENT_CATEGORIES`;
    ``crs``: the metric CRS of ``xy`` (an authority string such as ``EPSG:32650``);
    ``until``: (n,) float, seconds since 1970-01-01 UTC of ``occurred_until`` (the end
    of the time the incident happened in), NaN where none was recorded.
    """

    xy: np.ndarray
    epoch: np.ndarray
    severity: np.ndarray
    category: np.ndarray
    crs: str
    until: np.ndarray | None = None  # None: as NaN for every incident

    def __len__(self) -> int:
        return len(self.xy)

    @property
    def when(self) -> np.ndarray:
        """The times as UTC ``datetime64[s]`` (cut to the second)."""
        return self.epoch.astype("datetime64[s]")

    @property
    def until_when(self) -> np.ndarray:
        """The ends as UTC ``datetime64[s]``, NaT where an incident has none."""
        until = np.full(len(self.epoch), np.nan) if self.until is None else self.until
        out = np.full(len(until), np.datetime64("NaT"), dtype="datetime64[s]")
        given = ~np.isnan(until)
        out[given] = until[given].astype("datetime64[s]")
        return out

    def subset(self, keep: np.ndarray) -> Incidents:
        """The incidents selected by ``keep`` (a boolean mask or indices)."""
        return Incidents(self.xy[keep], self.epoch[keep], self.severity[keep],
                         self.category[keep], self.crs,
                         None if self.until is None else self.until[keep])

    def inside(self, area: shapely.Geometry) -> Incidents:
        """The incidents inside ``area`` (metric, in ``crs``; its boundary does not count)."""
        return self.subset(shapely.contains_xy(area, self.xy[:, 0], self.xy[:, 1]))


def _empty(crs: str) -> Incidents:
    return Incidents(np.empty((0, 2)), np.empty(0), np.empty(0), np.empty(0, dtype=object),
                     crs, np.empty(0))


def read_incidents(conn: Connection, crs: CRS | str, *, jurisdiction: str | None = None,
                   area: shapely.Geometry | None = None,
                   box: tuple[float, float, float, float] | None = None,
                   start: dt.datetime | None = None, end: dt.datetime | None = None,
                   category: str | None = None, hours: str | None = None,
                   weekdays: str | None = None) -> Incidents:
    """The incidents of one place and period, with ``xy`` in metres in ``crs``.

    The place is exactly one of: ``jurisdiction`` (a code: the incidents intersecting
    its polygon), ``area`` (a lon/lat geometry, EPSG:4326: the incidents intersecting
    it) or ``box`` (lon/lat ``(west, south, east, north)``: the incidents in that
    envelope). The period is [``start``, ``end``) (either may be None: open); only
    incidents of ``category`` when it is given; only those at ``hours`` of the day and
    on ``weekdays`` of the week (local time, :data:`layers.validate.LOCAL_TZ`) when given
    (see :func:`check_time_filter`; BadTimeFilter when they cannot be read).
    """
    check_time_filter(hours, weekdays)
    places = [p for p in (jurisdiction, area, box) if p is not None]
    if len(places) != 1:
        raise ValueError("give exactly one of jurisdiction, area and box")
    crs = crs if isinstance(crs, str) else crs.to_string()
    params: dict = {"start": start, "end": end, "category": category}
    if jurisdiction is not None:
        params["jurisdiction"] = jurisdiction
    elif area is not None:
        params["area"] = shapely.to_wkb(area)
    else:
        params.update(zip(("x0", "y0", "x1", "y1"), box, strict=True))
    result = conn.execute(text(
        _SELECT + (_IN_JURISDICTION if jurisdiction is not None else
                   _IN_AREA if area is not None else _IN_BOX)
        + (_FROM if start is not None else "") + (_TO if end is not None else "")
        + (_OF_CATEGORY if category else "")), params)
    names = list(result.keys())
    rows = result.all()
    if not rows:
        return _empty(crs)
    column = dict(zip(names, zip(*rows, strict=True), strict=True))
    epoch = np.array(column["epoch"], dtype=float)
    keep = np.ones(len(epoch), dtype=bool)
    if hours is not None or weekdays is not None:
        keep = time_mask(epoch.astype("datetime64[s]"), str(LOCAL_TZ), hours, weekdays)
        if not keep.any():
            return _empty(crs)
    x, y = Projection(crs).project_xy(np.array(column["lon"], dtype=float)[keep],
                                      np.array(column["lat"], dtype=float)[keep])
    return Incidents(np.column_stack([x, y]).astype(float), epoch[keep],
                     np.array(column["severity"], dtype=float)[keep],
                     np.array(column["category"], dtype=object)[keep], crs,
                     np.array([np.nan if v is None else float(v) for v in column["until_epoch"]],
                              dtype=float)[keep])
