"""Grids as a client reads them stay a valid coverage through random edit sequences.

Random sequences (seeded) of vertex moves (PATCH), splits and merges go to a real
server over HTTP; after each, the community's grids are read back through the API
(GeoJSON at the served precision) and must be a valid coverage whose union is the
community, and ``/api/grids/validate`` must agree. The server has a database of its
own: the edits change the community for good.
"""

import numpy as np
import pytest
import requests
import shapely
from sqlalchemy import text
from sqlalchemy.engine import make_url

from layers.db import engine
from layers.users import issue_token

from ..conftest import Server, demo_database
from .gridhelp import assert_served_tiling

pytestmark = [pytest.mark.db, pytest.mark.slow]

COMMUNITY = "430103002002"


@pytest.fixture(scope="module")
def served(db_url, tmp_path_factory):
    """(base URL, admin headers, community polygon) of a server on its own demo."""
    url = demo_database(f"{make_url(db_url).database}_served")
    db = engine(url)
    with db.begin() as conn:
        token = issue_token(conn, "admin")
        area = shapely.from_wkb(bytes(conn.execute(text(
            "SELECT ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"),
            {"c": COMMUNITY}).scalar_one()))
    server = Server(url, tmp_path_factory.mktemp("served") / "serve.log")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        generated = requests.post(f"{server.url}/api/grids/generate", headers=headers,
                                  timeout=60, json={"jurisdiction": COMMUNITY,
                                                    "target_households": 25,
                                                    "replace": True})
        assert generated.status_code == 201, generated.text[:500]
        yield server.url, headers, area
    finally:
        server.stop()
        db.dispose()


def read_grids(base: str, headers: dict) -> dict[int, shapely.Geometry]:
    """``id -> geometry`` of the community's grids, as the API serves them."""
    r = requests.get(f"{base}/collections/grids/items", headers=headers, timeout=30,
                     params={"jurisdiction_code": COMMUNITY, "limit": 1000})
    assert r.status_code == 200, r.text
    return {f["id"]: shapely.geometry.shape(f["geometry"]) for f in r.json()["features"]}


def edit(base: str, headers: dict, grids: dict[int, shapely.Geometry], op: str, pick: int,
         dx: float, dy: float, angle: float) -> requests.Response | None:
    """One random edit of the served ``grids``; None when none was sent."""
    ids = sorted(grids)
    key = ids[pick % len(ids)]
    geom = grids[key]
    span = np.sqrt(geom.area)
    item = requests.get(f"{base}/collections/grids/items/{key}", headers=headers, timeout=30)
    etag = {**headers, "If-Match": item.headers["ETag"]}
    if op == "move":  # one vertex dragged, as far as a third of the grid's size
        ring = np.array(geom.exterior.coords)
        i = pick % (len(ring) - 1)
        ring[i] += (dx * span / 3, dy * span / 3)
        ring[-1] = ring[0]
        shape = shapely.Polygon(ring)
        if not shape.is_valid:
            return None
        body = {"type": "Feature", "geometry": shapely.geometry.mapping(shape)}
        return requests.patch(f"{base}/collections/grids/items/{key}", json=body,
                              headers={**etag, "Content-Type": "application/merge-patch+json"},
                              timeout=60)
    if op == "split":
        c = geom.centroid
        d = np.array([np.cos(angle), np.sin(angle)]) * span * 2
        line = {"type": "LineString", "coordinates": [[c.x - d[0], c.y - d[1]],
                                                      [c.x + d[0], c.y + d[1]]]}
        return requests.post(f"{base}/api/grids/{key}/split", json={"line": line},
                             headers=etag, timeout=60)
    others = [k for k, g in grids.items() if k != key and g.intersection(geom).length > 0]
    if not others:
        return None
    return requests.post(f"{base}/api/grids/merge", headers=headers, timeout=60,
                         json={"ids": [key, others[pick % len(others)]]})


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6, 7, 8])
def test_random_edits_served_as_a_valid_coverage(served, seed):
    base, headers, area = served
    rng = np.random.default_rng(seed)
    answered = []
    grids = read_grids(base, headers)  # then read again after each edit, as checked
    for _ in range(25):
        op = rng.choice(["move", "move", "move", "split", "merge"])
        answer = edit(base, headers, grids, op, int(rng.integers(10_000)),
                      *rng.uniform(-1, 1, 2), rng.uniform(0, np.pi))
        if answer is None:
            continue
        assert answer.status_code in (200, 422), answer.text
        answered.append(answer.status_code)
        grids = read_grids(base, headers)
        assert_served_tiling(list(grids.values()), area)
        check = requests.get(f"{base}/api/grids/validate", headers=headers, timeout=60,
                             params={"jurisdiction": COMMUNITY})
        assert check.status_code == 200 and check.json()["valid"], check.text
        if answer.status_code == 200:  # what the edit answered is what is served
            for feature in answer.json()["changed"]["features"]:
                assert shapely.equals_exact(shapely.geometry.shape(feature["geometry"]),
                                            grids[feature["id"]], 0.0)
    assert answered.count(200) >= 5  # the sequence edited, not only refused
