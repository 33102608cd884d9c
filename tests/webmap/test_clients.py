"""Standard clients with their defaults: GDAL's OAPIF driver, and what QGIS and OWSLib need.

GDAL 3.6 pages with ``limit=10`` and counts with ``numberMatched`` (else by paging);
QGIS reads the page size from ``#/components/parameters/limit``, writes open-ended date
filters as the years 0000 and 9999, and can send HTTP Basic but no Bearer token. These
tests run GDAL itself against a server of their own, whose database holds more than
10 000 incidents and whose rate limit is small.
"""

import base64
import os
import subprocess

import pyogrio
import pytest
import requests
from sqlalchemy import text
from sqlalchemy.engine import make_url

from layers.db import engine
from layers.registry import LAYERS
from layers.users import issue_token

from ..conftest import Server, demo_database, demo_password, login_form, run_cli
from .gridhelp import COMMUNITY

pytestmark = pytest.mark.db

RATE_LIMIT = "300/minute"  # ordinary requests; a page of features costs a tenth of one
LOGIN_LIMIT = "3/5minutes"


@pytest.fixture(scope="module")
def big(db_url, tmp_path_factory):
    """A server on the small demo with its incidents doubled (11 924: over 10 000)."""
    url = demo_database(f"{make_url(db_url).database}_clients_big")
    db = engine(url)
    with db.begin() as conn:
        conn.execute(text(
            "INSERT INTO incidents (geom, occurred_at, category, severity, jurisdiction_code) "
            "SELECT geom, occurred_at, category, severity, jurisdiction_code FROM incidents"))
        tokens = {name: issue_token(conn, name)
                  for name in ("admin", "police", "planner", "partner")}
        flood = issue_token(conn, "admin")
    server = Server(url, tmp_path_factory.mktemp("clients") / "serve.log",
                    {"SAFEGRID_RATE_LIMIT": RATE_LIMIT, "SAFEGRID_LOGIN_LIMIT": LOGIN_LIMIT})
    server.db, server.db_url, server.tokens, server.flood = db, url, tokens, flood
    yield server
    server.stop()


def _count(db, sql: str, **params) -> int:
    with db.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def _basic(user: str, secret: str) -> dict:
    pair = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def _get(server, path: str, headers: dict, **params) -> requests.Response:
    return requests.get(f"{server.url}{path}", headers=headers, params=params, timeout=60)


def _bearer(server, user: str) -> dict:
    return {"Authorization": f"Bearer {server.tokens[user]}"}


def _gdal(*args: str, user: str, secret: str) -> subprocess.CompletedProcess:
    """A GDAL command with default options, authenticated with HTTP Basic."""
    env = {**os.environ, "GDAL_HTTP_USERPWD": f"{user}:{secret}", "GDAL_HTTP_AUTH": "BASIC"}
    env.pop("GDAL_HTTP_HEADERS", None)
    return subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=600)


# -- the OpenAPI document ----------------------------------------------------------------


def test_limit_is_one_shared_parameter_that_every_items_path_uses(api):
    from webmap.params import DEFAULT_LIMIT, MAX_LIMIT

    doc = api(None, "/openapi").json()
    limit = doc["components"]["parameters"]["limit"]
    assert limit["name"] == "limit" and limit["in"] == "query"
    assert limit["schema"]["default"] == DEFAULT_LIMIT
    assert limit["schema"]["maximum"] == MAX_LIMIT
    for name in LAYERS:
        params = doc["paths"][f"/collections/{name}/items"]["get"]["parameters"]
        assert {"$ref": "#/components/parameters/limit"} in params, name
        assert not any(p.get("name") == "limit" for p in params), name
    assert doc["components"]["securitySchemes"]["basic"]["scheme"] == "basic"


# -- numberMatched -----------------------------------------------------------------------


def _walk(server, headers: dict, limit: int, **params) -> list[int]:
    """Ids of every page of incidents, following the next links."""
    r = _get(server, "/collections/incidents/items", headers, limit=limit, **params)
    ids: list[int] = []
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        ids += [f["id"] for f in body["features"]]
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        if not nxt:
            return ids
        r = requests.get(nxt[0], headers=headers, timeout=60)


def test_number_matched_is_exact_above_ten_thousand_for_each_scope(big):
    total = _count(big.db, "SELECT count(*) FROM incidents")
    assert total > 10_000
    since = "2026-03-01T00:00:00Z"
    for user, expect in (("admin", total), ("police", None), ("partner", None)):
        for params in ({}, {"datetime": f"{since}/.."}):
            headers = _bearer(big, user)
            body = _get(big, "/collections/incidents/items", headers, limit=1, **params).json()
            ids = _walk(big, headers, 10_000, **params)
            assert body["numberMatched"] == len(ids) == len(set(ids)), (user, params)
            if expect is not None and not params:
                assert body["numberMatched"] == expect
    admin = _get(big, "/collections/incidents/items", _bearer(big, "admin"), limit=1).json()
    for user in ("police", "partner"):  # each its own count, not the admin's kept one
        mine = _get(big, "/collections/incidents/items", _bearer(big, user), limit=1).json()
        assert 0 < mine["numberMatched"] < admin["numberMatched"], user


def _matched(server, path: str, user: str = "admin", **params) -> int:
    r = _get(server, path, _bearer(server, user), limit=1, **params)
    assert r.status_code == 200, r.text
    return r.json()["numberMatched"]


def test_number_matched_follows_every_kind_of_write(big, tmp_path):
    items = "/collections/incidents/items"
    before = _matched(big, items)
    # an API edit, and its undoing
    one = _get(big, items, _bearer(big, "admin"), limit=3).json()["features"]
    new = {"type": "Feature", "geometry": one[0]["geometry"],
           "properties": {k: v for k, v in one[0]["properties"].items()
                          if k != "jurisdiction_code"}}
    r = requests.post(f"{big.url}{items}", json=new, headers=_bearer(big, "admin"), timeout=60)
    assert r.status_code == 201, r.text
    assert _matched(big, items) == before + 1
    added = r.json()["id"]
    etag = requests.get(f"{big.url}{items}/{added}", headers=_bearer(big, "admin"),
                        timeout=60).headers["ETag"]
    r = requests.delete(f"{big.url}{items}/{added}", timeout=60,
                        headers={**_bearer(big, "admin"), "If-Match": etag})
    assert r.status_code == 204, r.text
    assert _matched(big, items) == before
    # an import from the command line (another process)
    path = tmp_path / "three.geojson"
    path.write_text(requests.get(f"{big.url}{items}", headers=_bearer(big, "admin"),
                                 params={"limit": 3}, timeout=60).text)
    result = run_cli(big.db_url, "import", "incidents", str(path))
    assert result.returncode == 0, result.stderr
    assert _matched(big, items) == before + 3
    # plain SQL
    with big.db.begin() as conn:
        conn.execute(text("DELETE FROM incidents WHERE id IN (SELECT id FROM incidents "
                          "ORDER BY id DESC LIMIT 3)"))
    assert _matched(big, items) == before


def test_number_matched_follows_a_grid_edit(big):
    r = requests.post(f"{big.url}/api/grids/generate", headers=_bearer(big, "planner"),
                      json={"jurisdiction": COMMUNITY, "target_households": 40,
                            "replace": True}, timeout=300)
    assert r.status_code == 201, r.text
    grids = [(f["id"], f["properties"]["code"]) for f in r.json()["features"]]
    households = "/collections/households/items"
    first_id, first = grids[0]
    kept = _matched(big, households, grid_code=first)  # counted and kept
    merged = None
    for other_id, other in grids[1:]:
        r = requests.post(f"{big.url}/api/grids/merge", headers=_bearer(big, "planner"),
                          json={"ids": [first_id, other_id]}, timeout=120)
        if r.status_code == 200:
            merged = other
            break
    assert merged is not None, "no grid next to the first"
    now = _count(big.db, "SELECT count(*) FROM households WHERE grid_code = :c", c=first)
    assert now > kept
    assert _matched(big, households, grid_code=first) == now


# -- datetime ------------------------------------------------------------------------------


@pytest.mark.parametrize(("far", "same"), [
    ("0000-01-01T00:00:00Z/2026-03-01T00:00:00Z", "../2026-03-01T00:00:00Z"),
    ("2026-03-01T00:00:00Z/9999-12-31T00:00:00Z", "2026-03-01T00:00:00Z/.."),
    ("2026-03-01/9999-12-31", "2026-03-01/.."),
    ("0000-01-01T00:00:00Z/9999-12-31T00:00:00Z", None),
])
def test_the_years_0000_and_9999_are_open_ends(api, demo_small, far, same):
    r = api("admin", "/collections/incidents/items", params={"datetime": far, "limit": 1})
    assert r.status_code == 200, r.text
    expected = demo_small["incidents"] if same is None else api(
        "admin", "/collections/incidents/items",
        params={"datetime": same, "limit": 1}).json()["numberMatched"]
    assert r.json()["numberMatched"] == expected
    assert 0 < expected <= demo_small["incidents"]


def test_an_interval_open_at_both_ends_is_still_refused(api):
    r = api("admin", "/collections/incidents/items", params={"datetime": "../.."})
    assert r.status_code == 400
    assert "at least one end" in r.json()["error"]


# -- HTTP Basic ------------------------------------------------------------------------------


def test_basic_takes_a_user_name_with_a_token_or_the_password(big):
    items = "/collections/incidents/items"
    for secret in (big.tokens["police"], demo_password("police")):
        r = _get(big, items, _basic("police", secret), limit=1)
        assert r.status_code == 200, r.text
        assert "Set-Cookie" not in r.headers  # no browser session comes of it
        assert r.json()["numberMatched"] == _matched(big, items, "police")
    for user, secret in (("police", "not-the-password"), ("admin", big.tokens["police"]),
                         ("police", "")):
        r = _get(big, items, _basic(user, secret), limit=1)
        assert r.status_code == 401, (user, r.text)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")  # never asks for Basic
    r = _get(big, items, {"Authorization": "Basic not*base64"})
    assert r.status_code == 401 and "base64" in r.json()["error"]


def test_basic_passwords_are_throttled_like_the_login_form(big):
    items = "/collections/cameras/items"
    for _ in range(3):
        assert _get(big, items, _basic("viewer", "wrong-password")).status_code == 401
    r = _get(big, items, _basic("viewer", demo_password("viewer")))
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    form = login_form(requests.Session(), big.url, "viewer", demo_password("viewer"))
    assert form.status_code == 429  # one count for both ways in
    with big.db.begin() as conn:
        token = issue_token(conn, "viewer")
    assert _get(big, items, _basic("viewer", token)).status_code == 200  # tokens still work


def test_basic_changes_data_only_from_api_clients(big):
    camera = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [112.99, 28.02]},
              "properties": {"code": "BASIC-1", "bearing": 0, "fov": 90, "range_m": 50,
                             "status": "online"}}
    url = f"{big.url}/collections/cameras/items"
    basic = _basic("police", demo_password("police"))
    for page in ({"Origin": "https://elsewhere.example"}, {"Sec-Fetch-Site": "cross-site"}):
        r = requests.post(url, json=camera, headers={**basic, **page}, timeout=60)
        assert r.status_code == 403 and "web page" in r.json()["error"]
    assert _count(big.db, "SELECT count(*) FROM cameras WHERE code = 'BASIC-1'") == 0
    r = requests.post(url, json=camera, headers=basic, timeout=60)
    assert r.status_code == 201, r.text


# -- GDAL with its default options -------------------------------------------------------


def test_ogrinfo_counts_every_feature(big):
    for layer in ("incidents", "households"):
        result = _gdal("ogrinfo", "-so", f"OAPIF:{big.url}", layer,
                       user="admin", secret=demo_password("admin"))
        assert result.returncode == 0, result.stderr
        expected = _count(big.db, f"SELECT count(*) FROM {layer}")
        assert f"Feature Count: {expected}\n" in result.stdout, result.stdout


# Incidents west of 112.97° E: about 3 200 of the 11 924, still more than 300 pages of
# ten (more pages than ordinary requests the rate limit allows a minute), walked across
# the monthly partitions with a spatial filter GDAL sends as bbox; the households whole.
# (Only the output's numbering is asked for: with a spatial filter ogr2ogr numbers the
# features anew unless told to keep their ids, and the ids are what is compared.)
WEST = ("112.92", "27.98", "112.97", "28.06")


def test_ogr2ogr_exports_every_feature_ten_at_a_time(big, tmp_path):
    for layer, spat, where in (
            ("incidents", ["-spat", *WEST, "-preserve_fid"],
             "WHERE ST_Intersects(geom, ST_MakeEnvelope({}, {}, {}, {}, 4326))".format(*WEST)),
            ("households", [], "")):
        out = tmp_path / f"{layer}.gpkg"
        result = _gdal("ogr2ogr", "-f", "GPKG", *spat, str(out), f"OAPIF:{big.url}", layer,
                       user="admin", secret=big.tokens["admin"])
        assert result.returncode == 0, result.stderr
        got = pyogrio.read_dataframe(out, fid_as_index=True, read_geometry=False)
        with big.db.connect() as conn:
            ids = [r[0] for r in conn.execute(text(f"SELECT id FROM {layer} {where} ORDER BY id"))]
        assert len(ids) >= 3000
        assert sorted(got.index) == ids
        pages = [line for line in big.output().splitlines()
                 if f"GET /collections/{layer}/items?" in line and "limit=10&" in line
                 and "after=" in line and ("bbox=" in line) == bool(spat)]
        assert len(pages) >= len(ids) // 10 - 1  # GDAL's default page: 10 features


def test_paging_a_layer_by_ten_is_not_cut_off_but_a_flood_is(big):
    ids = _walk(big, _bearer(big, "police"), 10)
    assert len(ids) == _matched(big, "/collections/incidents/items", "police") > 3000
    flood = {"Authorization": f"Bearer {big.flood}"}
    # periods after the last incident: each a query of its own, so each needs a count of
    # its own (an ordinary request) however few it matches, and the counts are quick
    statuses = [_get(big, "/collections/incidents/items", flood, limit=10,
                     datetime=f"2027-01-01T00:{i // 60:02d}:{i % 60:02d}Z/..").status_code
                for i in range(310)]
    assert 429 in statuses  # every one needed a count of its own: an ordinary request
    assert statuses.index(429) <= 300
    r = _get(big, "/collections", flood)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_page_costs():
    from webmap.ratelimit import UNITS, page_cost

    assert page_cost(10, False) == 0
    assert page_cost(10, True) == UNITS - 1
    assert page_cost(10_000, False) == 10

