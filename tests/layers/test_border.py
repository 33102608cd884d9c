"""Patrol plans over stored layers on a hand-built border (inside a transaction that is
rolled back): routes use the roads beyond the zone up to its width again, and say which
stops they miss and why. The other side held by another server (a loopback one playing
it): its road, camera and incident join ours, and its kept copy when it is gone."""

import datetime as dt
import http.server
import json
import threading

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from geo.crs import metric_crs
from layers.border import BorderQuery, border_view, patrol_plan
from layers.peers import peers_dir
from layers.users import user_by_name

pytestmark = pytest.mark.db

LON, LAT = 100.5, 30.0  # far from the demo: its roads play no part
A, B = "990100", "990200"
# Metres east and north of (LON, LAT): the border runs north along x = 0 for 3 km, A to
# its west. Three roads cross it; the first two are joined 2300 m west of it (1100 m
# beyond a 1200 m zone), the third 2500 m west (1300 m beyond: farther than the zone's
# width again).
CITIES = {A: shapely.box(-6000, 0, 0, 3000), B: shapely.box(0, 0, 6000, 3000)}
ROADS = {
    "过境一路": [(-2300, 400), (800, 400)],
    "过境二路": [(-2500, 1500), (800, 1500)],
    "过境三路": [(-2500, 2600), (800, 2600)],
    "近联络路": [(-2300, 400), (-2300, 1500)],
    "远联络路": [(-2500, 1500), (-2500, 2600)],
}


@pytest.fixture
def border(db, demo_small):
    """A connection in a transaction holding the two cities and their roads; the admin."""
    crs = metric_crs(LON, LAT)
    x0, y0 = Transformer.from_crs(4326, crs, always_xy=True).transform(LON, LAT)
    back = Transformer.from_crs(crs, 4326, always_xy=True)

    def lonlat(geom: shapely.Geometry) -> str:
        return shapely.transform(geom, lambda xy: np.column_stack(
            back.transform(xy[:, 0] + x0, xy[:, 1] + y0))).wkt

    with db.connect() as conn:
        outer = conn.begin()
        for code, shape in CITIES.items():
            conn.execute(text(
                "INSERT INTO jurisdictions (geom, code, name, level) VALUES "
                "(ST_Multi(ST_GeomFromText(:g, 4326)), :c, :n, 'city')"),
                {"g": lonlat(shape), "c": code, "n": f"测试{code}"})
        for name, coords in ROADS.items():
            conn.execute(text(
                "INSERT INTO roads (geom, name, class) VALUES (ST_GeomFromText(:g, 4326), :n, "
                "'collector')"), {"g": lonlat(shapely.LineString(coords)), "n": name})
        yield conn, user_by_name(conn, "admin")[0], lonlat
        outer.rollback()


def test_crossing_roads_joined_beyond_the_zone_give_a_route_within_the_detour(border):
    conn, admin, lonlat = border
    body = patrol_plan(conn, admin, BorderQuery(A, B, width=1200), {A: 1, B: 0})
    (sector,) = [f["properties"] for f in body["features"] if f["properties"]["kind"] == "sector"]
    routes = [f for f in body["features"] if f["properties"]["kind"] == "route"]
    assert len(routes) == 1, "the crossing roads join only outside the zone"
    route = routes[0]["properties"]
    # sector start (0, 0), crossings y = 400 and 1500 through x = -2300; sector end and
    # the crossing at y = 2600 only join through the far road
    assert (route["stops"], route["stops_reached"]) == (5, 3)
    assert route["length_m"] == pytest.approx(2300 + 1100 + 2300, rel=1e-3)
    missed = route["unreached"]
    assert [(m["kind"], m["reason"]) for m in missed] == [("crossing", "not_joined"),
                                                          ("end", "not_joined")]
    assert sector["unreached"] == missed
    crossing = shapely.from_wkt(lonlat(shapely.Point(0, 2600)))
    assert (missed[0]["lon"], missed[0]["lat"]) == pytest.approx((crossing.x, crossing.y),
                                                                 abs=1e-6)
    assert missed[0]["distance_m"] == pytest.approx(0, abs=0.5)
    assert missed[1]["distance_m"] == pytest.approx(400, abs=1)
    far, kept = (conn.execute(text(
        "SELECT ST_Distance(r.geom::geography, ST_GeomFromGeoJSON(:g)::geography) "
        "FROM roads r WHERE r.name = :n"),
        {"g": json.dumps(routes[0]["geometry"]), "n": n}).scalar_one()
        for n in ("远联络路", "近联络路"))
    assert far > 150 and kept < 0.5  # the far road is not used, the near one is
    stored = conn.execute(text("SELECT count(*) FROM patrol_routes WHERE border = :k"),
                          {"k": f"{A}-{B}"}).scalar_one()
    assert stored == 1
    assert body["parameters"]["detour_m"] == 1200


class FakePeer(http.server.ThreadingHTTPServer):
    """A loopback server playing the other city's safegrid: ``features`` per collection."""

    daemon_threads = True

    def __init__(self, features: dict[str, list[dict]]):
        super().__init__(("127.0.0.1", 0), _PeerHandler)
        self.features = features
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _PeerHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        layer = self.path.split("/")[2]
        body = json.dumps({"type": "FeatureCollection", "links": [],
                           "features": self.server.features.get(layer, [])}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/geo+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_the_other_side_read_from_a_peer_joins_ours(border, db, tmp_path, monkeypatch):
    """B held by another server: its road crossing the border, its camera over that
    crossing, its incident and its boundary join ours; when it is gone, the kept copy."""
    conn, admin, lonlat = border

    def feature(i: int, geom: shapely.Geometry, **properties) -> dict:
        return {"type": "Feature", "id": i, "properties": properties,
                "geometry": shapely.geometry.mapping(shapely.from_wkt(lonlat(geom)))}

    held = {
        "jurisdictions": [feature(1, CITIES[B], code=B, name="对端市", level="city")],
        "roads": [feature(5, shapely.LineString([(-300, 2000), (1500, 2000)]),
                          name="对端过境路", **{"class": "arterial"})],
        "cameras": [feature(9, shapely.Point(30, 2000), code="XT-CAM-1", bearing=0.0,
                            fov=360.0, range_m=80.0, status="online"),
                    # what a camera cannot be is not looked through (nor costs a view)
                    feature(10, shapely.Point(20, 2000), code="XT-BAD-1", bearing=0.0,
                            fov="wide", range_m=80.0, status="online"),
                    feature(11, shapely.Point(20, 2000), code="XT-BAD-2", bearing=0.0,
                            fov=360.0, range_m=1e9, status="online")],
        "incidents": [feature(3, shapely.Point(500, 1000), category="theft", severity=2,
                              occurred_at=dt.datetime.now(dt.UTC).isoformat())],
    }
    before = border_view(conn, admin, BorderQuery(A, B))
    fake = FakePeer(held)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    monkeypatch.setenv("SAFEGRID_HOME", str(tmp_path))
    peers_dir().mkdir(mode=0o700)
    (peers_dir() / "fake.token").write_text("sg_fake\n")
    with db.begin() as other:
        other.execute(text("INSERT INTO peers (name, url, a, b, added_by) VALUES "
                           "('fake', :u, :a, :b, 'test')"), {"u": fake.url, "a": A, "b": B})
    try:
        body = border_view(conn, admin, BorderQuery(A, B))
        fake.shutdown()
        fake.server_close()
        down = border_view(conn, admin, BorderQuery(A, B))
    finally:
        with db.begin() as other:
            other.execute(text("DELETE FROM peers WHERE name = 'fake'"))
    crossings = {f["properties"]["road"]: f["properties"] for f in
                 body["crossings"]["features"]}
    assert len(crossings) == len(before["crossings"]["features"]) + 1
    assert crossings["对端过境路"]["covered_by"] == ["XT-CAM-1"]
    assert crossings["对端过境路"]["road_id"] == 5
    assert body["incidents"]["by_side"] == {A: 0, B: 1}
    assert body["sources"][A]["server"] == "local"
    assert body["sources"][B] | {"as_of": None} == {
        "server": "peer", "peer": "fake", "url": fake.url, "as_of": None, "stale": False,
        "error": None, "incidents": "points"}
    assert before["sources"][B]["server"] == "local"
    # its camera is listed with the server it came from; what cannot be a camera is not
    cameras = {f["properties"]["code"]: f for f in body["cameras"]["features"]}
    assert cameras["XT-CAM-1"]["id"] == "fake:9"
    assert cameras["XT-CAM-1"]["properties"] == {
        "code": "XT-CAM-1", "status": "online", "bearing": 0.0, "fov": 360.0,
        "range_m": 80.0, "side": B, "server": "fake"}
    assert shapely.Point(cameras["XT-CAM-1"]["geometry"]["coordinates"]).equals_exact(
        shapely.from_wkt(lonlat(shapely.Point(30, 2000))), 1e-7)
    assert not {"XT-BAD-1", "XT-BAD-2"} & set(cameras)
    assert {f["properties"]["server"] for f in before["cameras"]["features"]} <= {"local"}
    assert set(cameras) - {"XT-CAM-1"} == {f["properties"]["code"]
                                           for f in before["cameras"]["features"]}
    assert down["cameras"] == body["cameras"]
    assert down["crossings"] == body["crossings"] and down["incidents"] == body["incidents"]
    assert down["sources"][B]["stale"] and "could not be reached" in down["sources"][B]["error"]
    assert down["sources"][B]["as_of"] == body["sources"][B]["as_of"]
