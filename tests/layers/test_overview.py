"""What the overview map reads (layers.overview) on the small demo, against references
worked out here: shapely on the stored shapes, numpy on the stored points, the
jurisdiction tree walked in Python. Each test runs in a transaction that is rolled back."""

import math
from collections import Counter

import numpy as np
import pytest
import shapely
from sqlalchemy import text

from layers.access import border_zone_wkb, read_scope
from layers.errors import BadRequest, Forbidden
from layers.overview import (
    HEAT_CELL,
    SOURCES,
    cities,
    city_borders,
    city_count,
    extent,
    feature_counts,
    incident_count,
    view_layer,
)
from layers.registry import LAYERS
from layers.users import User

pytestmark = pytest.mark.db

CITY = "430100"
WORLD = (-180.0, -90.0, 180.0, 90.0)
ADMIN = User(0, "admin", "admin", None, None)
POLICE = User(0, "police", "police", CITY, None)


@pytest.fixture
def conn(db, demo_small):
    """A connection whose transaction (and row-level security settings) is rolled back."""
    with db.connect() as conn:
        yield conn
        conn.rollback()


def _shapes(conn, sql: str, **params) -> list[tuple]:
    """Rows of ``sql`` whose last column is WKB, that column as a shapely geometry."""
    return [(*r[:-1], shapely.from_wkb(bytes(r[-1])))
            for r in conn.execute(text(sql), params).all()]


def _city(conn, code: str = CITY) -> shapely.Geometry:
    return _shapes(conn, "SELECT ST_AsBinary(geom) FROM jurisdictions WHERE code = :c",
                   c=code)[0][0]


def _tree(conn) -> dict[str, str | None]:
    return dict(conn.execute(text("SELECT code, parent_code FROM jurisdictions")).all())


def _under(tree: dict[str, str | None], code: str) -> set[str]:
    """``code`` and every jurisdiction below it, by walking up from each."""
    out = set()
    for child in tree:
        node = child
        while node is not None and node != code:
            node = tree[node]
        if node == code:
            out.add(child)
    return out


def _meets(geom: shapely.Geometry, bbox: tuple) -> bool:
    """Whether ``geom``'s bounding box meets ``bbox`` (PostGIS ``&&``)."""
    x0, y0, x1, y1 = geom.bounds
    return x0 <= bbox[2] and x1 >= bbox[0] and y0 <= bbox[3] and y1 >= bbox[1]


def _detail(zoom: int) -> tuple[float, int]:
    pixel = 360.0 / (256 * 2**zoom)
    return (pixel / 2 if zoom < 16 else 0.0), max(4, min(7, math.ceil(-math.log10(pixel)) + 1))


def test_features_are_the_citys_that_meet_the_box(conn):
    city = _city(conn)
    w, s, e, n = city.bounds
    half = (w, s, (w + e) / 2, n)
    roads = _shapes(conn, "SELECT id, name, class, ST_AsBinary(geom) FROM roads")
    in_city = {r[0] for r in roads if r[-1].intersects(city)}
    expected = {r[0] for r in roads if r[0] in in_city and _meets(r[-1], half)}
    assert 0 < len(expected) < len(in_city)
    data = view_layer(conn, ADMIN, CITY, "roads", half, 17)
    assert data["type"] == "FeatureCollection"
    assert {f["id"] for f in data["features"]} == expected
    by_id = {r[0]: r for r in roads}
    for f in data["features"]:
        assert f["properties"] == {"name": by_id[f["id"]][1], "class": by_id[f["id"]][2]}
    assert view_layer(conn, ADMIN, CITY, "roads", (0.0, 0.0, 1.0, 1.0), 12)["features"] == []


@pytest.mark.parametrize("zoom", [9, 12])
def test_zoomed_out_lines_are_simplified_to_half_a_pixel(conn, zoom):
    tolerance, digits = _detail(zoom)
    roads = dict(_shapes(conn, "SELECT id, ST_AsBinary(geom) FROM roads"))
    served = view_layer(conn, ADMIN, CITY, "roads", WORLD, zoom)["features"]
    assert served
    fewer = 0
    for f in served:
        original = roads[f["id"]]
        reference = shapely.simplify(original, tolerance, preserve_topology=True)
        got = shapely.geometry.shape(f["geometry"])
        assert got.geom_type == reference.geom_type
        assert np.allclose(shapely.get_coordinates(got), shapely.get_coordinates(reference),
                           rtol=0, atol=0.51 * 10.0**-digits)
        assert original.hausdorff_distance(got) <= tolerance + 10.0**-digits
        fewer += shapely.get_num_coordinates(got) < shapely.get_num_coordinates(original)
    assert fewer > 0  # the zoom took vertices away


def test_points_and_zoomed_in_lines_keep_every_vertex(conn):
    roads = dict(_shapes(conn, "SELECT id, ST_AsBinary(geom) FROM roads"))
    _, digits = _detail(16)  # from zoom 16 on, no simplification, 6 decimals (0.1 m)
    assert digits == 6
    for f in view_layer(conn, ADMIN, CITY, "roads", WORLD, 16)["features"]:
        got = shapely.get_coordinates(shapely.geometry.shape(f["geometry"]))
        stored = shapely.get_coordinates(roads[f["id"]])
        assert got.shape == stored.shape
        assert np.allclose(got, stored, rtol=0, atol=0.51e-6)
    cameras = dict(_shapes(conn, "SELECT id, ST_AsBinary(geom) FROM cameras"))
    served = view_layer(conn, ADMIN, CITY, "cameras", WORLD, 3)["features"]
    assert served
    for f in served:  # at zoom 3 four decimals (about 10 m), never moved more than that
        x, y = f["geometry"]["coordinates"]
        assert abs(x - cameras[f["id"]].x) <= 0.51e-4 and abs(y - cameras[f["id"]].y) <= 0.51e-4


def test_features_keep_to_the_users_scope(conn):
    tree = _tree(conn)
    city = _city(conn)
    grids = _shapes(conn, "SELECT id, jurisdiction_code, ST_AsBinary(geom) FROM grids")
    district = User(0, "v", "viewer", "430102", None)
    under = _under(tree, "430102")
    expected = {g[0] for g in grids if g[1] in under and g[-1].intersects(city)}
    served = view_layer(conn, district, CITY, "grids", WORLD, 12)["features"]
    assert expected and {f["id"] for f in served} == expected
    assert len(expected) < sum(g[-1].intersects(city) for g in grids)  # not the whole city
    shapes = {g[0]: g[-1] for g in grids}
    for f in served:  # the label point lies in the grid
        p = f["properties"]
        assert shapes[f["id"]].intersects(shapely.Point(p["_lng"], p["_lat"]))
        assert set(p) == {"code", "name", "kind", "households", "population", "_lat", "_lng"}
    # a border partner sees only what meets the border zone
    partner = User(0, "p", "border_partner", CITY, "430300")
    zone = shapely.from_wkb(border_zone_wkb(conn, CITY, "430300"))
    roads = _shapes(conn, "SELECT id, ST_AsBinary(geom) FROM roads")
    expected = {r[0] for r in roads if r[-1].intersects(zone) and r[-1].intersects(city)}
    served = view_layer(conn, partner, CITY, "roads", WORLD, 12)["features"]
    assert expected and {f["id"] for f in served} == expected
    with pytest.raises(Forbidden, match="incidents"):
        view_layer(conn, district, CITY, "heat", WORLD, 12)
    with pytest.raises(BadRequest, match="unknown overview layer 'households'"):
        view_layer(conn, ADMIN, CITY, "households", WORLD, 12)


@pytest.mark.parametrize("zoom", [10, 14])
def test_heat_counts_incidents_per_cell(conn, zoom):
    city = _city(conn)
    w, s, e, n = city.bounds
    box = (w, s, (w + e) / 2, (s + n) / 2)
    cell = max(HEAT_CELL, 360.0 / (256 * 2**zoom))
    points = [g for _, g in _shapes(conn, "SELECT id, ST_AsBinary(geom) FROM incidents")
              if g.intersects(city) and _meets(g, box)]
    xy = shapely.get_coordinates(points)
    counts = Counter(zip(np.rint(xy[:, 1] / cell) * cell, np.rint(xy[:, 0] / cell) * cell,
                         strict=True))
    top = max(counts.values())
    expected = {(round(lat, 6), round(lng, 6)): round(k / top, 4)
                for (lat, lng), k in counts.items()}
    served = view_layer(conn, POLICE, CITY, "heat", box, zoom)["points"]
    assert len(served) == len(expected) > 1
    assert {(lat, lng): weight for lat, lng, weight in served} == expected


def test_counts_are_those_of_the_city_in_scope(conn):
    city = _city(conn)
    tree = _tree(conn)
    scope_codes = _under(tree, "430102")
    district = User(0, "v", "viewer", "430102", None)
    areas = _shapes(conn, "SELECT category, jurisdiction_code, ST_AsBinary(geom) FROM "
                          "key_areas")
    expected = Counter(a[0] for a in areas if a[1] in scope_codes and a[-1].intersects(city))
    scope = read_scope(conn, district, LAYERS["key_areas"])
    assert feature_counts(conn, SOURCES["key_areas"], CITY, scope) == dict(expected)
    communities = _shapes(conn, "SELECT code, level, ST_AsBinary(geom) FROM jurisdictions")
    expected = sum(c[1] in ("community", "village") and c[-1].intersects(city)
                   for c in communities)
    scope = read_scope(conn, ADMIN, LAYERS["jurisdictions"])
    assert feature_counts(conn, SOURCES["communities"], CITY, scope) == {"": expected}
    incidents = _shapes(conn, "SELECT jurisdiction_code, ST_AsBinary(geom) FROM incidents")
    police = User(0, "p", "police", "430102", None)
    scope = read_scope(conn, police, LAYERS["incidents"])
    expected = sum(i[0] in scope_codes and i[-1].intersects(city) for i in incidents)
    assert 0 < expected < len(incidents)
    assert incident_count(conn, CITY, scope) == expected
    assert incident_count(conn, CITY, scope) == expected  # kept: the same answer again
    assert city_count(conn) == sum(c[1] == "city" for c in communities) == 3


def test_cities_a_user_may_pick(conn):
    tree = _tree(conn)
    all_cities = sorted(c for c in tree if _level(conn, c) == "city")

    def city_of(code: str) -> str:
        while _level(conn, code) != "city":
            code = tree[code]
        return code

    assert [c.code for c in cities(conn, ADMIN)] == all_cities
    assert len(all_cities) == 3
    names = dict(conn.execute(text("SELECT code, name FROM jurisdictions")).all())
    for user in (User(0, "v", "viewer", "430302001001", None),
                 User(0, "v", "viewer", "430202", None),
                 User(0, "p", "border_partner", CITY, "430300")):
        own = [user.jurisdiction] + ([user.partner] if user.partner else [])
        found = cities(conn, user)
        assert [c.code for c in found] == sorted({city_of(code) for code in own})
        assert all(c.name == names[c.code] for c in found)


def _level(conn, code: str) -> str:
    return conn.execute(text("SELECT level FROM jurisdictions WHERE code = :c"),
                        {"c": code}).scalar_one()


def test_extent_holds_the_jurisdictions_together(conn):
    shapes = [_city(conn, CITY), _city(conn, "430300")]
    x0, y0, x1, y1 = shapely.union_all(shapes).bounds
    (south, west), (north, east) = extent(conn, [CITY, "430300"])
    # never inside the shapes' own box (PostGIS may round its boxes outwards)
    assert south <= y0 and west <= x0 and north >= y1 and east >= x1
    assert max(y0 - south, x0 - west, north - y1, east - x1) < 1e-5
    assert extent(conn, ["no-such-code"]) is None


def test_city_borders_are_the_outlines_of_the_cities_in_the_box(conn):
    outlines = _shapes(conn, "SELECT code, ST_AsBinary(geom) FROM jurisdictions "
                             "WHERE level = 'city'")
    city = _city(conn)
    w, s, e, n = city.bounds
    box = (w, s, w + (e - w) / 10, s + (n - s) / 10)
    for bbox in (WORLD, box):
        data = city_borders(conn, bbox, 12)
        assert sorted(f["properties"]["code"] for f in data["features"]) == sorted(
            c for c, g in outlines if _meets(g, bbox))
    tolerance, _ = _detail(12)
    data = {f["properties"]["code"]: f for f in city_borders(conn, WORLD, 12)["features"]}
    for code, geom in outlines:
        line = shapely.geometry.shape(data[code]["geometry"])
        assert line.geom_type in ("LineString", "MultiLineString")
        assert line.hausdorff_distance(geom.boundary) <= tolerance + 1e-5
