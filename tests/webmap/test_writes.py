"""OGC API Part 4 over real HTTP: the write cycle with ETags, bad writes, who may write."""

import copy
import json
import threading

import pytest
import shapely
from sqlalchemy import text

from layers import LAYERS
from layers.demo import DEMO_USERS

pytestmark = pytest.mark.db

USERS = {u["name"]: u for u in DEMO_USERS}
CAMERA = {"type": "Feature",
          "geometry": {"type": "Point", "coordinates": [112.985, 28.03]},
          "properties": {"code": "T-CAM-1", "bearing": 10, "fov": 70, "range_m": 90,
                         "status": "online"}}


def _state(db, layer, feature_id=None):
    """Row count, audit count and (optionally) one feature's version: 'unchanged' means
    all three equal before and after."""
    with db.connect() as conn:
        count = conn.execute(text(f'SELECT count(*) FROM "{layer}"')).scalar_one()
        audits = conn.execute(text("SELECT count(*) FROM audit")).scalar_one()
        version = None if feature_id is None else conn.execute(
            text(f'SELECT version FROM "{layer}" WHERE id = :i'), {"i": feature_id}).scalar()
    return count, audits, version


def _path(response):
    return "/" + response.headers["Location"].split("/", 3)[3]


def test_the_whole_write_cycle(api, db):
    created = api("police", "/collections/cameras/items", method="POST", json=CAMERA)
    assert created.status_code == 201, created.text
    assert created.headers["ETag"] == '"1"'
    item = _path(created)
    got = api("police", item)
    assert got.status_code == 200 and got.headers["ETag"] == '"1"'
    assert got.json()["properties"]["jurisdiction_code"].startswith("4301")  # derived

    patch = {"properties": {"status": "offline", "fov": 90}}
    patched = api("police", item, method="PATCH", data=json.dumps(patch),
                  headers={"If-Match": '"1"', "Content-Type": "application/merge-patch+json"})
    assert patched.status_code == 200, patched.text
    assert patched.headers["ETag"] == '"2"'
    assert patched.json()["properties"]["status"] == "offline"
    assert patched.json()["properties"]["bearing"] == 10  # untouched fields stay

    stale = api("police", item, method="PUT", json=CAMERA, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["current"]["properties"]["status"] == "offline"
    assert stale.headers["ETag"] == '"2"'

    moved = copy.deepcopy(CAMERA)
    moved["geometry"]["coordinates"] = [112.99, 28.031]
    put = api("police", item, method="PUT", json=moved, headers={"If-Match": '"2"'})
    assert put.status_code == 200 and put.headers["ETag"] == '"3"'
    assert put.json()["properties"]["status"] == "online"
    assert put.json()["geometry"]["coordinates"] == [112.99, 28.031]

    gone = api("police", item, method="DELETE", headers={"If-Match": '"3"'})
    assert gone.status_code == 204
    assert api("police", item).status_code == 404
    feature_id = int(item.rsplit("/", 1)[1])
    with db.connect() as conn:
        trail = conn.execute(text(
            "SELECT action, actor, before->'properties'->>'status', "
            "after->'properties'->>'status' FROM audit WHERE layer = 'cameras' "
            "AND feature_id = :i ORDER BY id"), {"i": feature_id}).all()
    assert trail == [("insert", "police", None, "online"),
                     ("update", "police", "online", "offline"),
                     ("update", "police", "offline", "online"),
                     ("delete", "police", "online", None)]


def test_a_concurrent_second_write_with_the_same_etag_loses(api):
    created = api("police", "/collections/cameras/items", method="POST",
                  json={**CAMERA, "properties": {**CAMERA["properties"], "code": "T-CAM-2"}})
    item = _path(created)
    first = api("police", item, method="PATCH", data='{"properties": {"fov": 80}}',
                headers={"If-Match": '"1"', "Content-Type": "application/merge-patch+json"})
    second = api("police", item, method="PATCH", data='{"properties": {"fov": 60}}',
                 headers={"If-Match": '"1"', "Content-Type": "application/merge-patch+json"})
    assert (first.status_code, second.status_code) == (200, 412)
    assert api("police", item).json()["properties"]["fov"] == 80
    api("police", item, method="DELETE")


def test_options_lists_the_methods(api):
    r = api("police", "/collections/cameras/items", method="OPTIONS")
    assert {"GET", "POST"} <= set(r.headers["Allow"].replace(" ", "").split(","))
    r = api("police", "/collections/cameras/items/1", method="OPTIONS")
    assert {"GET", "PUT", "PATCH", "DELETE"} <= set(r.headers["Allow"].replace(" ", "")
                                                       .split(","))


@pytest.fixture
def household(api, db):
    """(id, grid code) of the first household in a grid; put back where it was afterwards
    (later tests count households)."""
    with db.connect() as conn:
        hid, grid, x, y = conn.execute(text(
            "SELECT id, grid_code, ST_X(geom), ST_Y(geom) FROM households "
            "WHERE grid_code IS NOT NULL ORDER BY id LIMIT 1")).one()
    yield hid, grid
    path = f"/collections/households/items/{hid}"
    r = api("admin", path, method="PATCH",
            data=json.dumps({"geometry": {"type": "Point", "coordinates": [x, y]}}),
            headers={"If-Match": api("admin", path).headers["ETag"],
                     "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["grid_code"] == grid


def test_moving_a_household_updates_grid_counts(api, db, household):
    hid, grid = household
    with db.connect() as conn:
        target, x, y = conn.execute(text(
            "SELECT code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
            "FROM grids WHERE code <> :g AND kind = 'comprehensive' ORDER BY id LIMIT 1"),
            {"g": grid}).one()
    version = api("admin", f"/collections/households/items/{hid}").headers["ETag"]
    r = api("admin", f"/collections/households/items/{hid}", method="PATCH",
            data=json.dumps({"geometry": {"type": "Point", "coordinates": [x, y]}}),
            headers={"If-Match": version, "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["grid_code"] == target
    with db.connect() as conn:
        for code in (grid, target):  # stored counts equal a brute-force count
            stored, actual = conn.execute(text(
                "SELECT g.households, (SELECT count(*) FROM households h "
                "WHERE ST_Intersects(g.geom, h.geom)) FROM grids g WHERE g.code = :c"),
                {"c": code}).one()
            assert stored == actual


def _partition_of(db, incident_id):
    with db.connect() as conn:
        return conn.execute(text("SELECT tableoid::regclass::text FROM incidents WHERE id = :i"),
                            {"i": incident_id}).scalar()


def test_edits_racing_into_a_month_without_a_partition_both_land(api, db):
    """Two officers move two incidents into the same new month at once: the month's
    partition is made once, outside both edits, and neither edit fails."""
    incident = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [112.985, 28.03]},
                "properties": {"occurred_at": "2026-03-15T10:00:00+08:00", "category": "fraud"}}
    items = []
    for _ in range(2):
        created = api("police", "/collections/incidents/items", method="POST", json=incident)
        assert created.status_code == 201, created.text
        items.append(_path(created))
    results = {}
    barrier = threading.Barrier(2)

    def move(item):
        barrier.wait(timeout=30)
        results[item] = api("police", item, method="PATCH", headers={
            "If-Match": '"1"', "Content-Type": "application/merge-patch+json"},
            data=json.dumps({"properties": {"occurred_at": "2015-02-10T09:00:00+08:00"}}))

    threads = [threading.Thread(target=move, args=(item,)) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [results[i].status_code for i in items] == [200, 200], \
        [results[i].text[:200] for i in items]
    for item in items:
        incident_id = int(item.rsplit("/", 1)[1])
        assert _partition_of(db, incident_id) == "partitions.incidents_2015_02"
        assert api("police", item, method="DELETE", headers={"If-Match": '"2"'}
                   ).status_code == 204


def test_an_incident_moves_to_the_partition_of_its_new_time(api, db):
    """Police write through the parent table (row-level security on); a new time moves
    the row into its month's partition, created for it if need be."""
    incident = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [112.985, 28.03]},
                "properties": {"occurred_at": "2026-03-15T10:00:00+08:00", "category": "fraud"}}
    created = api("police", "/collections/incidents/items", method="POST", json=incident)
    assert created.status_code == 201, created.text
    item = _path(created)
    incident_id = int(item.rsplit("/", 1)[1])
    assert _partition_of(db, incident_id) == "partitions.incidents_2026_03"
    patch = {"properties": {"occurred_at": "2016-06-30T20:00:00+00:00"}}  # 1 July in CST
    patched = api("police", item, method="PATCH", data=json.dumps(patch),
                  headers={"If-Match": '"1"', "Content-Type": "application/merge-patch+json"})
    assert patched.status_code == 200, patched.text
    assert _partition_of(db, incident_id) == "partitions.incidents_2016_07"
    got = api("police", item)
    assert got.headers["ETag"] == '"2"' and got.json()["properties"]["category"] == "fraud"
    put = api("police", item, method="PUT", json=incident, headers={"If-Match": '"2"'})
    assert put.status_code == 200 and _partition_of(db, incident_id) == \
        "partitions.incidents_2026_03"
    assert api("police", item, method="DELETE", headers={"If-Match": '"3"'}).status_code == 204
    assert _partition_of(db, incident_id) is None


def test_too_big_a_body_is_413(api, db):
    before = _state(db, "cameras")
    big = json.dumps({**CAMERA, "properties": {**CAMERA["properties"],
                                               "code": "x" * (17 * 1024 * 1024)}})
    r = api("police", "/collections/cameras/items", method="POST", data=big,
            headers={"Content-Type": "application/geo+json"})
    assert r.status_code == 413
    assert "error" in r.json()
    assert _state(db, "cameras") == before


def _sample(db, layer, city_prefix):
    """A feature of ``layer`` in the city, as GeoJSON, made new (fresh code/name)."""
    column = "code" if layer == "jurisdictions" else "jurisdiction_code"
    fields = [f.name for f in LAYERS[layer].input_fields]
    props = ", ".join(f"'{f}', t.\"{f}\"" for f in fields)
    with db.connect() as conn:
        feature = conn.execute(text(
            f"SELECT json_build_object('type', 'Feature', 'geometry', "
            f"ST_AsGeoJSON(t.geom)::json, 'properties', json_build_object({props})) "
            f"FROM \"{layer}\" t WHERE t.{column} LIKE :p "
            + ("AND t.level = 'community' " if layer == "jurisdictions" else "")
            # the border partner's own border first
            + ("ORDER BY t.border = '430100-430300' DESC, t.id " if layer == "patrol_routes"
               else "ORDER BY t.id ") + "LIMIT 1"), {"p": city_prefix + "%"}).scalar_one()
    props = feature["properties"]
    for unique in ("code",):
        if unique in props:
            props[unique] = f"{props[unique]}-T{abs(hash((layer, city_prefix))) % 10**6}"
    if layer == "jurisdictions":
        props["name"] = "测试社区"
    if layer == "grids":  # a small new grid inside an existing one (which gives it the area)
        inner = shapely.geometry.shape(feature["geometry"]).point_on_surface().buffer(0.0002, 1)
        feature["geometry"] = shapely.geometry.mapping(inner)
    return feature


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("user", list(USERS))
def test_write_matrix(api, db, keep_grids, user, layer):
    role = USERS[user]["role"]
    for city, in_scope in (("4301", True), ("4302", False)):
        if layer == "grids":  # a new grid and its deletion reshape its neighbours
            keep_grids(city)
        feature = _sample(db, layer, city)
        before = _state(db, layer)
        r = api(user, f"/collections/{layer}/items", method="POST", json=feature)
        allowed = role in LAYERS[layer].write_roles and (in_scope or role == "admin")
        if allowed:
            assert r.status_code == 201, (city, r.text)
            item = _path(r)
            # a deleted grid's area goes back to its neighbours; the answer lists them
            assert api(user, item, method="DELETE").status_code == (
                200 if layer == "grids" else 204)
            assert _state(db, layer)[0] == before[0]
        else:
            assert r.status_code == 403, (city, r.status_code, r.text)
            assert _state(db, layer) == before
