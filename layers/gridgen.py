"""Generate the grids of a jurisdiction from its streets and households, and store them.

For each community (or village) under the jurisdiction: its polygon minus any
dedicated grids (专属网格, kept as they are), cut by the roads, partitioned by
:func:`geo.grids.grid_plan` in the area's metric CRS, written in one transaction with
the same checks as any write, an audit row, and derived fields refreshed.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from geo.grids import grid_plan, hand_on_parts, renode
from geo.validate import to_served

from .access import leaf_jurisdictions, require_within, require_write
from .errors import Conflict, UnknownJurisdiction, Unprocessable
from .gridedit import write_shape
from .registry import LAYERS
from .store import write_in
from .users import User
from .validate import clean_features

__all__ = ["GridsExist", "generate_grids"]

MIN_TARGET, MAX_TARGET = 20, 5000


class GridsExist(Conflict):
    """A community already has grids and the caller did not ask to replace them (409)."""

    http_status = 409


class BadGeneration(Unprocessable):
    """Parameters the generator cannot use (HTTP 422)."""

    http_status = 422


def _leaves(conn: Connection, code: str) -> list[tuple[str, str, shapely.Geometry]]:
    return [(c, n, shapely.from_wkb(w)) for c, n, w in leaf_jurisdictions(conn, code)]


def _plan_leaf(conn: Connection, code: str, name: str, geom: shapely.Geometry,
               target: int, renoded: dict[int, shapely.Geometry]) -> gpd.GeoDataFrame:
    """New comprehensive grids (EPSG:4326) for one community.

    Planned in the stored lon/lat themselves: the plan only compares areas and
    positions within one community, and staying in the stored coordinates keeps the
    community's own boundary vertices, so the grids tile it exactly. Dedicated grids
    that gain vertices where new grids meet their edges are put in ``renoded``.
    """
    wkb = shapely.to_wkb(shapely.set_srid(geom, 4326), include_srid=True)
    roads = np.array([shapely.from_wkb(bytes(w)) for w in conn.execute(text(
        "SELECT ST_AsBinary(r.geom) FROM roads r WHERE r.geom && ST_GeomFromEWKB(:g) "
        "AND ST_Intersects(r.geom, ST_GeomFromEWKB(:g))"), {"g": wkb}).scalars()],
        dtype=object)
    homes = np.array(conn.execute(text(
        "SELECT ST_X(h.geom), ST_Y(h.geom) FROM households h "
        "WHERE ST_Intersects(h.geom, ST_GeomFromEWKB(:g))"), {"g": wkb}).all(),
        dtype=float).reshape(-1, 2)
    kept = conn.execute(text(
        "SELECT id, ST_AsBinary(geom) AS wkb FROM grids WHERE jurisdiction_code = :c "
        "AND kind = 'dedicated' ORDER BY id"), {"c": code}).mappings().all()
    dedicated = [shapely.from_wkb(bytes(r["wkb"])) for r in kept]
    area = shapely.difference(geom, shapely.union_all(dedicated)) if dedicated else geom
    grids: list[shapely.Geometry] = []
    for part in sorted(shapely.get_parts(area), key=lambda p: -p.area):
        inside = homes[shapely.contains_xy(part, homes[:, 0], homes[:, 1])]
        grids.extend(grid_plan(part, roads, inside, target).geometry)
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


def generate_grids(conn: Connection, user: User, code: str, target: int,
                   replace: bool = False) -> list[int]:
    """Generate and store the grids of every community under ``code``; return their ids.

    Existing comprehensive grids (and their joint-household units) are replaced when
    ``replace``; otherwise a community that has any is refused with 409.
    """
    require_write(user, LAYERS["grids"])
    if not isinstance(target, int) or isinstance(target, bool) or not (
            MIN_TARGET <= target <= MAX_TARGET):
        raise BadGeneration(f"target_households must be a whole number in "
                            f"{MIN_TARGET}-{MAX_TARGET}, got {target!r}")
    leaves = _leaves(conn, code)
    if not leaves:
        raise UnknownJurisdiction(f"jurisdiction {code!r} does not exist")
    require_within(conn, user, code)
    codes = [leaf[0] for leaf in leaves]
    existing = conn.execute(text(
        "SELECT jurisdiction_code, count(*) AS n FROM grids WHERE jurisdiction_code = ANY(:c) "
        "AND kind = 'comprehensive' GROUP BY 1 ORDER BY 1"), {"c": codes}).mappings().all()
    if existing and not replace:
        first, n = existing[0]["jurisdiction_code"], existing[0]["n"]
        raise GridsExist(f"community {first} already has {n} grids "
                         f"({len(existing)} communities have some): send replace: true")
    renoded: dict[int, shapely.Geometry] = {}
    new = pd.concat([_plan_leaf(conn, *leaf, target, renoded) for leaf in leaves],
                    ignore_index=True)
    conn.execute(text(
        "DELETE FROM household_units WHERE grid_code IN (SELECT code FROM grids "
        "WHERE jurisdiction_code = ANY(:c) AND kind = 'comprehensive')"), {"c": codes})
    conn.execute(text("DELETE FROM grids WHERE jurisdiction_code = ANY(:c) "
                      "AND kind = 'comprehensive'"), {"c": codes})
    clean = clean_features(new, LAYERS["grids"])
    before = conn.execute(text("SELECT coalesce(max(id), 0) FROM grids")).scalar_one()
    write_in(conn, LAYERS["grids"], clean, actor=user.name,
             source=f"generated for {code}, target {target} households")
    for grid_id, geom in renoded.items():  # same shapes, the new corners added
        write_shape(conn, user, grid_id, geom)
    return list(conn.execute(text("SELECT id FROM grids WHERE id > :b ORDER BY id"),
                             {"b": before}).scalars())
