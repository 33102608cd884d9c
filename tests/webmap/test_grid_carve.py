"""POST /api/grids/carve over HTTP: a new grid drawn in a community, carved out of the
grids it overlaps.

Checked in the database and as served: the community's grids still form a valid
coverage whose union is the community (read back through /collections/grids/items),
households are counted into the new boundaries, the grids that gave up area are
audited with a version bump and their units are stale; every bad input is refused
with a message naming the problem and writes nothing.
"""

import numpy as np
import pytest
import shapely
import shapely.affinity
from sqlalchemy import text

from .gridhelp import (
    COMMUNITY,
    assert_served_coverage,
    assert_tiles,
    community,
    geoms,
    inner_corners,
    state,
)

pytestmark = pytest.mark.db

OUTSIDE_SCOPE = "430303001002"  # a community of the other city


def corner_box(grids: dict, area: shapely.Polygon) -> shapely.Polygon:
    """A box around a vertex shared by three or more grids, well inside the community."""
    inner = inner_corners(grids, area)
    assert inner, "no inner corner shared by three grids"
    x, y = inner[0]
    return shapely.box(x - 0.0006, y - 0.0005, x + 0.0006, y + 0.0005)  # ~120 x 110 m


def carve(api, geometry, kind="dedicated", user="planner", **extra):
    body = {"jurisdiction": COMMUNITY, "geometry": shapely.geometry.mapping(geometry)
            if isinstance(geometry, shapely.Geometry) else geometry, "kind": kind, **extra}
    return api(user, "/api/grids/carve", method="POST", json=body)


def test_a_new_grid_is_carved_out_of_the_grids_it_overlaps(api, db, planned):
    grids = geoms(db)
    area = community(db)
    shape = corner_box(grids, area)
    overlapped = {k for k, g in grids.items() if g.intersection(shape).area > 0}
    assert len(overlapped) >= 3
    with db.begin() as conn:  # a unit of an overlapped grid must turn stale
        conn.execute(text("INSERT INTO household_units (geom, code, grid_code, head_household,"
                          " size, jurisdiction_code) SELECT geom, 'U-carve', code, 'H', 5, "
                          "jurisdiction_code FROM grids WHERE id = :i"), {"i": min(overlapped)})
    before_versions = {k: v for k, _c, _n, v, _g, _h in state(db)[0]}
    r = carve(api, shape, name="学校专属网格",
              versions={str(k): before_versions[k] for k in overlapped})
    assert r.status_code == 201, r.text
    body = r.json()
    new_id = body["id"]
    assert new_id not in grids
    assert r.headers["Location"].endswith(f"/collections/grids/items/{new_id}")
    assert r.headers["ETag"] == '"1"'
    props = body["properties"]
    assert props["name"] == "学校专属网格" and props["kind"] == "dedicated"
    assert props["code"].startswith(COMMUNITY) and props["jurisdiction_code"] == COMMUNITY
    changed = {f["id"] for f in body["changed"]["features"]}
    assert changed >= overlapped | {new_id}
    after = geoms(db)
    # exactly the grids the answer names changed; the new grid is the box
    assert {k for k in grids if not after[k].equals_exact(grids[k], 0)} == changed - {new_id}
    assert shapely.symmetric_difference(after[new_id], shape).area < 1e-3 * shape.area
    for k in overlapped:
        assert after[k].intersection(after[new_id]).area < 1e-12
        assert body["versions"][str(k)] == before_versions[k] + 1
    assert_tiles(db)  # households and key areas counted into the new boundaries
    assert_served_coverage(api, db)
    with db.connect() as conn:
        assert conn.execute(text("SELECT status FROM household_units WHERE code = 'U-carve'")
                            ).scalar_one() == "stale"
        audit = conn.execute(text(
            "SELECT feature_id, action FROM audit WHERE layer = 'grids' AND actor = 'planner' "
            "AND feature_id = ANY(:i) AND at > now() - interval '1 minute'"),
            {"i": list(changed)}).all()
        households = conn.execute(text(
            "SELECT households FROM grids WHERE id = :i"), {"i": new_id}).scalar_one()
    assert (new_id, "insert") in audit
    assert {f for f, a in audit if a == "update"} == changed - {new_id}
    assert households is not None
    # a second grid without a name gets the next number of the community
    r = carve(api, shapely.affinity.translate(shape, 0.0015), kind="comprehensive")
    assert r.status_code == 201, r.text
    p = r.json()["properties"]
    number = int(p["code"][len(COMMUNITY):])
    assert p["name"] == f"永安社区第{number}网格" and p["kind"] == "comprehensive"
    assert number == max(int(c[len(COMMUNITY):]) for _i, c, *_ in state(db)[0]
                         if c != p["code"]) + 1
    assert_served_coverage(api, db)


def bad_cases(grids: dict, area: shapely.Polygon) -> dict:
    """name -> (geometry or raw body changes, status, words the error must hold)."""
    shape = corner_box(grids, area)
    x0, y0, x1, y1 = shape.bounds
    one = next(iter(grids.values()))
    tiny = shapely.box(x0, y0, x0 + 0.00005, y0 + 0.00005)  # ~5 x 5 m
    return {
        "outside the community": (shapely.affinity.translate(shape, 0.5), 422,
                                  "lies outside"),
        "mostly outside": (shapely.box(area.bounds[0] - 0.01, y0, area.bounds[0] + 0.0005,
                                       y1), 422, "lies outside"),
        "self-intersecting": (shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)]), 422,
                              "not a valid polygon"),
        "too small": (tiny, 422, "too small"),
        "covering a whole grid": (one.buffer(0.0002, join_style="mitre").intersection(area),
                                  422, "entirely"),
        "with a hole": (shapely.Polygon(shape.exterior.coords, [shapely.box(
            x0 + 0.0002, y0 + 0.0002, x1 - 0.0002, y1 - 0.0002).exterior.coords]), 422,
            "without holes"),
        "two polygons": (shapely.MultiPolygon([shape, shapely.affinity.translate(
            shape, 0.002)]), 422, "one polygon"),
        "a line": (shapely.LineString([(x0, y0), (x1, y1)]), 422, "one polygon"),
        "off the planet": ({"type": "Polygon", "coordinates": [[[x0, 95], [x1, 95], [x1, 96],
                                                                 [x0, 95]]]}, 422, "refused"),
        "not GeoJSON": ({"type": "Polygon"}, 422, "not a GeoJSON Polygon"),
        "unknown kind": ({"kind": "special"}, 422, "not a grid kind"),
        "no kind": ({"kind": None}, 400, "missing field"),
        "geometry not an object": ({"geometry": "POLYGON"}, 400, "geometry must be"),
        "unknown field": ({"colour": "red"}, 400, "unknown field"),
        "unknown jurisdiction": ({"jurisdiction": "999999999999"}, 400, "does not exist"),
        "not a community": ({"jurisdiction": "430103002"}, 422, "not a community"),
        "outside the planner's scope": ({"jurisdiction": OUTSIDE_SCOPE}, 403,
                                        "outside your jurisdiction"),
        "stale version": ({"versions": "stale"}, 412, "is at version"),
        "a grid of another community": ({"versions": "other"}, 422, "is not in jurisdiction"),
        "a viewer": ({"user": "viewer"}, 403, "may not edit"),
    }


@pytest.mark.parametrize("case", [
    "outside the community", "mostly outside", "self-intersecting", "too small",
    "covering a whole grid", "with a hole", "two polygons", "a line", "off the planet",
    "not GeoJSON", "unknown kind", "no kind", "geometry not an object", "unknown field",
    "unknown jurisdiction", "not a community", "outside the planner's scope",
    "stale version", "a grid of another community", "a viewer"])
def test_bad_carves_say_why_and_write_nothing(api, db, planned, case):
    grids = geoms(db)
    area = community(db)
    given, status, words = bad_cases(grids, area)[case]
    shape = corner_box(grids, area)
    body = {"jurisdiction": COMMUNITY, "geometry": shapely.geometry.mapping(shape),
            "kind": "dedicated"}
    user = "planner"
    if isinstance(given, shapely.Geometry):
        body["geometry"] = shapely.geometry.mapping(given)
    elif "type" in given:
        body["geometry"] = given
    else:
        for key, value in given.items():
            if key == "user":
                user = value
            elif value is None:
                body.pop(key)
            elif value == "stale":
                body["versions"] = {str(k): 99 for k in grids}
            elif value == "other":
                with db.connect() as conn:
                    other = conn.execute(text(
                        "SELECT id FROM grids WHERE jurisdiction_code <> :c LIMIT 1"),
                        {"c": COMMUNITY}).scalar_one()
                body["versions"] = {str(other): 1}
            else:
                body[key] = value
    before = state(db)
    r = api(user, "/api/grids/carve", method="POST", json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"], r.json()
    assert state(db) == before


def test_random_carves_keep_the_served_coverage_valid(api, db, planned):
    """Boxes and triangles at random places (fixed seed): each is carved or refused, and
    after each the community's grids, read back as served, still tile it."""
    rng = np.random.default_rng(15)
    area = community(db)
    x0, y0, x1, y1 = area.bounds
    made = refused = 0
    for _ in range(8):
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        w, h = rng.uniform(0.0002, 0.0012, size=2)
        if rng.random() < 0.5:
            shape = shapely.box(cx - w, cy - h, cx + w, cy + h)
        else:
            shape = shapely.Polygon([(cx - w, cy - h), (cx + w, cy - h * 0.7), (cx, cy + h)])
        before = state(db)
        r = carve(api, shape, kind=rng.choice(["comprehensive", "dedicated"]))
        if r.status_code == 201:
            made += 1
        else:
            assert r.status_code == 422, r.text
            assert state(db) == before
            refused += 1
        assert_served_coverage(api, db)
    assert made >= 3, (made, refused)
    assert_tiles(db)


def test_a_carve_after_a_reshape_that_moved_far_edges_keeps_the_coverage(api, db, planned):
    """A reshape to the same polygon written from another vertex re-tiles the grids
    around it; a grid carved there afterwards must still match every grid it meets,
    including those beyond the ones near the new grid."""
    grids = geoms(db)
    area = community(db)
    shape = corner_box(grids, area)
    x0, y0, x1, y1 = shape.bounds
    key = next(k for k, g in grids.items() if g.contains(shapely.Point(
        x0 + 0.3 * (x1 - x0), y0 + 0.6 * (y1 - y0))))
    ring = list(grids[key].exterior.coords)[1:]
    r = api("planner", f"/collections/grids/items/{key}")
    feature = r.json()
    feature["geometry"] = {"type": "Polygon", "coordinates": [[*map(list, ring), list(ring[0])]]}
    r = api("planner", f"/collections/grids/items/{key}", method="PUT", json=feature,
            headers={"If-Match": r.headers["ETag"], "Content-Type": "application/geo+json"})
    assert r.status_code == 200, r.text
    assert_served_coverage(api, db)
    r = carve(api, shape)
    assert r.status_code == 201, r.text
    assert_served_coverage(api, db)
    assert_tiles(db)
