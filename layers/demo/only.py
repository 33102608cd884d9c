"""One-city installations of the demo (``safegrid demo --only CODE``).

Two cities' safegrid servers each hold their own city (边界联防 between two installations).
:func:`keep_only` cuts the full demo, once written, down to the chosen cities:

- the chosen cities' jurisdiction trees, each city a root (the province above them, whose
  polygon covers the other cities, is dropped);
- every feature of every other layer whose ``jurisdiction_code`` lies in those trees.
  Where the demo gives no code (roads, buildings, key areas, cameras, checkpoints,
  households, joint-household units, incidents), the store derived it when the full demo
  was written: the leaf jurisdiction holding the feature's representative point (a line's
  middle, a polygon's point on surface; on a shared edge the lower code). Grids carry their
  community, patrol routes their team's city. Every feature thus belongs to exactly one
  city: the features of ``--only A`` and ``--only B`` never overlap, and together they
  are the full demo's features of A and B with the same codes;
- the boundary of every neighbouring city not chosen (its ``jurisdictions`` row, level
  city, no children and no other data), so that both servers of a border compute the same
  border zone (:func:`layers.access.border_zone_wkb` needs both polygons);
- the grids' derived counts recomputed over what is kept.

Demo users (:func:`demo_users`): ``admin``; ``planner``, ``police`` and ``viewer`` of the
first chosen city; and ``partner``, a ``border_partner`` of that city whose partner is the
neighbour across the demo's main border (长沙 430100 and 湘潭 430300 each other's, 株洲
430200 长沙's). Its token is the one this installation's administrator gives the
neighbour's server (``safegrid peers add`` there): it sees our side of that border zone
only. With 430100 first the users are those of the full demo.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from ..access import BORDER_TOLERANCE_M
from ..errors import BadRequest
from ..store import q, refresh_derived
from .names import CITIES

__all__ = ["DEMO_CITIES", "DemoCodeError", "checked_cities", "demo_users", "keep_only"]

DEMO_CITIES = {c["code"]: c["name"] for c in CITIES}
# The neighbour a one-city installation's border partner user is for.
PARTNER_OF = {"430100": "430300", "430300": "430100", "430200": "430100"}


class DemoCodeError(BadRequest):
    """A ``--only`` code that is not one of the demo's cities (HTTP 400, CLI exit 2)."""


def checked_cities(codes: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``codes`` without repeats, in the order given, or :class:`DemoCodeError`."""
    out: list[str] = []
    for code in codes:
        code = str(code).strip()
        if code not in DEMO_CITIES:
            cities = ", ".join(f"{c} {n}" for c, n in DEMO_CITIES.items())
            raise DemoCodeError(f"--only {code!r} is not a demo city; the demo cities are "
                                f"{cities}; nothing was written")
        if code not in out:
            out.append(code)
    return tuple(out)


def demo_users(only: tuple[str, ...], full: tuple[dict, ...]) -> tuple[dict, ...]:
    """The demo users (as in ``full``, the full demo's) for an installation of ``only``."""
    if not only:
        return full
    home = only[0]
    users = []
    for user in full:
        user = dict(user)
        if user["jurisdiction"] is not None:
            user["jurisdiction"] = home
        if user["partner"] is not None:
            user["partner"] = PARTNER_OF[home]
        users.append(user)
    return tuple(users)


_TREE = """
    WITH RECURSIVE tree(code) AS (
        SELECT code FROM jurisdictions WHERE code = ANY(:cities)
        UNION SELECT j.code FROM jurisdictions j JOIN tree t ON j.parent_code = t.code)"""


def keep_only(conn: Connection, only: tuple[str, ...], order: tuple[str, ...]) -> list[str]:
    """Delete everything but the cities ``only`` and their neighbours' boundaries.

    ``order`` is the order the layers were written in (references first). Runs in the
    caller's transaction, after the full demo was written. Returns the codes of the
    neighbouring cities whose boundary was kept.
    """
    cities = list(only)
    keep = list(conn.execute(text(_TREE + " SELECT code FROM tree"),
                             {"cities": cities}).scalars())
    neighbours = list(conn.execute(text("""
        SELECT DISTINCT o.code FROM jurisdictions o JOIN jurisdictions s
          ON s.code = ANY(:cities)
         AND ST_Intersects(ST_Boundary(s.geom), ST_Buffer(o.geom::geography, :t)::geometry)
        WHERE o.level = 'city' AND NOT o.code = ANY(:cities) ORDER BY o.code"""),
        {"cities": cities, "t": BORDER_TOLERANCE_M}).scalars())
    for name in reversed(order):
        if name != "jurisdictions":
            conn.execute(text(f"DELETE FROM {q(name)} WHERE jurisdiction_code IS NULL "
                              "OR NOT jurisdiction_code = ANY(:keep)"), {"keep": keep})
    conn.execute(text("DELETE FROM jurisdictions WHERE NOT code = ANY(:kept)"),
                 {"kept": keep + neighbours})
    conn.execute(text("UPDATE jurisdictions SET parent_code = NULL "
                      "WHERE code = ANY(:roots) AND parent_code IS NOT NULL"),
                 {"roots": cities + neighbours})
    refresh_derived(conn, "grids")  # households' links, grids' counts and context
    return neighbours
