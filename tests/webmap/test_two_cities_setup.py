"""The two-server fixture itself: each server holds its own city only, and the token a
city's server presents to the other sees only the border zone there."""

import pytest
import requests
import shapely
from sqlalchemy import create_engine, text

from layers.access import border_zone_wkb

from . import twocities
from .twocities import A, B

two_cities = twocities.two_cities

pytestmark = pytest.mark.db


def _features(city, user, layer, **params):
    r = city.get(user, f"/collections/{layer}/items", params={"limit": 10000, **params})
    assert r.status_code == 200, r.text
    return r.json()["features"]


def test_each_server_holds_its_own_city(two_cities):
    print(f"two cities set up in {two_cities.setup_seconds:.1f} s: {two_cities.steps}")
    for city, prefix, others in ((two_cities.a, "4301", {"430200", B}),
                                 (two_cities.b, "4303", {"430200", A})):
        for layer in ("cameras", "roads", "incidents", "households"):
            codes = {f["properties"]["jurisdiction_code"]
                     for f in _features(city, "admin", layer)}
            assert codes and all(c.startswith(prefix) for c in codes), (city.code, layer)
        juris = _features(city, "admin", "jurisdictions")
        outside = {f["properties"]["code"] for f in juris
                   if not f["properties"]["code"].startswith(prefix)}
        assert outside == others
        # a token of one installation means nothing to the other
        other = two_cities.b if city is two_cities.a else two_cities.a
        r = other.get("admin", "/collections/cameras/items",
                      headers={"Authorization": f"Bearer {city.tokens['admin']}"})
        assert r.status_code == 401
    listed = two_cities.a.cli("peers", "list")
    assert listed.returncode == 0 and "xiangtan" in listed.stdout
    assert two_cities.b.url in listed.stdout and two_cities.b.tokens["peer"] not in listed.stdout


def test_the_peer_token_sees_only_the_zone(two_cities):
    b = two_cities.b
    engine = create_engine(b.db_url)
    with engine.connect() as conn:
        zone = shapely.from_wkb(border_zone_wkb(conn, B, A))
        total = conn.execute(text("SELECT count(*) FROM cameras")).scalar_one()
    engine.dispose()
    for layer in ("cameras", "roads", "checkpoints", "key_areas"):
        seen = _features(b, "peer", layer)
        assert seen, layer
        for f in seen:
            assert shapely.geometry.shape(f["geometry"]).intersects(zone.buffer(1e-9)), layer
    cameras = _features(b, "peer", "cameras")
    assert 0 < len(cameras) < total
    # exactly the cameras of the zone, as the database sees them
    inside = [f for f in _features(b, "admin", "cameras", bbox=",".join(map(str, zone.bounds)))
              if shapely.geometry.shape(f["geometry"]).intersects(zone)]
    assert sorted(f["id"] for f in cameras) == sorted(f["id"] for f in inside)


def test_b_stops_and_comes_back_on_the_same_url(two_cities):
    url = two_cities.b.url
    two_cities.stop_b()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/healthz", timeout=2)
    two_cities.start_b()
    assert two_cities.b.url == url
    assert two_cities.b.get("peer", "/collections/cameras/items").status_code == 200
