"""What the tool pages show of jurisdictions: the choices, an outline, the latest data.

The analysis and coverage pages list the jurisdictions a user may open, draw the one
chosen with its communities, and start from the latest month that holds incidents.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import Connection, text

from .access import read_scope, require_within, subtree_codes
from .registry import LAYERS
from .users import User
from .validate import LOCAL_TZ

__all__ = ["Box", "community_choices", "jurisdiction_box", "jurisdiction_choices",
           "jurisdiction_outline", "latest_incident_month", "rough_outlines"]

# Outlines are drawn on a web map: 6 decimals of a degree are about 0.1 m.
_DIGITS = 6


def jurisdiction_choices(conn: Connection, user: User) -> list[tuple[str, str]]:
    """(code, name) of the cities, districts and streets in the user's scope (admins: all).

    Parameters
    ----------
    conn
        A connection to the database.
    user
        The user; their jurisdiction and everything under it, or all for none.

    Returns
    -------
    list of (str, str)
        Ordered by code.
    """
    codes = subtree_codes(conn, user.jurisdiction) if user.jurisdiction else None
    rows = conn.execute(text(
        "SELECT code, name FROM jurisdictions WHERE level IN ('city', 'district', "
        "'street') AND (CAST(:c AS text[]) IS NULL OR code = ANY(:c)) ORDER BY code"),
        {"c": codes}).all()
    return [(r[0], r[1]) for r in rows]


@dataclass(frozen=True)
class Box:
    """A jurisdiction's bounding box (degrees, EPSG:4326) and its row id."""

    south: float
    west: float
    north: float
    east: float
    id: int

    def bounds(self) -> list[list[float]]:
        """``[[south, west], [north, east]]``, as Leaflet's ``fitBounds`` takes it."""
        return [[self.south, self.west], [self.north, self.east]]


def jurisdiction_box(conn: Connection, code: str) -> Box | None:
    """The bounding box of jurisdiction ``code``; None when no such jurisdiction."""
    row = conn.execute(text(
        "SELECT ST_YMin(e) AS south, ST_XMin(e) AS west, ST_YMax(e) AS north, "
        "ST_XMax(e) AS east, id FROM (SELECT ST_Envelope(geom) AS e, id FROM jurisdictions "
        "WHERE code = :c) b"), {"c": code}).mappings().first()
    return Box(**row) if row else None


def community_choices(conn: Connection, user: User) -> list[tuple[str, str, int]]:
    """(code, name, number of grids) of the communities and villages the user may see.

    Forbidden when the user may not read grids at all (:func:`layers.access.read_scope`).
    Ordered by code.
    """
    read_scope(conn, user, LAYERS["grids"])
    codes = None if user.role == "admin" else subtree_codes(conn, user.jurisdiction)
    rows = conn.execute(text(
        "SELECT j.code, j.name, (SELECT count(*) FROM grids g "
        "WHERE g.jurisdiction_code = j.code) AS grids FROM jurisdictions j "
        "WHERE j.level IN ('community', 'village') "
        "AND (CAST(:codes AS text[]) IS NULL OR j.code = ANY(:codes)) ORDER BY j.code"),
        {"codes": codes}).mappings()
    return [(r["code"], r["name"], r["grids"]) for r in rows]


def jurisdiction_outline(conn: Connection, code: str) -> dict:
    """Jurisdiction ``code`` and the communities/villages in it, as GeoJSON (lon/lat).

    Returns
    -------
    dict
        A FeatureCollection: first the jurisdiction (``role`` ``"outline"``), then each
        community at the bottom of its tree (``role`` ``"community"``), with ``code``,
        ``name`` and ``level``; empty when ``code`` is unknown.
    """
    rows = conn.execute(text("""
        WITH RECURSIVE tree(code) AS (
            SELECT code FROM jurisdictions WHERE code = :c
            UNION SELECT j.code FROM jurisdictions j JOIN tree t ON j.parent_code = t.code)
        SELECT j.code, j.name, j.level, ST_AsGeoJSON(j.geom, :d) FROM jurisdictions j
        JOIN tree USING (code)
        WHERE j.code = :c
           OR NOT EXISTS (SELECT 1 FROM jurisdictions k WHERE k.parent_code = j.code)
        ORDER BY j.code <> :c, j.code"""), {"c": code, "d": _DIGITS}).all()
    features = [{"type": "Feature", "geometry": json.loads(r[3]),
                 "properties": {"code": r[0], "name": r[1], "level": r[2],
                                "role": "outline" if r[0] == code else "community"}}
                for r in rows]
    return {"type": "FeatureCollection", "features": features}


def rough_outlines(conn: Connection, codes: list[str], tolerance: float = 0.0005) -> dict:
    """Jurisdictions ``codes`` simplified by ``tolerance`` degrees, as GeoJSON (lon/lat).

    A light outline (0.0005 degrees is about 50 m) a page draws at once, before its
    data comes. A FeatureCollection with ``code`` and ``name``, ordered as ``codes``;
    unknown codes are left out.
    """
    rows = conn.execute(text(
        "SELECT code, name, ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, :t), 5) "
        "FROM jurisdictions WHERE code = ANY(:c) ORDER BY array_position(:c, code)"),
        {"c": list(codes), "t": tolerance}).all()
    return {"type": "FeatureCollection",
            "features": [{"type": "Feature", "geometry": json.loads(r[2]),
                          "properties": {"code": r[0], "name": r[1]}} for r in rows]}


# (jurisdiction, incidents' version, jurisdictions' version) -> its last month with data
_MONTHS: OrderedDict[tuple[str, int, int], str | None] = OrderedDict()
_MONTHS_KEPT = 1000
_MONTHS_LOCK = threading.Lock()

# The versions of the two tables read and the newest local month (``YYYY-MM``) holding an
# incident inside the jurisdiction, in one statement (one snapshot). The months are
# walked back from the newest incident's and the walk stops at the first month holding
# one inside: each month is a range of ``occurred_at`` that reads one monthly partition
# (layers.partitions) and its EXISTS stops at the first hit, so a city with incidents
# last month reads a few rows, not all of its incidents.
_LATEST = text("""
    WITH RECURSIVE j AS (SELECT geom FROM jurisdictions WHERE code = :c),
    span AS (SELECT date_trunc('month', max(occurred_at) AT TIME ZONE :tz) AS newest,
                    date_trunc('month', min(occurred_at) AT TIME ZONE :tz) AS oldest
             FROM incidents),
    walk(month, found) AS (
        SELECT newest + interval '1 month', FALSE FROM span WHERE newest IS NOT NULL
        UNION ALL
        SELECT w.month - interval '1 month', EXISTS (
            SELECT 1 FROM incidents i, j
            WHERE i.occurred_at >= (w.month - interval '1 month') AT TIME ZONE :tz
              AND i.occurred_at < w.month AT TIME ZONE :tz
              AND i.geom && j.geom AND ST_Intersects(i.geom, j.geom))
        FROM walk w, span WHERE NOT w.found AND w.month > span.oldest)
    SELECT (SELECT version FROM layer_versions WHERE layer = 'incidents') AS incidents,
           (SELECT version FROM layer_versions WHERE layer = 'jurisdictions') AS jurisdictions,
           (SELECT to_char(month, 'YYYY-MM') FROM walk WHERE found) AS month""")


def latest_incident_month(conn: Connection, user: User, code: str) -> str | None:
    """The last calendar month (``YYYY-MM``, local time) with an incident in ``code``.

    Only when the user may analyse ``code`` (:func:`layers.access.require_within`),
    checked on every call. The month is kept per process under the versions of the
    incidents and jurisdictions tables (:func:`layers.features.table_version`): it is
    found again only after a write to either (and never kept from inside a transaction
    that has written).

    Returns
    -------
    str or None
        None when no incident lies in the jurisdiction.
    """
    require_within(conn, user, code)
    versions = conn.execute(text(
        "SELECT (SELECT version FROM layer_versions WHERE layer = 'incidents'), "
        "(SELECT version FROM layer_versions WHERE layer = 'jurisdictions'), "
        "txid_current_if_assigned() IS NULL")).one()
    # a transaction that has written sees versions that may yet roll back: not kept
    key = (code, *versions[:2]) if versions[2] else (code, None)
    with _MONTHS_LOCK:
        if None not in key and key in _MONTHS:
            _MONTHS.move_to_end(key)
            return _MONTHS[key]
    row = conn.execute(_LATEST, {"c": code, "tz": str(LOCAL_TZ)}).mappings().one()
    if None not in key:
        key = (code, row["incidents"], row["jurisdictions"])
        with _MONTHS_LOCK:
            _MONTHS[key] = row["month"]
            while len(_MONTHS) > _MONTHS_KEPT:
                _MONTHS.popitem(last=False)
    return row["month"]
