"""OGC API - Features over real HTTP: conformance, paging, bbox, datetime, filters, crs."""

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from layers import LAYERS
from layers.store import read_features
from webmap.params import MAX_LIMIT, parse_limit

pytestmark = pytest.mark.db

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"


def test_landing_conformance_and_openapi_are_public(api):
    landing = api(None, "/", headers={"Accept": "application/json"})
    assert landing.status_code == 200
    rels = {link["rel"] for link in landing.json()["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    classes = api(None, "/conformance").json()["conformsTo"]
    for part in ("ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/geojson",
                 "ogcapi-features-1/1.0/conf/oas30", "ogcapi-features-2/1.0/conf/crs"):
        assert any(c.endswith(part) for c in classes), part
    doc = api(None, "/openapi").json()
    assert doc["openapi"].startswith("3.0")
    for name in LAYERS:
        assert f"/collections/{name}/items" in doc["paths"]


def test_the_openapi_document_is_valid_openapi_3(api):
    from openapi_spec_validator import validate

    doc = api(None, "/openapi").json()
    validate(doc)  # raises on any schema error
    assert {"get", "put", "patch", "delete"} <= set(doc["paths"]["/collections/grids/items/"
                                                                "{featureId}"])
    assert "/tiles/grids/{z}/{x}/{y}.mvt" in doc["paths"]


def test_every_api_route_is_in_the_openapi_document(api, db_url):
    import re

    from webmap.app import create_app

    doc = api(None, "/openapi").json()
    shapes = {re.sub(r"\{[^}]+\}", "{}", path): set(ops) for path, ops in doc["paths"].items()}
    for rule in create_app({"DATABASE_URL": db_url}).url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        shape = re.sub(r"<[^>]+>", "{}", rule.rule)
        assert shape in shapes, rule.rule
        assert {m.lower() for m in rule.methods} - {"head", "options"} <= shapes[shape]


def test_a_browser_at_the_root_is_sent_to_the_map(api):
    r = api(None, "/", headers={"Accept": "text/html"}, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].endswith("/map")


def test_everything_else_needs_credentials(api, server):
    for path in ("/collections", "/collections/roads/items", "/collections/roads"):
        r = api(None, path)
        assert r.status_code == 401, path
        assert "authentication required" in r.json()["error"]
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    bad = api(None, "/collections", headers={"Authorization": "Bearer sg_not-a-token"})
    assert bad.status_code == 401 and "not valid" in bad.json()["error"]


def test_collections_list_what_the_role_may_read(api):
    admin = {c["id"] for c in api("admin", "/collections").json()["collections"]}
    assert admin == set(LAYERS)
    planner = {c["id"] for c in api("planner", "/collections").json()["collections"]}
    assert planner == set(LAYERS) - {"incidents", "households"}
    incidents = api("admin", "/collections/incidents").json()
    assert incidents["extent"]["temporal"]["interval"][0][0].startswith("2025-10-31")
    x0, y0, x1, y1 = incidents["extent"]["spatial"]["bbox"][0]
    assert 112 < x0 < x1 < 114 and 27 < y0 < y1 < 29


def _path(href: str) -> str:
    """The path and query of an absolute link."""
    return "/" + href.split("/", 3)[3]


def _all_pages(api, user, path, **params):
    ids, pages, url = [], 0, path
    r = api(user, url, params=params)
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        ids += [f["id"] for f in body["features"]]
        pages += 1
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        if not nxt:
            return ids, pages, body
        r = api(user, _path(nxt[0]))


def test_paging_walks_every_feature_once(api, db, demo_small):
    ids, pages, _ = _all_pages(api, "admin", "/collections/incidents/items", limit=1000)
    assert len(ids) == len(set(ids)) == demo_small["incidents"]
    assert pages == -(-demo_small["incidents"] // 1000)
    assert ids == sorted(ids)


def test_prev_link_returns_the_previous_page(api):
    first = api("admin", "/collections/cameras/items", params={"limit": 50}).json()
    nxt = next(link["href"] for link in first["links"] if link["rel"] == "next")
    second = api("admin", _path(nxt)).json()
    prev = next(link["href"] for link in second["links"] if link["rel"] == "prev")
    again = api("admin", _path(prev)).json()
    assert [f["id"] for f in again["features"]] == [f["id"] for f in first["features"]]
    assert not any(link["rel"] == "prev" for link in first["links"])


def testparse_limit_default_and_clamp(api, demo_small):
    body = api("admin", "/collections/incidents/items").json()
    assert body["numberReturned"] == 100
    assert body["numberMatched"] == demo_small["incidents"]
    big = api("admin", "/collections/incidents/items", params={"limit": 50000}).json()
    assert big["numberReturned"] == demo_small["incidents"]  # < the clamp
    assert parse_limit("50000") == MAX_LIMIT == 10_000


def test_bbox_against_a_brute_force_count(api, db):
    box = (112.96, 28.00, 113.00, 28.04)
    points = read_features(db, LAYERS["incidents"]).geometry
    inside = ((points.x >= box[0]) & (points.x <= box[2]) & (points.y >= box[1])
              & (points.y <= box[3])).sum()
    body = api("admin", "/collections/incidents/items",
               params={"bbox": ",".join(map(str, box)), "limit": 10000}).json()
    assert body["numberMatched"] == body["numberReturned"] == inside > 0
    latlon = api("admin", "/collections/incidents/items", params={
        "bbox": f"{box[1]},{box[0]},{box[3]},{box[2]}", "bbox-crs": EPSG4326, "limit": 1}).json()
    assert latlon["numberMatched"] == inside


def test_datetime_instants_and_intervals(api, db):
    times = read_features(db, LAYERS["incidents"])["occurred_at"]
    lo, hi = pd.Timestamp("2026-03-01T00:00:00Z"), pd.Timestamp("2026-03-31T23:59:59Z")
    cases = {
        "2026-03-01T00:00:00Z/2026-03-31T23:59:59Z": ((times >= lo) & (times <= hi)).sum(),
        "../2026-03-01T00:00:00Z": (times <= lo).sum(),
        "2026-03-01T00:00:00Z/..": (times >= lo).sum(),
    }
    for value, expected in cases.items():
        body = api("admin", "/collections/incidents/items",
                   params={"datetime": value, "limit": 1}).json()
        assert body["numberMatched"] == expected, value
    one = times.iloc[17]
    exact = api("admin", "/collections/incidents/items",
                params={"datetime": one.isoformat(), "limit": 5}).json()
    assert exact["numberMatched"] == (times == one).sum() >= 1


def test_equality_filters_on_fields(api, db):
    cams = read_features(db, LAYERS["cameras"])
    body = api("admin", "/collections/cameras/items",
               params={"status": "offline", "limit": 10000}).json()
    assert body["numberMatched"] == (cams.status == "offline").sum() > 0
    assert {f["properties"]["status"] for f in body["features"]} == {"offline"}
    code = cams.jurisdiction_code.iloc[0]
    both = api("admin", "/collections/cameras/items",
               params={"jurisdiction_code": code, "status": "online"}).json()
    assert both["numberMatched"] == ((cams.jurisdiction_code == code)
                                     & (cams.status == "online")).sum()


def test_output_crs_and_content_crs_header(api):
    plain = api("admin", "/collections/checkpoints/items", params={"limit": 5})
    assert plain.headers["Content-Crs"] == f"<{CRS84}>"
    lonlat = [f["geometry"]["coordinates"] for f in plain.json()["features"]]
    flipped = api("admin", "/collections/checkpoints/items",
                  params={"limit": 5, "crs": EPSG4326})
    assert flipped.headers["Content-Crs"] == f"<{EPSG4326}>"
    assert [f["geometry"]["coordinates"] for f in flipped.json()["features"]] == [
        [c[1], c[0]] for c in lonlat]
    merc = api("admin", "/collections/checkpoints/items", params={"limit": 5, "crs": EPSG3857})
    xy = np.array([f["geometry"]["coordinates"] for f in merc.json()["features"]])
    to3857 = Transformer.from_crs(4326, 3857, always_xy=True)
    expected = np.column_stack(to3857.transform(*np.array(lonlat).T))
    np.testing.assert_allclose(xy, expected, atol=0.01)


@pytest.fixture
def unedited_grid(api, db, keep_grids) -> str:
    """The code of a grid nobody has edited, made for the test inside the city's first
    grid (a grid of the demo may have been edited by an earlier test); the grids of its
    community are put back afterwards."""
    with db.connect() as conn:
        code, name, kind, community, geom = conn.execute(text(
            "SELECT code, name, kind, jurisdiction_code, ST_AsBinary(geom) FROM grids "
            "WHERE jurisdiction_code LIKE '4301%' ORDER BY id LIMIT 1")).one()
    keep_grids(community)
    inner = shapely.from_wkb(bytes(geom)).point_on_surface().buffer(0.0002, 1)
    feature = {"type": "Feature", "geometry": shapely.geometry.mapping(inner),
               "properties": {"code": f"{code}-ETAG", "name": f"{name}（ETag）", "kind": kind,
                              "jurisdiction_code": community}}
    created = api("admin", "/collections/grids/items", method="POST", json=feature)
    assert created.status_code == 201, created.text
    return feature["properties"]["code"]


def test_single_item_with_etag_and_404s(api, unedited_grid):
    first = api("admin", "/collections/grids/items",
                params={"code": unedited_grid, "limit": 1}).json()["features"][0]
    assert first["properties"]["code"] == unedited_grid
    one = api("admin", f"/collections/grids/items/{first['id']}")
    assert one.status_code == 200
    assert one.headers["ETag"] == '"1"'
    assert one.json()["properties"]["code"] == first["properties"]["code"]
    assert shapely.geometry.shape(one.json()["geometry"]).equals(
        shapely.geometry.shape(first["geometry"]))
    assert api("admin", "/collections/grids/items/999999999").status_code == 404
    assert api("admin", "/collections/grids/items/abc").status_code == 404
    assert api("admin", "/collections/nowhere/items").status_code == 404


def test_queryables_describe_the_fields(api):
    schema = api("admin", "/collections/incidents/queryables").json()
    props = schema["properties"]
    assert props["category"]["enum"][0] == "criminal"
    assert props["occurred_at"]["format"] == "date-time"
    assert props["severity"]["minimum"] == 1 and props["severity"]["maximum"] == 5


def test_personal_fields_only_for_roles_that_may_see_them(api):
    police = api("police", "/collections/households/items", params={"limit": 3}).json()
    assert "phone" in police["features"][0]["properties"]
    roads = api("viewer", "/collections/roads/items", params={"limit": 3})
    assert roads.status_code == 200


def test_items_revalidate_with_a_weak_etag(api):
    path, params = "/collections/cameras/items", {"limit": 5, "bbox": "112.9,27.9,113.1,28.1"}
    first = api("police", path, params=params)
    assert first.status_code == 200
    tag = first.headers["ETag"]
    assert tag.startswith('W/"') and "no-cache" in first.headers["Cache-Control"]
    assert "Authorization" in first.headers["Vary"]
    again = api("police", path, params=params, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == tag
    # a list of tags, and the tag sent strong, still match (weak comparison)
    assert api("police", path, params=params,
               headers={"If-None-Match": f'"x", {tag[2:]}'}).status_code == 304
    # another query, another user's scope, another layer: another tag, the whole page
    other_query = api("police", path, params={**params, "limit": 6},
                      headers={"If-None-Match": tag})
    assert other_query.status_code == 200 and other_query.headers["ETag"] != tag
    admin = api("admin", path, params=params, headers={"If-None-Match": tag})
    assert admin.status_code == 200 and admin.headers["ETag"] != tag
    partner = api("partner", path, params=params, headers={"If-None-Match": tag})
    assert partner.status_code == 200 and partner.headers["ETag"] not in (tag,
                                                                          admin.headers["ETag"])
    assert api("police", "/collections/checkpoints/items", params=params,
               headers={"If-None-Match": tag}).status_code == 200
    # a change to the layer: a new tag, and the old one gets the page again
    camera = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [112.985, 28.03]},
              "properties": {"code": "T-ETAG-1", "bearing": 10, "fov": 70, "range_m": 90,
                             "status": "online"}}
    created = api("police", path, method="POST", json=camera)
    assert created.status_code == 201, created.text
    try:
        changed = api("police", path, params=params, headers={"If-None-Match": tag})
        assert changed.status_code == 200 and changed.headers["ETag"] != tag
        assert changed.json()["type"] == "FeatureCollection"
    finally:
        gone = api("police", f"{path}/{created.json()['id']}", method="DELETE")
        assert gone.status_code == 204, gone.text
    after = api("police", path, params=params, headers={"If-None-Match": tag})
    assert after.status_code == 200 and after.headers["ETag"] not in (
        tag, changed.headers["ETag"])
