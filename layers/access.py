"""Who may read and write what: roles per layer, and the rows a user's scope covers.

A user's scope is their jurisdiction and everything under it; a border partner
(jurisdiction A, partner B) sees both cities' features only inside the A-B border
zone (``BORDER_ZONE_M`` each side of the shared border, within A and B).
"""

from __future__ import annotations

import shapely
from pyproj import CRS
from sqlalchemy import Connection, text

from geo.border import TOLERANCE
from geo.crs import metric_crs

from .errors import Forbidden, UnknownJurisdiction
from .features import Scope
from .registry import PERSONAL_READERS, Layer
from .users import User

__all__ = ["APP_ROLE", "BORDER_ZONE_M", "Forbidden", "enter_scope", "leaf_jurisdictions",
           "jurisdiction_to_analyse", "read_scope", "require_within", "require_write",
           "subtree_codes", "UnknownJurisdiction"]

BORDER_ZONE_M = 2000.0
# Boundaries of neighbours this close are one border: real ones leave gaps and overlaps
# of centimetres to metres.
BORDER_TOLERANCE_M = TOLERANCE
APP_ROLE = "safegrid_app"  # created by migration 0003; subject to row-level security


# The jurisdiction :c and everything under it.
_TREE = """
    WITH RECURSIVE tree(code) AS (
        SELECT code FROM jurisdictions WHERE code = :c
        UNION SELECT j.code FROM jurisdictions j JOIN tree t ON j.parent_code = t.code)"""


def subtree_codes(conn: Connection, code: str) -> list[str]:
    """``code`` and the codes of every jurisdiction under it."""
    return list(conn.execute(text(_TREE + " SELECT code FROM tree"), {"c": code}).scalars())


def leaf_jurisdictions(conn: Connection, code: str) -> list[tuple[str, str, bytes]]:
    """(code, name, WKB) of the communities/villages at the bottom of ``code``'s tree."""
    rows = conn.execute(text(_TREE + """
        SELECT j.code, j.name, ST_AsBinary(j.geom) AS wkb
        FROM jurisdictions j JOIN tree USING (code)
        WHERE NOT EXISTS (SELECT 1 FROM jurisdictions c WHERE c.parent_code = j.code)
        ORDER BY j.code"""), {"c": code}).mappings()
    return [(r["code"], r["name"], bytes(r["wkb"])) for r in rows]


def require_write(user: User, layer: Layer) -> None:
    """Forbidden unless the user's role may edit ``layer``."""
    if user.role not in layer.write_roles:
        raise Forbidden(f"role {user.role} may not edit {layer.name}")


def require_within(conn: Connection, user: User, code: str) -> None:
    """Forbidden unless jurisdiction ``code`` lies in the user's own (admins: anywhere).

    A border partner's scope is the border zone, never a jurisdiction as a whole: the
    analyses of a whole jurisdiction are refused to them (the border API serves them).
    """
    if user.role == "border_partner":
        raise Forbidden(f"a border partner sees only the zone of the {user.jurisdiction}-"
                        f"{user.partner} border (/api/border), not jurisdiction {code} "
                        "as a whole")
    if user.role != "admin" and code not in subtree_codes(conn, user.jurisdiction):
        raise Forbidden(f"jurisdiction {code} is outside your jurisdiction")


def jurisdiction_to_analyse(conn: Connection, user: User, code: str
                            ) -> tuple[shapely.Geometry, CRS]:
    """Jurisdiction ``code`` (lon/lat) and the metric CRS of its centre.

    Only when the user may analyse it (:func:`require_within`).
    """
    row = conn.execute(text("SELECT ST_AsBinary(geom) AS wkb, ST_X(ST_Centroid(geom)) AS lon, "
                            "ST_Y(ST_Centroid(geom)) AS lat FROM jurisdictions WHERE code = :c"),
                       {"c": code}).mappings().first()
    if row is None:
        raise UnknownJurisdiction(f"unknown jurisdiction {code!r}")
    require_within(conn, user, code)
    return shapely.from_wkb(bytes(row["wkb"])), metric_crs(row["lon"], row["lat"])


# Border zones by (a, b, width, ids and versions of both): the geography buffer of a
# city border costs tens of milliseconds, and every request of a border partner needs it.
_ZONES: dict[tuple, bytes] = {}


def border_zone_wkb(conn: Connection, a: str, b: str, width_m: float = BORDER_ZONE_M) -> bytes:
    """EWKB of the zone ``width_m`` either side of the A-B border, within A and B."""
    stamp = conn.execute(text(
        "SELECT a.id, a.version, b.id, b.version FROM jurisdictions a, jurisdictions b "
        "WHERE a.code = :a AND b.code = :b"), {"a": a, "b": b}).first()
    if stamp is None:
        raise Forbidden(f"no border zone between {a} and {b}")
    key = (a, b, width_m, *stamp)
    if key not in _ZONES:
        zone = conn.execute(text("""
            SELECT ST_AsEWKB(ST_Intersection(
                       ST_Union(a.geom, b.geom),
                       ST_Buffer(ST_Intersection(ST_Boundary(a.geom),
                                                 ST_Buffer(b.geom::geography, :t)::geometry
                                                 )::geography,
                                 :w)::geometry))
            FROM jurisdictions a, jurisdictions b WHERE a.code = :a AND b.code = :b"""),
            {"a": a, "b": b, "w": width_m, "t": BORDER_TOLERANCE_M}).scalar()
        if zone is None:
            raise Forbidden(f"no border zone between {a} and {b}")
        if len(_ZONES) > 256:
            _ZONES.clear()
        _ZONES[key] = bytes(zone)
    return _ZONES[key]


def read_scope(conn: Connection, user: User, layer: Layer) -> Scope:
    """The rows of ``layer`` that ``user`` may read, or :class:`Forbidden`."""
    if user.role not in layer.read_roles:
        raise Forbidden(
            f"role {user.role} may not read {layer.name}"
            + (" (aggregates come with the analysis API)" if layer.sensitive else "")
        )
    personal = user.role in PERSONAL_READERS
    if user.role == "admin":
        return Scope(None, {}, personal, {"scope_all": "on"})
    if user.role == "border_partner":
        if layer.name == "incidents" and user.incidents == "cells":
            raise Forbidden(f"incident points are not shared with the {user.partner} "
                            f"partner; it is given counts per cell of the zone "
                            f"(collection incident_cells)")
        zone = border_zone_wkb(conn, user.jurisdiction, user.partner)
        return Scope("ST_Intersects(t.geom, ST_GeomFromEWKB(:scope_zone))",
                     {"scope_zone": zone}, personal, {"scope_zone": zone.hex()})
    codes = subtree_codes(conn, user.jurisdiction)
    column = "code" if layer.name == "jurisdictions" else "jurisdiction_code"
    return Scope(f"t.{column} = ANY(:scope_codes)", {"scope_codes": codes}, personal,
                 {"scope_codes": ",".join(codes)})


def enter_scope(conn: Connection, scope: Scope) -> None:
    """Run the rest of this transaction as the application role within ``scope``.

    Row-level security on incidents and households then hides every row outside the
    scope, even from a query that forgets its own filter.
    """
    conn.execute(text(f"SET LOCAL ROLE {APP_ROLE}"))
    settings = {key: scope.rls.get(key, "") for key in ("scope_all", "scope_codes",
                                                         "scope_zone")}
    conn.execute(text(
        "SELECT set_config('safegrid.scope_all', :scope_all, true), "
        "set_config('safegrid.scope_codes', :scope_codes, true), "
        "set_config('safegrid.scope_zone', :scope_zone, true)"), settings)
