"""Border joint defence over HTTP on the small demo: the zone and crossings against
PostGIS computed independently, cover flags against checkpoints and cameras, incidents
on both sides, patrol plans (balance, routes on the road network, stored and editable by
the border partner), who may see what (API and tiles), and bad requests."""

import json

import mapbox_vector_tile
import pytest
import shapely
from sqlalchemy import text

from layers.access import border_zone_wkb
from layers.users import user_by_name

from .test_tiles import Z
from .tilemath import tile_of

pytestmark = pytest.mark.db

A, B = "430100", "430300"
BORDER_SQL = ("(SELECT ST_Intersection(ST_Boundary(a.geom), ST_Buffer(b.geom, 1e-7)) "
              "FROM jurisdictions a, jurisdictions b WHERE a.code = :a AND b.code = :b)")


def test_the_zone_and_crossings_match_postgis(api, db):
    r = api("partner", f"/api/border?a={A}&b={B}&width=1500")
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    with db.connect() as conn:
        length, zone_area = conn.execute(text(
            f"SELECT ST_Length(l::geography), ST_Area(ST_Intersection(ST_Union(a.geom, b.geom),"
            f" ST_Buffer(l::geography, 1500)::geometry)::geography) FROM {BORDER_SQL} AS t(l), "
            "jurisdictions a, jurisdictions b WHERE a.code = :a AND b.code = :b"),
            {"a": A, "b": B}).one()
        points = conn.execute(text(
            f"SELECT ST_X(p.geom), ST_Y(p.geom) FROM roads r, {BORDER_SQL} AS t(l), "
            "ST_Dump(ST_Intersection(r.geom, l)) AS p WHERE ST_Intersects(r.geom, l) "
            "AND GeometryType(p.geom) = 'POINT'"), {"a": A, "b": B}).all()
    assert body["length_m"] == pytest.approx(length, rel=0.002)
    sides = {f["properties"]["side"]: f["properties"]["area_m2"]
             for f in body["zone"]["features"]}
    assert set(sides) == {A, B}
    assert sum(sides.values()) == pytest.approx(zone_area, rel=0.01)
    ours = [shapely.geometry.shape(f["geometry"]) for f in body["crossings"]["features"]]
    assert len(ours) == len(points) > 0
    for x, y in points:  # each road/border intersection is one of ours (to a metre)
        assert min(p.distance(shapely.Point(x, y)) for p in ours) < 1e-5
    # one database, no peer: both sides are read here
    assert {code: (s["server"], s["stale"]) for code, s in body["sources"].items()} == \
        {A: ("local", False), B: ("local", False)}


def test_crossings_are_covered_exactly_when_a_checkpoint_or_camera_covers_them(api, db):
    body = api("admin", f"/api/border?a={A}&b={B}").json()
    with db.connect() as conn:
        for f in body["crossings"]["features"]:
            g = json.dumps(f["geometry"])
            posts = conn.execute(text(
                "SELECT name FROM checkpoints WHERE ST_DWithin(geom::geography, "
                "ST_GeomFromGeoJSON(:g)::geography, 50) ORDER BY id"), {"g": g}).scalars().all()
            named = [n for n in f["properties"]["covered_by"] if n in posts]
            assert named == posts
            cams = [c for c in f["properties"]["covered_by"] if c not in posts]
            for code in cams:  # a camera that covers it is online and in range
                ok = conn.execute(text(
                    "SELECT status = 'online' AND ST_Distance(geom::geography, "
                    "ST_GeomFromGeoJSON(:g)::geography) <= range_m + 1 FROM cameras "
                    "WHERE code = :c"), {"g": g, "c": code}).scalar_one()
                assert ok
            assert f["properties"]["covered"] == bool(f["properties"]["covered_by"])
    assert body["coverage"]["uncovered_crossings"] == sum(
        not f["properties"]["covered"] for f in body["crossings"]["features"])


def test_incidents_of_both_sides_are_counted_together(api, db):
    body = api("admin", f"/api/border?a={A}&b={B}&days=365").json()
    inc = body["incidents"]
    assert sum(inc["by_side"].values()) == inc["total"] == sum(inc["by_hour"]) > 0
    assert all(v > 0 for v in inc["by_side"].values())
    zone = shapely.union_all([shapely.geometry.shape(f["geometry"])
                              for f in body["zone"]["features"]])
    with db.connect() as conn:
        sql = conn.execute(text(
            "SELECT count(*) FROM incidents WHERE ST_Intersects(geom, ST_GeomFromText(:z, 4326))"
            " AND occurred_at >= now() - interval '365 days'"), {"z": zone.wkt}).scalar_one()
    assert abs(sql - inc["total"]) <= 2  # zone edges rounded to 1e-7 degrees
    assert all(f["properties"]["class"] in ("hot_95", "hot_99")
               for f in body["hot_cells"]["features"])


def test_a_patrol_plan_is_balanced_on_the_roads_and_stored_for_the_partner(api, db):
    teams = {A: 2, B: 1}
    r = api("partner", "/api/border/patrols", method="POST",
            json={"a": A, "b": B, "width": 1500, "teams": teams})
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    sectors = [f["properties"] for f in body["features"] if f["properties"]["kind"] == "sector"]
    routes = [f for f in body["features"] if f["properties"]["kind"] == "route"]
    assert [(s["city"], s["team"]) for s in sectors] == [(A, 1), (A, 2), (B, 1)]
    loads = [s["workload"] for s in sectors]
    assert max(loads) / min(loads) <= 1.25
    assert all(len(s["hours"]) == 11 and s["hours"][2:3] == ":" for s in sectors)
    assert routes
    with db.connect() as conn:
        stored = conn.execute(text(
            "SELECT id, team, jurisdiction_code FROM patrol_routes WHERE border = :k "
            "ORDER BY id"), {"k": f"{A}-{B}"}).all()
        assert sorted(r[0] for r in stored) == sorted(f["id"] for f in routes)
        for route in routes:  # on the road network (dead ends joined within 20 m)
            off = conn.execute(text(
                "SELECT ST_Length(ST_Difference(ST_GeomFromGeoJSON(:g), ST_Buffer("
                "(SELECT ST_Union(geom) FROM roads WHERE ST_DWithin(geom, "
                "ST_GeomFromGeoJSON(:g), 0.01))::geography, 1)::geometry)::geography), "
                "ST_Length(ST_GeomFromGeoJSON(:g)::geography)"),
                {"g": json.dumps(route["geometry"])}).one()
            assert off[0] <= 0.02 * off[1] + 25
    # the partner edits a route; a new plan replaces the old routes
    first = routes[0]["id"]
    patch = api("partner", f"/collections/patrol_routes/items/{first}", method="PATCH",
                data=json.dumps({"properties": {"hours": "20:00-24:00"}}),
                headers={"Content-Type": "application/merge-patch+json", "If-Match": '"1"'})
    assert patch.status_code == 200, patch.text[:300]
    again = api("partner", "/api/border/patrols", method="POST",
                json={"a": A, "b": B, "width": 1500, "teams": teams})
    assert again.status_code == 200
    with db.connect() as conn:
        ids = conn.execute(text("SELECT id FROM patrol_routes WHERE border = :k"),
                           {"k": f"{A}-{B}"}).scalars().all()
    assert first not in ids and len(ids) == len(routes)


def test_every_route_lists_the_stops_it_missed_and_why(api, db):
    r = api("partner", "/api/border/patrols", method="POST",
            json={"a": A, "b": B, "width": 1500, "teams": {A: 2, B: 1}})
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert (body["parameters"]["detour_m"], body["parameters"]["reach_m"]) == (1500, 500)
    sectors = {(f["properties"]["city"], f["properties"]["team"]): f["properties"]
               for f in body["features"] if f["properties"]["kind"] == "sector"}
    missed = []
    for f in body["features"]:
        p = f["properties"]
        assert p["stops_reached"] + len(p["unreached"]) == p["stops"]
        assert p["unreached"] == sectors[p["city"], p["team"]]["unreached"]
        if p["kind"] == "sector":
            missed += p["unreached"]
    assert missed, "on the demo a sector ends far from any road"
    kinds = {"start": "责任段起点", "end": "责任段终点", "crossing": "道路过境点",
             "hot_cell": "热点格网中心"}
    with db.connect() as conn:
        for stop in missed:
            assert stop["why"].startswith(kinds[stop["kind"]] + "：")
            assert stop["reason"] in ("no_road", "not_joined", "no_roads")
            if stop["reason"] != "no_road":
                continue
            metres = int(stop["distance_m"] + 0.5)
            assert f"{metres} 米外" in stop["why"] and "500 米" in stop["why"]
            nearest = conn.execute(text(
                "SELECT min(ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), "
                "4326)::geography)) FROM roads"), {"x": stop["lon"], "y": stop["lat"]}
            ).scalar_one()
            assert nearest > 500 and stop["distance_m"] == pytest.approx(nearest, rel=0.003)


def test_who_may_see_a_border(api):
    assert api("police", f"/api/border?a={A}&b={B}").status_code == 403  # B is not theirs
    assert api("partner", f"/api/border?a={A}&b=430200").status_code == 403
    wide = api("partner", f"/api/border?a={A}&b={B}&width=5000")
    assert wide.status_code == 403 and "2000 m" in wide.json()["error"]
    assert api("partner", f"/api/border?a={B}&b={A}").status_code == 200
    assert api(None, f"/api/border?a={A}&b={B}").status_code == 401
    # analyses of a whole city would show the partner what lies outside the zone
    for path in (f"/api/coverage?jurisdiction={A}", f"/api/hotspots?jurisdiction={A}",
                 f"/api/safety-index?jurisdiction={A}", f"/api/coverage/views?jurisdiction={B}"):
        r = api("partner", path)
        assert r.status_code == 403 and "border partner" in r.json()["error"], path


def test_the_partner_sees_both_cities_only_inside_the_zone_in_tiles(api, db):
    with db.connect() as conn:
        near, far = (conn.execute(text(
            f"SELECT ST_X(i.geom), ST_Y(i.geom) FROM incidents i, {BORDER_SQL} AS t(l) "
            "WHERE i.jurisdiction_code LIKE '4303%' ORDER BY ST_Distance(i.geom, l) "
            + order + " LIMIT 1"), {"a": A, "b": B}).one() for order in ("ASC", "DESC"))
    for (lon, lat), expect in ((near, True), (far, False)):
        x, y = tile_of(lon, lat, Z)
        partner = mapbox_vector_tile.decode(api("partner", f"/tiles/incidents/{Z}/{x}/{y}.mvt")
                                            .content)
        admin = mapbox_vector_tile.decode(api("admin", f"/tiles/incidents/{Z}/{x}/{y}.mvt")
                                          .content)
        mine = len(partner.get("incidents", {"features": []})["features"])
        assert len(admin["incidents"]["features"]) > 0
        assert (mine > 0) == expect
        assert mine <= len(admin["incidents"]["features"])


def _postgis_neighbours(db, codes: list[str] | None) -> set[tuple[str, str]]:
    """Cities or districts whose boundaries run together for more than 20 m (PostGIS)."""
    with db.connect() as conn:
        return set(conn.execute(text(
            "SELECT a.code, b.code FROM jurisdictions a JOIN jurisdictions b "
            "ON a.level = b.level AND a.code < b.code WHERE a.level IN ('city', 'district') "
            "AND (CAST(:c AS text[]) IS NULL OR (a.code = ANY(:c) AND b.code = ANY(:c))) "
            "AND ST_Length(ST_Intersection(ST_Boundary(a.geom), "
            "ST_Buffer(b.geom::geography, 5)::geometry)::geography) > 20"),
            {"c": codes}).all())


@pytest.mark.parametrize(("user", "codes"), [
    ("admin", None), ("police", ["430100", "430102", "430103"]),
    ("viewer", ["430100", "430102", "430103"]), ("partner", [A, B])])
def test_the_pairs_a_user_may_open_are_neighbours_in_scope(api, db, user, codes):
    from layers.border import neighbour_pairs
    from layers.users import user_by_name

    with db.connect() as conn:
        pairs = neighbour_pairs(conn, user_by_name(conn, user)[0])
    assert pairs, user
    assert {(p.a, p.b) for p in pairs} == _postgis_neighbours(db, codes)
    assert [p.level for p in pairs] == sorted((p.level for p in pairs),
                                              key=("city", "district").index)
    for p in pairs[:3]:  # each opens without a refusal
        r = api(user, f"/api/border?a={p.a}&b={p.b}&width=500")
        assert r.status_code == 200, r.text[:300]


def _listed_cameras(body: dict) -> dict[str, dict]:
    cameras = body["cameras"]["features"]
    listed = {f["properties"]["code"]: f for f in cameras}
    assert len(listed) == len(cameras)
    return listed


def test_the_cameras_that_see_into_the_zone_are_listed(api, db):
    body = api("admin", f"/api/border?a={A}&b={B}").json()
    listed = _listed_cameras(body)
    assert listed, "the demo border has cameras"
    zone = shapely.union_all([shapely.geometry.shape(f["geometry"])
                              for f in body["zone"]["features"]])
    with db.connect() as conn:
        stored = {r[0]: r[1:] for r in conn.execute(text(
            "SELECT code, ST_X(geom), ST_Y(geom), status, bearing, fov, range_m, "
            "ST_DWithin(geom::geography, ST_GeomFromText(:z, 4326)::geography, range_m) "
            "FROM cameras"), {"z": zone.wkt})}
        sides = {code: conn.execute(text(
            "SELECT code FROM jurisdictions WHERE code IN (:a, :b) AND ST_DWithin("
            "geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography, 5)"),
            {"a": A, "b": B, "x": stored[code][0], "y": stored[code][1]}).scalars().all()
            for code in listed}
    seeing = {code for code, row in stored.items() if row[6]}
    # every camera within its range of the zone (to the zone's 1e-7 degree rounding)
    assert len(seeing ^ set(listed)) <= 1, seeing ^ set(listed)
    for code, f in listed.items():
        lon, lat, status, bearing, fov, range_m, _near = stored[code]
        p = f["properties"]
        assert f["geometry"]["coordinates"] == [lon, lat]
        assert (p["status"], p["bearing"], p["fov"], p["range_m"], p["server"]) == \
            (status, bearing, fov, range_m, "local")
        if sides[code]:  # the side it stands on (either, within 5 m of the line)
            assert p["side"] in sides[code], code
        else:  # beyond both: the city it belongs to
            assert p["side"] not in (A, B) and len(p["side"]) == 6, code
    assert {f["properties"]["side"] for f in listed.values()} >= {A, B}
    # the partner (scope: the zone) sees only the cameras standing in the zone
    mine = _listed_cameras(api("partner", f"/api/border?a={A}&b={B}").json())
    with db.connect() as conn:
        partner = user_by_name(conn, "partner")[0]
        scope = shapely.from_wkb(border_zone_wkb(conn, partner.jurisdiction, partner.partner))
    assert mine and set(mine) <= set(listed)
    for code in listed:
        lon, lat = stored[code][:2]
        assert (code in mine) == scope.intersects(shapely.Point(lon, lat)), code
    assert set(mine) < set(listed), "a camera outside the zone sees into it"


CAMERA = ("INSERT INTO cameras (geom, code, bearing, fov, range_m, status) VALUES "
          "(ST_SetSRID(ST_MakePoint(:x, :y), 4326), 'BORDER-CAM-TEST', 0, 360, 60, 'online')")


@pytest.mark.parametrize("user", ["admin", "partner"])
def test_every_camera_a_crossing_is_covered_by_is_on_the_map(api, db, user):
    before = api(user, f"/api/border?a={A}&b={B}").json()
    crossing = next(f for f in before["crossings"]["features"]
                    if not f["properties"]["covered"])
    x, y = crossing["geometry"]["coordinates"]
    with db.begin() as conn:
        conn.execute(text(CAMERA), {"x": x + 0.0002, "y": y})
        posts = set(conn.execute(text("SELECT name FROM checkpoints")).scalars())
    try:
        body = api(user, f"/api/border?a={A}&b={B}").json()  # the kept answer is not given
        listed = _listed_cameras(body)
        by_camera = 0
        for f in body["crossings"]["features"]:
            for code in f["properties"]["covered_by"]:
                assert code in listed or code in posts, code
                by_camera += code in listed
        assert by_camera > 0
        camera = listed["BORDER-CAM-TEST"]
        assert camera["geometry"]["coordinates"] == [x + 0.0002, y]
        assert camera["properties"]["side"] == crossing["properties"]["side"] or \
            camera["properties"]["side"] in (A, B)
    finally:
        with db.begin() as conn:
            conn.execute(text("DELETE FROM cameras WHERE code = 'BORDER-CAM-TEST'"))
    after = api(user, f"/api/border?a={A}&b={B}").json()
    assert "BORDER-CAM-TEST" not in _listed_cameras(after)
    assert after["cameras"] == before["cameras"]
