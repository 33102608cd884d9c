"""The data clock of stored incidents: counts by weekday and hour of the local week.

The incidents of a jurisdiction and period (read by
:func:`layers.hotspots.load_hotspot_data`: scope checked, category, hours and weekdays
applied) are counted by :mod:`geo.clock` in local time (:data:`layers.validate.LOCAL_TZ`,
Asia/Shanghai): a 7 x 24 table, rows Monday to Sunday, columns the hours 0 to 23, for
the whole jurisdiction and, when asked, for the incidents inside one grid.

Incidents are stored with the moment they occurred and, optionally, ``occurred_until``
(the end of the span in which an incident happened, migration 0011). Once the reader
(:class:`layers.incidents.Incidents`) carries it, the clock is aoristic: each incident
with a span spreads over the hours of it (:func:`incident_clock` with ``ends``).
"""

from __future__ import annotations

import numpy as np
import shapely
from sqlalchemy import Connection, text

from geo.clock import aoristic_clock, data_clock

from .access import Forbidden, require_within, subtree_codes
from .edit import Missing
from .hotspots import BadHotspotRequest, HotspotQuery, load_hotspot_data
from .users import User
from .validate import LOCAL_TZ

__all__ = ["WEEKDAYS", "incident_clock", "run_clock"]

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def incident_clock(starts: np.ndarray, ends: np.ndarray | None = None) -> np.ndarray:
    """Incidents per (weekday, hour) of the local week: a (7, 24) array.

    ``starts`` are UTC ``datetime64``. Without ``ends`` each incident counts once in
    the hour it started (:func:`geo.clock.data_clock`); with ``ends`` (NaT where an
    incident has none) each spreads a weight of 1 over the hours of its span
    (:func:`geo.clock.aoristic_clock`): an incident without an end still counts whole
    in its start's hour, so the table changes only for incidents with a span.
    """
    if ends is None:
        return data_clock(starts, str(LOCAL_TZ))
    return aoristic_clock(starts, ends, str(LOCAL_TZ))


def _table(clock: np.ndarray) -> dict:
    """A clock with its totals, whole numbers as int."""
    exact = np.allclose(clock, np.round(clock))
    value = (lambda a: np.round(a).astype(int).tolist()) if exact else \
        (lambda a: np.round(a, 6).tolist())
    return {"counts": value(clock), "by_weekday": value(clock.sum(axis=1)),
            "by_hour": value(clock.sum(axis=0)), "total": value(clock.sum())}


def _grid(conn: Connection, user: User, grid_id: int, jurisdiction: str
          ) -> tuple[str, shapely.Geometry]:
    """Code and lon/lat polygon of a grid the user may see, in ``jurisdiction``.

    A grid is visible where its jurisdiction is within the user's (as the grids layer's
    read scope); the user has already been allowed to analyse ``jurisdiction``.
    """
    row = conn.execute(text("SELECT code, jurisdiction_code, ST_AsBinary(geom) FROM grids "
                            "WHERE id = :i"), {"i": grid_id}).first()
    unseen = Missing(f"grids has no feature {grid_id} that you may see")
    if row is None:
        raise unseen
    if row[1] not in subtree_codes(conn, jurisdiction):
        try:
            require_within(conn, user, row[1])
        except Forbidden:
            raise unseen from None
        raise BadHotspotRequest(f"grid {grid_id} lies in jurisdiction {row[1]}, not in "
                                f"{jurisdiction}")
    return row[0], shapely.from_wkb(bytes(row[2]))


def run_clock(conn: Connection, user: User, query: HotspotQuery,
              grid_id: int | None = None) -> dict:
    """The data clock of the jurisdiction (and of one grid in it), local time.

    ``counts`` is 7 x 24 (rows Monday to Sunday, columns hours 0-23), with
    ``by_weekday``, ``by_hour`` and ``total``; ``grid`` holds the same for the incidents
    inside grid ``grid_id`` (its boundary excluded). Missing raises for a grid the user
    may not see, BadHotspotRequest for one outside the jurisdiction.
    """
    data = load_hotspot_data(conn, user, query)
    body: dict = {
        "parameters": {"jurisdiction": query.jurisdiction, "from": query.start.isoformat(),
                       "to": query.end.isoformat(), "category": query.category,
                       "hours": query.hours, "weekdays": query.weekdays, "grid": grid_id,
                       "time_zone": str(LOCAL_TZ)},
        "weekdays": list(WEEKDAYS), "hours": list(range(24)),
        **_table(incident_clock(data.when, data.incidents.until_when)),
    }
    if grid_id is not None:
        code, area = _grid(conn, user, grid_id, query.jurisdiction)
        inside = data.incidents.inside(data.projection.project(area))
        body["grid"] = {"id": grid_id, "code": code,
                        **_table(incident_clock(inside.when, inside.until_when))}
    return body
