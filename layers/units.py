"""Joint-household units of a grid, planned and stored: ``POST /api/grids/{id}/units``.

The grid's households are grouped by :func:`geo.units.household_units` in a local
metric plane; the old units of the grid are replaced in one transaction (audited like
an import, naming the grid and how many units were replaced), households are linked
to their new unit, and the units are ``current`` again.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Connection, text

from geo.crs import LocalMetres
from geo.units import UnitPlan, household_units

from .access import read_scope, require_write
from .edit import Missing
from .registry import LAYERS
from .store import audit_row, refresh_derived, write_in
from .users import User
from .validate import clean_features

__all__ = ["plan_units", "regenerate_units"]


def plan_units(grid: shapely.Geometry, homes: np.ndarray) -> UnitPlan:
    """Units of ``grid`` for households ``homes`` ((N, 2) lon/lat); polygons in lon/lat."""
    c = grid.centroid
    plane = LocalMetres(c.x, c.y)
    lonlat = np.asarray(homes, dtype=float).reshape(-1, 2)
    plan = household_units(np.column_stack(plane.project_xy(lonlat[:, 0], lonlat[:, 1])),
                           plane.project(grid))
    polygons = shapely.intersection(plane.unproject(plan.polygons), grid)
    for i in np.flatnonzero(shapely.get_num_geometries(polygons) > 1):  # rounding crumbs
        parts = shapely.get_parts(polygons[i])
        polygons[i] = parts[np.argmax(shapely.area(parts))]
    return UnitPlan(plan.labels, plan.heads, polygons)


def regenerate_units(conn: Connection, user: User, grid_id: int) -> list[int]:
    """Replace the joint-household units of grid ``grid_id``; return the new units' ids."""
    units = LAYERS["household_units"]
    require_write(user, units)
    scope = read_scope(conn, user, LAYERS["grids"])
    where = f" AND ({scope.condition})" if scope.condition else ""
    row = conn.execute(text(
        f"SELECT t.code, t.jurisdiction_code, ST_AsBinary(t.geom) FROM grids t "
        f"WHERE t.id = :i{where} FOR UPDATE"), {**scope.params, "i": grid_id}).first()
    if row is None:
        raise Missing(f"grids has no feature {grid_id} that you may see")
    code, jurisdiction, wkb = row[0], row[1], bytes(row[2])
    grid = shapely.from_wkb(wkb)
    homes = conn.execute(text(
        "SELECT h.code, ST_X(h.geom), ST_Y(h.geom) FROM households h "
        "WHERE h.geom && ST_GeomFromWKB(:g, 4326) AND ST_Intersects(h.geom, "
        "ST_GeomFromWKB(:g, 4326)) ORDER BY h.id"), {"g": wkb}).all()
    old = conn.execute(text("DELETE FROM household_units WHERE grid_code = :c RETURNING id"),
                       {"c": code}).all()
    box = shapely.to_wkb(shapely.set_srid(shapely.box(*grid.bounds), 4326), include_srid=True)
    if homes:
        xy = np.array([(h[1], h[2]) for h in homes], dtype=float)
        plan = plan_units(grid, xy)
        frame = gpd.GeoDataFrame({
            "code": [f"{code}-{j + 1:03d}" for j in range(len(plan.heads))],
            "grid_code": code,
            "head_household": [homes[h][0] for h in plan.heads],
            "size": plan.sizes.astype(int),
            "jurisdiction_code": jurisdiction,
        }, geometry=list(plan.polygons), crs=4326)
        before = conn.execute(text("SELECT coalesce(max(id), 0) FROM household_units")
                              ).scalar_one()
        write_in(conn, units, clean_features(frame, units), actor=user.name, area=box,
                 source=f"units of grid {code}, replacing {len(old)}")
        ids = [r[0] for r in conn.execute(text(
            "SELECT id FROM household_units WHERE id > :b ORDER BY id"), {"b": before})]
    else:
        ids = []
        refresh_derived(conn, "household_units", box)
        audit_row(conn, user.name, "household_units", "delete", {"grid": code,
                  "units": len(old)}, None, grid_id)
    return ids
