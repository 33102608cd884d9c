"""Checks on stored grids: do they tile each community (validate), and their history."""

from __future__ import annotations

import math

import numpy as np
import shapely
from sqlalchemy import Connection, text

from geo.crs import Projection
from geo.grids import coverage_problems
from geo.validate import SERVED_DECIMALS, SERVED_GRID

from .access import leaf_jurisdictions, read_scope, require_within
from .edit import Missing
from .errors import UnknownJurisdiction
from .registry import LAYERS
from .users import User

__all__ = ["MIN_AREA_M2", "SLIVER_M", "grid_history", "validate_grids"]

MIN_AREA_M2 = 0.01  # smaller pieces are rounding, not problems
SLIVER_M = 0.5  # gaps and overlaps thinner than this are slivers


def validate_grids(conn: Connection, user: User, code: str) -> dict:
    """``{"valid", "problems"}``: problems as a GeoJSON FeatureCollection (EPSG:4326).

    Each problem has ``kind`` (gap, overlap, sliver, outside, invalid,
    unmatched_edge), ``community``, the ``grids`` (codes) involved, ``area_m2`` and
    ``detail``. Computed per community in its metric CRS.
    """
    read_scope(conn, user, LAYERS["grids"])
    leaves = leaf_jurisdictions(conn, code)
    if not leaves:
        raise UnknownJurisdiction(f"jurisdiction {code!r} does not exist")
    require_within(conn, user, code)
    features = []
    for leaf, _name, wkb in leaves:
        # the grids as a client reads them: GeoJSON at the served precision
        rows = conn.execute(text("SELECT code, ST_AsGeoJSON(geom, :d) FROM grids "
                                 "WHERE jurisdiction_code = :c ORDER BY id"),
                            {"c": leaf, "d": SERVED_DECIMALS}).all()
        if not rows:
            continue  # no grids drawn yet: nothing to check
        area = shapely.from_wkb(wkb)
        # Topology is checked in the stored lon/lat (a reprojected straight edge bends, which
        # would invent slivers); sizes are converted to and measured in metres.
        centre = area.centroid
        metres_per_degree = 111_320.0 * math.sqrt(math.cos(math.radians(centre.y)))
        to_m = Projection.around(centre.x, centre.y)
        found = coverage_problems(
            area, shapely.from_geojson(np.array([r[1] for r in rows], dtype=object)),
            min_area=MIN_AREA_M2 / metres_per_degree**2,
            sliver_width=SLIVER_M / metres_per_degree, min_width=SERVED_GRID)
        for kind, involved, geom, detail in zip(found.kind, found.grids, found.geometry,
                                                found.detail, strict=True):
            features.append({
                "type": "Feature",
                "geometry": shapely.geometry.mapping(geom),
                "properties": {"kind": kind, "community": leaf,
                               "grids": [rows[i][0] for i in involved],
                               "area_m2": round(float(to_m.project(geom).area), 2),
                               "detail": detail},
            })
    return {"valid": not features,
            "problems": {"type": "FeatureCollection", "features": features}}


def grid_history(conn: Connection, user: User, grid_id: int) -> list[dict]:
    """Versions of a grid, oldest first: ``{version, updated_at, updated_by, geometry}``.

    From the audit trail of API edits; a grid last written by an import or the
    generator has its current state as the latest version.
    """
    scope = read_scope(conn, user, LAYERS["grids"])
    where = f" AND ({scope.condition})" if scope.condition else ""
    current = conn.execute(text(
        f"SELECT t.version, t.updated_at, t.updated_by, ST_AsGeoJSON(t.geom, :d)::json "
        f"FROM grids t WHERE t.id = :i{where}"),
        {**scope.params, "i": grid_id, "d": SERVED_DECIMALS}).first()
    if current is None:
        raise Missing(f"grids has no feature {grid_id} that you may see")
    versions: dict[int, dict] = {}
    for before, after in conn.execute(text(
            "SELECT before, after FROM audit WHERE layer = 'grids' AND feature_id = :i "
            "ORDER BY id"), {"i": grid_id}):
        for state in (before, after):  # an edit's "before" is the version it replaced
            if state and state["properties"]["version"] not in versions:
                versions[state["properties"]["version"]] = {
                    "version": state["properties"]["version"],
                    "updated_at": state["updated_at"], "updated_by": state["updated_by"],
                    "geometry": state["geometry"]}
    if current[0] not in versions:
        versions[current[0]] = {"version": current[0], "updated_at": current[1].isoformat(),
                                "updated_by": current[2], "geometry": current[3]}
    return [versions[v] for v in sorted(versions)]
