"""Random sequences of grid edits in the database (hypothesis).

Reshape, split, merge, restore and carve (a new grid drawn), in any order, keep the
grids of the community a valid coverage whose union is the community; an edit that
is refused leaves every grid, unit and audit row as it was. Each example runs inside
one transaction that is rolled back afterwards; each edit runs in a savepoint, as one
request would, and a refused edit is checked to have written nothing before that
savepoint is undone.
"""

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from layers.edit import Missing, StaleVersion
from layers.errors import InputRejected
from layers.gridedit import (
    GridEditRefused,
    carve_grid,
    merge_grids,
    replace_grid,
    restore_grid,
    split_grid,
)
from layers.gridgen import generate_grids
from layers.users import user_by_name
from tests.webmap.gridhelp import assert_served_tiling

pytestmark = pytest.mark.db

COMMUNITY = "430103002002"
REFUSED = (GridEditRefused, InputRejected, StaleVersion, Missing)


@pytest.fixture(scope="module")
def planned(db, demo_small):
    """A connection inside a transaction where the community has ~8 grids."""
    with db.connect() as conn:
        outer = conn.begin()
        admin = user_by_name(conn, "admin")[0]
        generate_grids(conn, admin, COMMUNITY, 25, replace=True)
        area = shapely.from_wkb(bytes(conn.execute(text(
            "SELECT ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"),
            {"c": COMMUNITY}).scalar_one()))
        yield conn, admin, area
        outer.rollback()


def snapshot(conn) -> tuple:
    grids = conn.execute(text(
        "SELECT id, code, version, ST_AsBinary(geom) FROM grids WHERE jurisdiction_code = :c "
        "ORDER BY id"), {"c": COMMUNITY}).all()
    units = conn.execute(text("SELECT code, grid_code, status FROM household_units "
                              "WHERE jurisdiction_code = :c ORDER BY code"),
                         {"c": COMMUNITY}).all()
    audit = conn.execute(text("SELECT count(*) FROM audit")).scalar_one()
    return [(i, c, v, bytes(g)) for i, c, v, g in grids], units, audit


def assert_tiles(conn, area):
    """The grids as served (GeoJSON, 7 decimals) tile the community."""
    grids = shapely.from_geojson(np.array([r[0] for r in conn.execute(text(
        "SELECT ST_AsGeoJSON(geom, 7) FROM grids WHERE jurisdiction_code = :c"),
        {"c": COMMUNITY})], dtype=object))
    assert_served_tiling(grids, area)


steps = st.lists(st.tuples(st.sampled_from(["reshape", "split", "merge", "restore", "carve"]),
                           st.integers(0, 10_000), st.floats(-1, 1), st.floats(-1, 1),
                           st.floats(0, np.pi)),
                 min_size=1, max_size=5)


def _edit(conn, admin, op, pick, dx, dy, angle):
    rows = conn.execute(text(
        "SELECT id, version, ST_AsBinary(geom) FROM grids WHERE jurisdiction_code = :c "
        "ORDER BY id"), {"c": COMMUNITY}).all()
    grid_id, version, wkb = rows[pick % len(rows)]
    geom = shapely.from_wkb(bytes(wkb))
    span = np.sqrt(geom.area)
    if op == "reshape":
        ring = np.array(geom.exterior.coords)
        i = pick % (len(ring) - 1)
        ring[i] += (dx * span / 3, dy * span / 3)
        if i == 0:
            ring[-1] = ring[0]
        feature = {"type": "Feature", "geometry": shapely.geometry.mapping(
            shapely.Polygon(ring)), "properties": {"name": "x", "kind": "comprehensive",
                                                   "code": f"G{grid_id}"}}
        replace_grid(conn, admin, grid_id, feature, version)
    elif op == "split":
        c = geom.centroid
        d = np.array([np.cos(angle), np.sin(angle)]) * span * 2
        line = {"type": "LineString", "coordinates": [[c.x - d[0], c.y - d[1]],
                                                      [c.x + d[0], c.y + d[1]]]}
        split_grid(conn, admin, grid_id, line, version)
    elif op == "merge":
        others = [r[0] for r in rows if r[0] != grid_id and shapely.from_wkb(bytes(r[2]))
                  .intersection(geom).length > 0]
        if not others:
            return
        merge_grids(conn, admin, [grid_id, others[pick % len(others)]], {grid_id: version})
    elif op == "carve":  # a triangle around one of the grid's vertices
        x, y = geom.exterior.coords[pick % (len(geom.exterior.coords) - 1)]
        r = span * (0.2 + 0.3 * abs(dx))
        shape = shapely.Polygon([(x + r * np.cos(angle + k * 2.1), y + r * np.sin(angle + k * 2.1))
                                 for k in range(3)])
        carve_grid(conn, admin, COMMUNITY, shapely.geometry.mapping(shape),
                   "dedicated" if dy > 0 else "comprehensive")
    else:  # an earlier version of a grid that has one
        edited = [r for r in rows if r[1] > 1]
        if edited:
            grid_id, version, _wkb = edited[pick % len(edited)]
            restore_grid(conn, admin, grid_id, 1 + pick % (version - 1), version)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps)
def test_random_edit_sequences_keep_the_coverage(planned, steps):
    conn, admin, area = planned
    example = conn.begin_nested()
    try:
        for op, pick, dx, dy, angle in steps:
            before = snapshot(conn)
            edit = conn.begin_nested()
            try:
                _edit(conn, admin, op, pick, dx, dy, angle)
            except REFUSED:
                # refused before writing anything (checked before the rollback a
                # request would do anyway)
                assert snapshot(conn) == before
                edit.rollback()
                continue
            edit.commit()
            assert_tiles(conn, area)
    finally:
        example.rollback()
