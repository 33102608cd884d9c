"""Helpers of the grid-editing tests: the community they plan, its state, its vertices."""

import numpy as np
import shapely
from sqlalchemy import text

COMMUNITY = "430103002001"


def state(db) -> tuple:
    """Everything an edit may touch: grids, units and the audit length."""
    with db.connect() as conn:
        grids = conn.execute(text(
            "SELECT id, code, name, version, ST_AsText(geom), households FROM grids "
            "WHERE jurisdiction_code = :c ORDER BY id"), {"c": COMMUNITY}).all()
        units = conn.execute(text("SELECT code, grid_code, status FROM household_units "
                                  "ORDER BY code")).all()
        audit = conn.execute(text("SELECT count(*) FROM audit")).scalar_one()
    return grids, units, audit


def geoms(db) -> dict[int, shapely.Geometry]:
    with db.connect() as conn:
        return {r[0]: shapely.from_wkb(bytes(r[1])) for r in conn.execute(text(
            "SELECT id, ST_AsBinary(geom) FROM grids WHERE jurisdiction_code = :c"),
            {"c": COMMUNITY})}


def same_as_served(a, b) -> bool:
    """Whether ``a`` and ``b`` differ only by strips thinner than the served 1e-7 degrees."""
    return shapely.symmetric_difference(a, b).buffer(-1e-7).is_empty


def assert_served_tiling(grids, area):
    """A valid coverage whose union is ``area`` but for strips thinner than 1e-7 degrees.

    (A grid corner on the community's edge is rounded to the served grid, up to half
    a unit off that edge.)
    """
    grids = np.asarray(grids, dtype=object)
    assert shapely.coverage_is_valid(grids)
    assert all(g.geom_type == "Polygon" and g.is_valid for g in grids)
    assert same_as_served(shapely.coverage_union_all(grids), area)


def assert_tiles(db):
    grids = geoms(db)
    with db.connect() as conn:
        area = shapely.from_wkb(bytes(conn.execute(text(
            "SELECT ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"),
            {"c": COMMUNITY}).scalar_one()))
        counts = conn.execute(text(
            "SELECT g.households, (SELECT count(*) FROM households h "
            "WHERE ST_Intersects(g.geom, h.geom)), g.key_areas, (SELECT count(*) FROM "
            "key_areas k WHERE ST_Intersects(k.geom, g.geom)) FROM grids g "
            "WHERE g.jurisdiction_code = :c"), {"c": COMMUNITY}).all()
    assert_served_tiling(list(grids.values()), area)
    assert all(a == b and c == d for a, b, c, d in counts)  # derived = brute force


def shared_vertex(grids: dict, key: int) -> tuple[int, tuple[float, float]]:
    """A neighbour of grid ``key`` and a vertex on their common edge, off the outline:
    the one farthest from the grid's other vertices (the easiest to grab and move)."""
    outline = shapely.coverage_union_all(np.array(list(grids.values()), dtype=object)).boundary
    mine = grids[key]
    found = []
    for other, geom in grids.items():
        if other == key or mine.intersection(geom).length == 0:
            continue
        for xy in mine.exterior.coords[:-1]:
            p = shapely.Point(xy)
            if geom.exterior.distance(p) == 0 and outline.distance(p) > 1e-5:
                found.append((room(mine, xy), other, xy))
    if not found:
        raise AssertionError(f"grid {key} has no inner shared vertex")
    _room, other, xy = max(found)
    return other, xy


def room(geom: shapely.Polygon, xy) -> float:
    """Distance from vertex ``xy`` to the nearest other vertex of the grid's outline."""
    others = [p for p in geom.exterior.coords[:-1] if p != tuple(xy)]
    return float(min(np.hypot(x - xy[0], y - xy[1]) for x, y in others))


def moved(geom: shapely.Polygon, xy, dx: float, dy: float) -> dict:
    """The grid with vertex ``xy`` moved by (dx, dy), shortened until the outline stays
    simple (a drag on the map cannot cross the outline either)."""
    scale = min(1.0, 0.4 * room(geom, xy) / max(np.hypot(dx, dy), 1e-12))
    for _ in range(6):
        ring = [(x + dx * scale, y + dy * scale) if (x, y) == tuple(xy) else (x, y)
                for x, y in geom.exterior.coords]
        shape = shapely.Polygon(ring)
        if shape.is_valid:
            return shapely.geometry.mapping(shape)
        scale /= 2
    raise AssertionError(f"vertex {xy} cannot move by ({dx}, {dy}) without crossing")


def community(db) -> shapely.Polygon:
    """The planned community's polygon as stored."""
    with db.connect() as conn:
        return shapely.from_wkb(bytes(conn.execute(text(
            "SELECT ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"),
            {"c": COMMUNITY}).scalar_one()))


def assert_served_coverage(api, db):
    """The community's grids as a client reads them (/collections/grids/items, GeoJSON
    at 7 decimals) are a valid coverage whose union is the community."""
    r = api("planner", f"/collections/grids/items?jurisdiction_code={COMMUNITY}&limit=1000")
    assert r.status_code == 200, r.text
    grids = [shapely.geometry.shape(f["geometry"]) for f in r.json()["features"]]
    assert len(grids) == len(geoms(db))
    assert_served_tiling(grids, community(db))


def inner_corners(grids: dict, area: shapely.Polygon) -> list[tuple[float, float]]:
    """Vertices shared by three grids or more, 0.002 degrees or more inside ``area``."""
    counts: dict[tuple, int] = {}
    for g in grids.values():
        for xy in g.exterior.coords[:-1]:
            counts[xy] = counts.get(xy, 0) + 1
    return [xy for xy, n in counts.items()
            if n >= 3 and area.boundary.distance(shapely.Point(xy)) > 0.002]
