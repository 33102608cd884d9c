"""The figures of the monthly security notice (治安状况告知) of a jurisdiction.

Incidents by category in the month, the month before and the same month a year
earlier (calendar months in China Standard Time), the disputes among them, and the
Gi* hot cells of the three months ending with the month, drawn later as a map.

A month "has data" when any incident of the jurisdiction's city was recorded in it: a
community with none that month had none, while a month before the first import (or
after the last) has no data, and a notice must not compare with it.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import shapely
from sqlalchemy import Connection, text

from geo.crs import Projection
from geo.hotspots import benjamini_hochberg, classify, count_points, gi_star, two_sided_p

from .access import require_within
from .errors import UnknownJurisdiction
from .hotspots import BadHotspotRequest, HotspotQuery, hotspot_lattice, load_hotspot_data
from .registry import INCIDENT_CATEGORIES
from .users import User
from .validate import LOCAL_TZ

__all__ = ["MAP_ROADS", "MAX_PLACES", "month_range", "notice_figures"]


def month_range(month: str, shift: int = 0) -> tuple[dt.datetime, dt.datetime]:
    """Start and end (exclusive) of calendar month ``YYYY-MM`` moved by ``shift`` months."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month or ""):
        raise BadHotspotRequest(f"month must be YYYY-MM, got {month!r}")
    year, number = int(month[:4]), int(month[5:]) + shift
    year += (number - 1) // 12
    number = (number - 1) % 12 + 1
    start = dt.datetime(year, number, 1, tzinfo=LOCAL_TZ)
    following = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=LOCAL_TZ)
    return start, following


def _by_category(conn: Connection, code: str, start: dt.datetime,
                 end: dt.datetime) -> dict[str, int]:
    rows = conn.execute(text(
        "SELECT i.category, count(*) AS n FROM incidents i, jurisdictions j WHERE j.code = :c "
        "AND i.geom && j.geom AND ST_Intersects(i.geom, j.geom) AND i.occurred_at >= :s "
        "AND i.occurred_at < :e GROUP BY 1"), {"c": code, "s": start, "e": end}).mappings()
    counts = dict.fromkeys(INCIDENT_CATEGORIES, 0)
    counts.update({r["category"]: int(r["n"]) for r in rows})
    return counts


def _city_of(conn: Connection, code: str) -> str:
    """The city ``code`` lies in (itself when it is a city or above)."""
    return conn.execute(text("""
        WITH RECURSIVE up(code, parent_code, level, depth) AS (
            SELECT code, parent_code, level, 0 FROM jurisdictions WHERE code = :c
            UNION ALL SELECT j.code, j.parent_code, j.level, up.depth + 1
            FROM jurisdictions j JOIN up ON j.code = up.parent_code WHERE up.level <> 'city')
        SELECT code FROM up ORDER BY (level = 'city') DESC, depth LIMIT 1"""),
        {"c": code}).scalar_one()


def _recorded(conn: Connection, city: str, start: dt.datetime, end: dt.datetime) -> bool:
    """Whether any incident of ``city`` was recorded from ``start`` to ``end``."""
    return conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM incidents i, jurisdictions j WHERE j.code = :c "
        "AND i.geom && j.geom AND ST_Intersects(i.geom, j.geom) AND i.occurred_at >= :s "
        "AND i.occurred_at < :e)"), {"c": city, "s": start, "e": end}).scalar_one()


MAP_ROADS = ("motorway", "arterial", "collector")  # the streets a notice's map shows
MAX_PLACES = 30  # more child jurisdictions than this are drawn without their names


def _hot_map(conn: Connection, user: User, code: str, start: dt.datetime,
             end: dt.datetime) -> dict:
    """The jurisdiction outline, its hot cells and its streets and places, in metres."""
    query = HotspotQuery(code, start, end)
    data = load_hotspot_data(conn, user, query)
    outline = data.area
    context = _context(conn, code, data.projection)
    if len(data.xy) < 3:
        return {"outline": outline, "hot": [], "cell": None, "incidents": int(len(data.xy)),
                **context}
    lattice, size, _chosen = hotspot_lattice(data, query)
    counts = count_points(lattice, data.xy)
    z = gi_star(lattice, counts)
    classes = classify(z, benjamini_hochberg(two_sided_p(z)))
    hot = np.flatnonzero(np.char.startswith(classes.astype(str), "hot"))
    return {"outline": outline, "cell": size, "incidents": int(len(data.xy)),
            "hot": [(lattice.cells.geometry.values[i], str(classes[i]), int(counts[i]))
                    for i in hot], **context}


def _context(conn: Connection, code: str, projection: Projection) -> dict:
    """What places a notice's map: ``roads`` and ``places`` of jurisdiction ``code``.

    ``roads``: (line, class, name) of the main streets (:data:`MAP_ROADS`) clipped to
    it; ``places``: (outline, name) of the jurisdictions directly under it. Metres, in
    ``projection.crs``.
    """

    def metric(wkbs: list) -> np.ndarray:
        return projection.project(shapely.from_wkb([bytes(w) for w in wkbs]))

    roads = conn.execute(text(
        "SELECT r.class, r.name, ST_AsBinary(ST_Intersection(r.geom, j.geom)) AS wkb "
        "FROM roads r, jurisdictions j WHERE j.code = :c AND r.geom && j.geom "
        "AND ST_Intersects(r.geom, j.geom) AND r.class = ANY(:k) ORDER BY r.id"),
        {"c": code, "k": list(MAP_ROADS)}).mappings().all()
    places = conn.execute(text(
        "SELECT name, ST_AsBinary(geom) AS wkb FROM jurisdictions WHERE parent_code = :c "
        "ORDER BY code"), {"c": code}).mappings().all()
    road_lines = metric([r["wkb"] for r in roads]) if roads else []
    place_shapes = metric([p["wkb"] for p in places]) if places else []
    return {"roads": [(g, r["class"], r["name"])
                      for g, r in zip(road_lines, roads, strict=True)],
            "places": [(g, p["name"]) for g, p in zip(place_shapes, places, strict=True)]}


def notice_figures(conn: Connection, user: User, code: str, month: str) -> dict:
    """Everything the notice shows, for jurisdiction ``code`` and month ``YYYY-MM``.

    Counts by category of the month (``now``), the month before (``before``) and the same
    month a year earlier (``last_year``); ``recorded`` says for each of the three whether
    it has data at all (any incident of the jurisdiction's city).
    """
    start, end = month_range(month)
    row = conn.execute(text("SELECT name, level FROM jurisdictions WHERE code = :c"),
                       {"c": code}).mappings().first()
    if row is None:
        raise UnknownJurisdiction(f"unknown jurisdiction {code!r}")
    require_within(conn, user, code)
    months = {"now": (start, end), "before": month_range(month, -1),
              "last_year": month_range(month, -12)}
    counts = {k: _by_category(conn, code, *span) for k, span in months.items()}
    city = _city_of(conn, code)
    recorded = {k: _recorded(conn, city, *span) for k, span in months.items()}
    now, before, last_year = counts["now"], counts["before"], counts["last_year"]
    people = conn.execute(text(
        "SELECT count(*) AS households, coalesce(sum(h.persons), 0) AS population "
        "FROM households h, jurisdictions j "
        "WHERE j.code = :c AND h.geom && j.geom AND ST_Intersects(h.geom, j.geom)"),
        {"c": code}).mappings().one()
    hot = _hot_map(conn, user, code, month_range(month, -2)[0], end)
    return {"code": code, "name": row["name"], "level": row["level"], "month": month,
            "start": start, "end": end, "now": now, "before": before,
            "last_year": last_year, "recorded": recorded, "households": int(people["households"]),
            "population": int(people["population"]), "disputes": now.get("dispute", 0),
            "hot": hot, "generated": dt.datetime.now(LOCAL_TZ)}


