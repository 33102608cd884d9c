"""Generate the grids of a jurisdiction from its streets and a weight, and store them.

For each community (or village) under the jurisdiction: its polygon minus any
dedicated grids (专属网格, kept as they are), cut by the roads, partitioned by
:func:`geo.grids.grid_plan`, written in one transaction with the same checks as any
write, an audit row, and derived fields refreshed.

What a grid is balanced on (``weight``), and the unit of its target:

- ``households``: households of the register, per grid (``target_households``);
- ``population``: residents per grid, the ``persons`` of the register's households
  (``target_persons``): the only stored resident count, so it needs the register too;
- ``buildings``: floor area per grid in m² (``target_floor_area_m2``): each building's
  footprint (m², on the ellipsoid) times its floors, ``max(1, round(height_m / 3))``
  rounded half up, or one floor when its height is not known; a building weighs in
  the block holding its representative point (``ST_PointOnSurface``);
- ``area``: plain area per grid in m² (``target_area_m2``).

With no weight given, grids follow households when the jurisdiction has any, else
buildings when it has any, else area, and the answer says which (the choice is one
for the whole request; a community with none of the weight becomes one grid).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from geo.grids import floor_area, grid_plan, hand_on_parts, renode
from geo.validate import to_served

from .access import leaf_jurisdictions, require_within, require_write
from .errors import BadRequest, Conflict, UnknownJurisdiction, Unprocessable
from .gridedit import write_shape
from .registry import LAYERS
from .store import write_in
from .users import User
from .validate import clean_features

__all__ = ["TARGETS", "WEIGHTS", "Generated", "GridsExist", "Target", "generate_grids", "plain"]

MIN_TARGET, MAX_TARGET = 20, 5000


def plain(number: float) -> str:
    """A number in plain digits: whole numbers without a fraction, never an exponent."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


@dataclass(frozen=True)
class Target:
    """The target of one weight: its request field, range, unit and whether whole."""

    field: str
    low: float
    high: float
    unit: str
    whole: bool

    @property
    def range(self) -> str:
        """The allowed range in plain digits, e.g. ``1000-1000000``."""
        return f"{self.low:.0f}-{self.high:.0f}"

    def check(self, value: object) -> float:
        """``value`` as a target, or :class:`BadGeneration` naming the field and range."""
        kinds = (int,) if self.whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or \
                not math.isfinite(value) or not self.low <= value <= self.high:
            what = "whole number" if self.whole else "number"
            raise BadGeneration(f"{self.field} must be a {what} in {self.range} "
                                f"({self.unit} per grid), got {value!r}")
        return float(value)


WEIGHTS = ("households", "population", "buildings", "area")
TARGETS: dict[str, Target] = {
    "households": Target("target_households", MIN_TARGET, MAX_TARGET, "households", True),
    "population": Target("target_persons", 50, 15_000, "persons", True),
    "buildings": Target("target_floor_area_m2", 1_000, 1_000_000, "m² of floor area", False),
    "area": Target("target_area_m2", 10_000, 100_000_000, "m² of area", False),
}


@dataclass(frozen=True)
class Generated:
    """What :func:`generate_grids` stored: grid ids, the weight and target it used.

    ``chosen`` is true when the caller named no weight and the data decided it.
    """

    ids: list[int]
    weight: str
    target: float
    chosen: bool


class GridsExist(Conflict):
    """A community already has grids and the caller did not ask to replace them (409)."""

    http_status = 409


class BadGeneration(Unprocessable):
    """Parameters the generator cannot use (HTTP 422)."""

    http_status = 422


def _leaves(conn: Connection, code: str) -> list[tuple[str, str, shapely.Geometry]]:
    return [(c, n, shapely.from_wkb(w)) for c, n, w in leaf_jurisdictions(conn, code)]


def _present(conn: Connection, codes: list[str]) -> dict[str, float]:
    """Households, their persons and buildings within the communities ``codes``."""
    row = conn.execute(text("""
        WITH leaf AS (SELECT geom FROM jurisdictions WHERE code = ANY(:c))
        SELECT (SELECT count(*) FROM households h JOIN leaf
                ON ST_Intersects(h.geom, leaf.geom)) AS households,
               (SELECT coalesce(sum(h.persons), 0) FROM households h JOIN leaf
                ON ST_Intersects(h.geom, leaf.geom)) AS population,
               (SELECT count(*) FROM buildings b JOIN leaf
                ON b.geom && leaf.geom AND ST_Intersects(ST_PointOnSurface(b.geom), leaf.geom))
               AS buildings"""), {"c": codes}).mappings().one()
    return {k: float(v) for k, v in row.items()}


def _targets(target: int | Mapping[str, object], weight: str | None) -> dict[str, float]:
    """The targets given, checked, by weight; BadRequest when they do not fit ``weight``."""
    if weight is not None and weight not in WEIGHTS:
        raise BadRequest(f"weight {weight!r} is not one of {', '.join(WEIGHTS)}")
    given = {"households": target} if not isinstance(target, Mapping) else dict(target)
    for name in given:
        if name not in TARGETS:
            raise BadRequest(f"no target for weight {name!r}; weights are {', '.join(WEIGHTS)}")
    if not given:
        raise BadRequest("send a target: " + ", ".join(
            f"{t.field} ({t.unit} per grid, weight {w})" for w, t in TARGETS.items()))
    checked = {name: TARGETS[name].check(value) for name, value in given.items()}
    if weight is not None:
        own = TARGETS[weight]
        if weight not in checked:
            raise BadRequest(f"weight {weight} needs {own.field} ({own.unit} per grid, "
                             f"{own.range})")
        for name in checked:
            if name != weight:
                raise BadRequest(f"{TARGETS[name].field} does not go with weight {weight}; "
                                 f"its target is {own.field} ({own.unit} per grid)")
    return checked


def _choose(present: dict[str, float], code: str, weight: str | None,
            targets: dict[str, float]) -> tuple[str, float]:
    """The weight to plan by and its target; BadGeneration when the data lack it."""
    if weight is None:
        chosen = next(w for w in ("households", "buildings", "area")
                      if w == "area" or present[w] > 0)
        if chosen not in targets:
            why = ("has households" if chosen == "households" else
                   "has no households" if chosen == "buildings" else
                   "has neither households nor buildings")
            own = TARGETS[chosen]
            raise BadGeneration(f"jurisdiction {code} {why}, so its grids follow {chosen}: "
                                f"send {own.field} ({own.unit} per grid, {own.range}) "
                                f"or name another weight")
        return chosen, targets[chosen]
    if weight in ("households", "population") and present["households"] == 0:
        raise BadGeneration(f"jurisdiction {code} has no households (the register is not "
                            f"loaded): plan by weight buildings or area")
    if weight == "population" and present["population"] == 0:
        raise BadGeneration(f"the households of jurisdiction {code} count no persons: "
                            f"plan by weight households, buildings or area")
    if weight == "buildings" and present["buildings"] == 0:
        raise BadGeneration(f"jurisdiction {code} has no buildings: plan by weight area")
    return weight, targets[weight]


def _weighed(conn: Connection, wkb: bytes, weight: str
             ) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Points, their weights and the weight per degree² of one community, EPSG:4326."""
    if weight == "area":  # m² per degree² here (constant within a community to ~0.1%)
        ratio = conn.execute(text(
            "SELECT ST_Area(ST_GeomFromEWKB(:g)::geography) / ST_Area(ST_GeomFromEWKB(:g))"),
            {"g": wkb}).scalar_one()
        return np.empty((0, 2)), None, float(ratio)
    if weight == "buildings":
        rows = np.array(conn.execute(text("""
            SELECT ST_X(p), ST_Y(p), ST_Area(geom::geography), coalesce(height_m, 'NaN')
            FROM (SELECT ST_PointOnSurface(b.geom) AS p, b.geom, b.height_m FROM buildings b
                  WHERE b.geom && ST_GeomFromEWKB(:g)) b
            WHERE ST_Intersects(p, ST_GeomFromEWKB(:g))"""), {"g": wkb}).all(),
            dtype=float).reshape(-1, 4)
        return rows[:, :2], floor_area(rows[:, 2], rows[:, 3]), 0.0
    rows = np.array(conn.execute(text(
        "SELECT ST_X(h.geom), ST_Y(h.geom), h.persons FROM households h "
        "WHERE ST_Intersects(h.geom, ST_GeomFromEWKB(:g))"), {"g": wkb}).all(),
        dtype=float).reshape(-1, 3)
    return rows[:, :2], (rows[:, 2] if weight == "population" else None), 0.0


def _plan_leaf(conn: Connection, leaf: tuple[str, str, shapely.Geometry],
               weight: str, target: float,
               renoded: dict[int, shapely.Geometry]) -> gpd.GeoDataFrame:
    """New comprehensive grids (EPSG:4326) for one community.

    Planned in the stored lon/lat themselves: the plan only compares areas and
    positions within one community, and staying in the stored coordinates keeps the
    community's own boundary vertices, so the grids tile it exactly. Dedicated grids
    that gain vertices where new grids meet their edges are put in ``renoded``.
    """
    code, name, geom = leaf
    wkb = shapely.to_wkb(shapely.set_srid(geom, 4326), include_srid=True)
    roads = np.array([shapely.from_wkb(bytes(w)) for w in conn.execute(text(
        "SELECT ST_AsBinary(r.geom) FROM roads r WHERE r.geom && ST_GeomFromEWKB(:g) "
        "AND ST_Intersects(r.geom, ST_GeomFromEWKB(:g))"), {"g": wkb}).scalars()],
        dtype=object)
    xy, weights, per_area = _weighed(conn, wkb, weight)
    kept = conn.execute(text(
        "SELECT id, ST_AsBinary(geom) AS wkb FROM grids WHERE jurisdiction_code = :c "
        "AND kind = 'dedicated' ORDER BY id"), {"c": code}).mappings().all()
    dedicated = [shapely.from_wkb(bytes(r["wkb"])) for r in kept]
    area = shapely.difference(geom, shapely.union_all(dedicated)) if dedicated else geom
    grids: list[shapely.Geometry] = []
    for part in sorted(shapely.get_parts(area), key=lambda p: -p.area):
        inside = shapely.contains_xy(part, xy[:, 0], xy[:, 1])
        grids.extend(grid_plan(part, roads, xy[inside], target, per_area=per_area,
                               weights=None if weights is None else weights[inside]).geometry)
    everything = np.array([*dedicated, *grids], dtype=object)
    if dedicated and grids:
        # New grid corners on a dedicated grid's edge must be its vertices too.
        everything = renode(everything)
    # Stored as served; a lobe whose neck the rounding pinches joins a neighbour.
    everything = hand_on_parts(to_served(everything))
    for grid_id, old, new in zip((r["id"] for r in kept), dedicated,
                                 everything[:len(dedicated)], strict=True):
        if not shapely.equals_exact(old, new, 0.0) or \
                shapely.get_num_coordinates(new) != shapely.get_num_coordinates(old):
            renoded[grid_id] = new
    grids = list(everything[len(dedicated):])
    return gpd.GeoDataFrame({
        "code": [f"{code}{i + 1:03d}" for i in range(len(grids))],
        "name": [f"{name}第{i + 1}网格" for i in range(len(grids))],
        "kind": "comprehensive",
        "jurisdiction_code": code,
    }, geometry=grids, crs=4326)


def generate_grids(conn: Connection, user: User, code: str,
                   target: int | Mapping[str, object], replace: bool = False, *,
                   weight: str | None = None) -> Generated:
    """Generate and store the grids of every community under ``code``.

    ``target`` maps weights to the weight wanted per grid (see :data:`TARGETS` for
    units and ranges); a number alone is households per grid. ``weight`` names what
    grids are balanced on; None lets the data choose (households, else buildings,
    else area) among the targets given. Existing comprehensive grids (and their
    joint-household units) are replaced when ``replace``; otherwise a community that
    has any is refused with 409. Nothing is written when anything is refused.
    """
    require_write(user, LAYERS["grids"])
    targets = _targets(target, weight)
    leaves = _leaves(conn, code)
    if not leaves:
        raise UnknownJurisdiction(f"jurisdiction {code!r} does not exist")
    require_within(conn, user, code)
    codes = [leaf[0] for leaf in leaves]
    used, goal = _choose(_present(conn, codes), code, weight, targets)
    existing = conn.execute(text(
        "SELECT jurisdiction_code, count(*) AS n FROM grids WHERE jurisdiction_code = ANY(:c) "
        "AND kind = 'comprehensive' GROUP BY 1 ORDER BY 1"), {"c": codes}).mappings().all()
    if existing and not replace:
        first, n = existing[0]["jurisdiction_code"], existing[0]["n"]
        raise GridsExist(f"community {first} already has {n} grids "
                         f"({len(existing)} communities have some): ask to replace them "
                         "(replace: true in the API, --replace on the command line)")
    renoded: dict[int, shapely.Geometry] = {}
    new = pd.concat([_plan_leaf(conn, leaf, used, goal, renoded) for leaf in leaves],
                    ignore_index=True)
    conn.execute(text(
        "DELETE FROM household_units WHERE grid_code IN (SELECT code FROM grids "
        "WHERE jurisdiction_code = ANY(:c) AND kind = 'comprehensive')"), {"c": codes})
    conn.execute(text("DELETE FROM grids WHERE jurisdiction_code = ANY(:c) "
                      "AND kind = 'comprehensive'"), {"c": codes})
    clean = clean_features(new, LAYERS["grids"])
    before = conn.execute(text("SELECT coalesce(max(id), 0) FROM grids")).scalar_one()
    write_in(conn, LAYERS["grids"], clean, actor=user.name,
             source=f"generated for {code} by {used}, target {plain(goal)} {TARGETS[used].unit}")
    for grid_id, geom in renoded.items():  # same shapes, the new corners added
        write_shape(conn, user, grid_id, geom)
    ids = list(conn.execute(text("SELECT id FROM grids WHERE id > :b ORDER BY id"),
                            {"b": before}).scalars())
    return Generated(ids, used, goal, weight is None)
