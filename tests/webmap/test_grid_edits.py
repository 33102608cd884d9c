"""Topology-safe grid edits over HTTP: reshape (PUT), split, merge, restore, delete.

Each test plans one community into several grids first, edits them through the API
and checks the database: the grids still tile the community, neighbours changed as
the response says, derived counts match a brute-force count, refused edits wrote
nothing.
"""

import re
import threading

import pytest
import shapely
from sqlalchemy import text

from .gridhelp import (
    COMMUNITY,
    assert_tiles,
    geoms,
    moved,
    same_as_served,
    shared_vertex,
    state,
)

pytestmark = pytest.mark.db

def item(api, grid_id):
    r = api("planner", f"/collections/grids/items/{grid_id}")
    assert r.status_code == 200
    return r.json(), r.headers["ETag"]


def put(api, grid_id, feature, etag, user="planner"):
    return api(user, f"/collections/grids/items/{grid_id}", method="PUT", json=feature,
               headers={"If-Match": etag, "Content-Type": "application/geo+json"})


def test_reshape_moves_a_shared_vertex_and_updates_the_neighbour(api, db, planned):
    grids = geoms(db)
    key = planned[0]
    neighbour, xy = shared_vertex(grids, key)
    feature, etag = item(api, key)
    feature["geometry"] = moved(grids[key], xy, 0.0003, 0.0002)  # ~30 m
    with db.begin() as conn:  # its units must turn stale
        conn.execute(text("INSERT INTO household_units (geom, code, grid_code, head_household,"
                          " size, jurisdiction_code) SELECT geom, 'U-test', code, 'H', 5, "
                          "jurisdiction_code FROM grids WHERE id = :i"), {"i": neighbour})
    r = put(api, key, feature, etag)
    assert r.status_code == 200, r.text
    body = r.json()
    changed = {f["id"] for f in body["changed"]["features"]}
    assert key in changed and neighbour in changed
    assert r.headers["ETag"] == f'"{int(etag.strip(chr(34))) + 1}"'
    assert body["versions"][str(neighbour)] == 2
    after = geoms(db)
    assert {k for k in after if not after[k].equals_exact(grids[k], 0)} == changed
    assert_tiles(db)
    with db.connect() as conn:
        assert conn.execute(text("SELECT status FROM household_units WHERE code = 'U-test'")
                            ).scalar_one() == "stale"
        # one audit row per changed grid, by the planner
        n = conn.execute(text("SELECT count(*) FROM audit WHERE layer = 'grids' AND "
                              "actor = 'planner' AND action = 'update' AND "
                              "feature_id = ANY(:i) AND at > now() - interval '1 minute'"),
                         {"i": list(changed)}).scalar_one()
    assert n == len(changed)
    # the neighbour's history now has two versions
    versions = api("planner", f"/api/grids/{neighbour}/history").json()["versions"]
    assert [v["version"] for v in versions][-2:] == [1, 2]


def test_stale_version_gets_412_with_the_current_grid_and_writes_nothing(api, db, planned):
    grids = geoms(db)
    key = planned[1]
    _other, xy = shared_vertex(grids, key)
    feature, etag = item(api, key)
    feature["geometry"] = moved(grids[key], xy, 0.0002, 0.0)
    assert put(api, key, feature, etag).status_code == 200
    before = state(db)
    feature["geometry"] = moved(grids[key], xy, -0.0002, 0.0)
    r = put(api, key, feature, etag)  # the old ETag
    assert r.status_code == 412
    assert r.json()["current"]["properties"]["version"] == int(etag.strip(chr(34))) + 1
    assert r.headers["ETag"] == f'"{int(etag.strip(chr(34))) + 1}"'
    assert state(db) == before


def test_a_rename_changes_no_shape(api, db, planned):
    key = planned[0]
    before = geoms(db)
    _feature, etag = item(api, key)
    r = api("planner", f"/collections/grids/items/{key}", method="PATCH",
            json={"properties": {"name": "新名字"}},
            headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert [f["id"] for f in r.json()["changed"]["features"]] == [key]
    after = geoms(db)
    assert all(after[k].equals_exact(g, 0) for k, g in before.items())
    with db.connect() as conn:
        assert conn.execute(text("SELECT name FROM grids WHERE id = :i"), {"i": key}
                            ).scalar_one() == "新名字"


@pytest.mark.parametrize("case", ["outside", "swallow", "bowtie", "moved_away", "wrong_type",
                                  "other_jurisdiction"])
def test_refused_reshapes_say_why_and_write_nothing(api, db, planned, case):
    grids = geoms(db)
    key = planned[0]
    neighbour, _xy = shared_vertex(grids, key)
    feature, etag = item(api, key)
    g = grids[key]
    x0, y0, x1, y1 = g.bounds
    if case == "outside":
        shape, expect = shapely.box(x0 + 1, y0, x1 + 1, y1), "outside its jurisdiction"
    elif case == "swallow":
        shape, expect = shapely.union_all([g, grids[neighbour]]).convex_hull, "swallow"
        shape = shape.intersection(shapely.union_all(list(grids.values())))
    elif case == "bowtie":
        shape, expect = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)]), "valid"
    elif case == "moved_away":
        far = grids[next(k for k in planned if grids[k].distance(g) > 0)]
        shape, expect = far.point_on_surface().buffer(0.00005, 1), "overlap"
    elif case == "wrong_type":
        shape, expect = shapely.LineString([(x0, y0), (x1, y1)]), "Polygon"
    else:
        shape, expect = g, "cannot move"
        feature["properties"]["jurisdiction_code"] = "430103002002"
    feature["geometry"] = shapely.geometry.mapping(shape)
    before = state(db)
    r = put(api, key, feature, etag)
    assert 400 <= r.status_code < 500, r.text
    assert expect in r.json()["error"] + str(r.json().get("problems", "")), r.json()
    assert state(db) == before


def test_split_merge_and_restore(api, db, planned):
    grids = geoms(db)
    key = planned[2]
    g = grids[key]
    c = g.centroid
    x0, y0, x1, y1 = g.bounds
    line = {"type": "LineString", "coordinates": [[c.x, y0 - 0.001], [c.x, y1 + 0.001]]}
    n_before = len(grids)
    r = api("planner", f"/api/grids/{key}/split", method="POST", json={"line": line})
    assert r.status_code == 200, r.text
    changed = {f["id"]: f for f in r.json()["changed"]["features"]}
    new_ids = set(changed) - set(grids)
    assert len(new_ids) == 1
    (half,) = new_ids
    assert changed[half]["properties"]["code"].startswith(COMMUNITY)
    after = geoms(db)
    assert len(after) == n_before + 1
    assert after[key].area + after[half].area == pytest.approx(g.area, rel=1e-9)
    assert_tiles(db)

    r = api("planner", "/api/grids/merge", method="POST", json={"ids": [key, half]})
    assert r.status_code == 200, r.text
    assert r.json()["removed"] == [half]
    merged = geoms(db)
    # back to the original shape (up to the rounding of the nodes the line added)
    assert half not in merged and same_as_served(merged[key], g)
    assert_tiles(db)

    versions = api("planner", f"/api/grids/{key}/history").json()["versions"]
    assert len(versions) >= 3
    r = api("planner", f"/api/grids/{key}/restore", method="POST",
            json={"version": versions[1]["version"]})  # the split-off state
    assert r.status_code == 200, r.text
    restored = geoms(db)
    # the restored shape is that one, but for vertices that an edit snaps onto an
    # existing vertex within 0.5 m (layers.gridedit.SNAP_M)
    assert shapely.hausdorff_distance(
        restored[key], shapely.geometry.shape(versions[1]["geometry"])) < 0.5 / 111_000
    assert_tiles(db)


@pytest.mark.parametrize("path,body,status,expect", [
    # the other bad splits, merges and restores are in tests/data/bad_requests.py
    ("/api/grids/merge", {"ids": ["{a}", "{far}"]}, 422, "no edge"),
])
def test_bad_split_merge_restore(api, db, planned, path, body, status, expect):
    grids = geoms(db)
    a = planned[0]
    far = next(k for k in planned if grids[k].distance(grids[a]) > 0)
    fill = {"a": a, "far": far}
    path = path.format(**fill)
    if "ids" in body and isinstance(body["ids"], list):
        body = {"ids": [int(i.format(**fill)) if isinstance(i, str) else i
                        for i in body["ids"]]}
    elif "ids" in body:
        body = {"ids": body["ids"].format(**fill)}
    before = state(db)
    r = api("planner", path, method="POST", json=body)
    assert r.status_code == status, r.text
    assert expect in r.json()["error"]
    assert state(db) == before


def test_a_dedicated_grid_is_not_merged_into_a_comprehensive_one(api, db, planned):
    grids = geoms(db)
    a = planned[0]
    b = next(k for k in planned if k != a and grids[k].intersection(grids[a]).length > 0)
    _feature, etag = item(api, a)
    r = api("planner", f"/collections/grids/items/{a}", method="PATCH",
            json={"properties": {"kind": "dedicated"}},
            headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    before = state(db)
    r = api("planner", "/api/grids/merge", method="POST", json={"ids": [a, b]})
    assert r.status_code == 422 and "different kinds" in r.json()["error"], r.text
    assert state(db) == before
    # the planner's refusal text matches it
    from webmap.planner import REFUSALS
    assert any(re.search(p, r.json()["error"]) for key, p in REFUSALS if key == "why_other_kind")


def test_only_grid_writers_edit_grids(api, db, planned):
    before = state(db)
    for user in ("viewer", "police"):
        r = api(user, "/api/grids/merge", method="POST", json={"ids": planned[:2]})
        assert r.status_code == 403, r.text
    assert state(db) == before


def test_delete_gives_the_area_to_neighbours(api, db, planned):
    key = planned[3]
    _feature, etag = item(api, key)
    r = api("planner", f"/collections/grids/items/{key}", method="DELETE",
            headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["removed"] == [key] and r.json()["changed"]["features"]
    assert key not in geoms(db)
    assert_tiles(db)


def test_concurrent_edits_of_neighbours_lose_nothing(api, db, planned):
    grids = geoms(db)
    key = planned[0]
    neighbour, xy = shared_vertex(grids, key)
    mine, etag_a = item(api, key)
    theirs, etag_b = item(api, neighbour)
    mine["geometry"] = moved(grids[key], xy, 0.0002, 0.0001)
    theirs["geometry"] = moved(grids[neighbour], xy, -0.0001, -0.0002)
    results = {}

    def go(name, grid_id, feature, etag):
        results[name] = put(api, grid_id, feature, etag)

    threads = [threading.Thread(target=go, args=("a", key, mine, etag_a)),
               threading.Thread(target=go, args=("b", neighbour, theirs, etag_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results.values())
    # Both move the vertex they share: whichever runs second finds its grid changed.
    assert codes == [200, 412], {k: r.text for k, r in results.items()}
    winner = next(r for r in results.values() if r.status_code == 200)
    loser = next(r for r in results.values() if r.status_code == 412)
    after = geoms(db)
    won = winner.json()
    # what the winner was told is what is stored (GeoJSON carries 7 decimals)
    assert after[won["id"]].equals_exact(shapely.geometry.shape(won["geometry"]), 1e-7)
    # the loser gets the current state, changed by the winner
    assert loser.json()["current"]["properties"]["version"] == 2
    assert_tiles(db)


def test_units_are_regenerated_for_a_grid_and_go_stale_when_it_changes(api, db, planned):
    key = planned[0]
    r = api("planner", f"/api/grids/{key}/units", method="POST")
    assert r.status_code == 201, r.text
    units = r.json()["features"]
    with db.connect() as conn:
        code, homes = conn.execute(text(
            "SELECT g.code, (SELECT count(*) FROM households h WHERE "
            "ST_Intersects(g.geom, h.geom)) FROM grids g WHERE g.id = :i"), {"i": key}).one()
        linked = conn.execute(text(
            "SELECT h.unit_code, count(*) FROM households h JOIN grids g ON "
            "ST_Intersects(g.geom, h.geom) WHERE g.id = :i GROUP BY 1"), {"i": key}).all()
    sizes = {f["properties"]["code"]: f["properties"]["size"] for f in units}
    assert sum(sizes.values()) == homes
    if homes >= 5:
        assert min(sizes.values()) >= 5 and max(sizes.values()) <= 15
    # every household of the grid is linked to the unit that counts it
    assert dict(linked) == sizes
    assert all(f["properties"]["grid_code"] == code and f["properties"]["status"] == "current"
               for f in units)

    grids = geoms(db)
    _other, xy = shared_vertex(grids, key)
    feature, etag = item(api, key)
    feature["geometry"] = moved(grids[key], xy, 0.0002, 0.0001)
    assert put(api, key, feature, etag).status_code == 200
    with db.connect() as conn:
        statuses = conn.execute(text("SELECT DISTINCT status FROM household_units "
                                     "WHERE grid_code = :c"), {"c": code}).scalars().all()
    assert statuses == ["stale"]
    assert api("planner", f"/api/grids/{key}/units", method="POST").status_code == 201
    with db.connect() as conn:
        statuses = conn.execute(text("SELECT DISTINCT status FROM household_units "
                                     "WHERE grid_code = :c"), {"c": code}).scalars().all()
    assert statuses == ["current"]
