"""Many people at once: 24 editors and 4 readers against one server on loopback.

Editors: 4 pairs of police officers race for the same camera (each round both read
the same version and patch it at once), 8 officers each edit a camera of their own,
and 8 planners reshape neighbouring grids of one community. Readers page through
the layers, fetch tiles and check the community's grid coverage all along. The run
is bounded by a request budget and a deadline, on a database of its own.

Checks: no answer is a 5xx; every editor answered 200 finds its write stored (the
item, or the grid's history at that version); each contested round ends as exactly
one of the two writes with 412 for the other; the grid coverage is valid in every
check and at the end.
"""

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import pytest
import requests
import shapely
from sqlalchemy import text

from layers.db import engine
from layers.users import issue_token

from ..conftest import Server, demo_database
from .gridhelp import COMMUNITY, assert_tiles, geoms, moved, room
from .tilemath import tile_of

pytestmark = pytest.mark.db

DEADLINE_S = 20  # of load; the whole test stays well under a minute
ROUNDS = 12  # per contested pair
OWN_EDITS = 15  # per camera owner
GRID_EDITS = 8  # attempts per planner
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


@dataclass
class Log:
    """Every answer of the run, shared by the client threads."""

    statuses: Counter = field(default_factory=Counter)
    server_errors: list = field(default_factory=list)
    latencies: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, r: requests.Response, started: float) -> requests.Response:
        with self.lock:
            self.statuses[r.status_code] += 1
            self.latencies.append(time.perf_counter() - started)
            if r.status_code >= 500:
                self.server_errors.append((r.request.method, r.request.url, r.status_code,
                                           r.text[:300]))
        return r

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)


class Client:
    """One user's HTTP session with its own token."""

    def __init__(self, base: str, token: str, log: Log):
        self.base, self.log = base, log
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kw) -> requests.Response:
        began = time.perf_counter()
        return self.log.record(self.http.request(method, self.base + path, timeout=30, **kw),
                               began)


@pytest.fixture(scope="module")
def load_db():
    url = demo_database("safegrid_load")
    yield engine(url)
    engine(url).dispose()


@pytest.fixture(scope="module")
def load_server(load_db, tmp_path_factory):
    server = Server(load_db.url.render_as_string(hide_password=False),
                    tmp_path_factory.mktemp("load") / "serve.log",
                    {"SAFEGRID_RATE_LIMIT": "off"},  # the readers may outrun 3000/minute
                    "--threads", "8", "--no-access-log")
    yield server
    server.stop()


def _tokens(db, user: str, n: int) -> list[str]:
    with db.begin() as conn:
        return [issue_token(conn, user) for _ in range(n)]


def _etag(r: requests.Response) -> int:
    return int(r.headers["ETag"].strip('"'))


def contested(client: Client, camera: int, value: float, barrier: threading.Barrier,
              results: dict) -> None:
    """Each round: read the camera, wait for the rival, patch with the version read."""
    for rnd in range(ROUNDS):
        got = client.call("GET", f"/collections/cameras/items/{camera}")
        barrier.wait(timeout=30)
        r = client.call("PATCH", f"/collections/cameras/items/{camera}",
                        json={"properties": {"bearing": value + rnd}},
                        headers={**MERGE_PATCH, "If-Match": got.headers["ETag"]})
        results[(camera, rnd)].append((r.status_code, value + rnd))
        barrier.wait(timeout=30)  # the round is over for both before anyone reads again


def own_camera(client: Client, camera: int, seed: int, deadline: float) -> None:
    """Patch one's own camera again and again; each acknowledged write is read back."""
    rng = np.random.default_rng(seed)
    etag = client.call("GET", f"/collections/cameras/items/{camera}").headers["ETag"]
    for _ in range(OWN_EDITS):
        if time.monotonic() > deadline:
            return
        fov = float(rng.integers(30, 120))
        r = client.call("PATCH", f"/collections/cameras/items/{camera}",
                        json={"properties": {"fov": fov}},
                        headers={**MERGE_PATCH, "If-Match": etag})
        if r.status_code != 200:
            client.log.fail(f"own camera {camera}: {r.status_code} {r.text[:200]}")
            return
        etag = r.headers["ETag"]
        back = client.call("GET", f"/collections/cameras/items/{camera}")
        if back.json()["properties"]["fov"] != fov or back.headers["ETag"] != etag:
            client.log.fail(f"own camera {camera}: wrote fov {fov} as {etag}, read "
                            f"{back.json()['properties']['fov']} as {back.headers['ETag']}")


def _inner_vertex(grid: shapely.Polygon, outline, rng) -> tuple[float, float] | None:
    inner = [xy for xy in grid.exterior.coords[:-1]
             if outline.distance(shapely.Point(xy)) > 1e-5 and room(grid, xy) > 2e-5]
    return tuple(inner[rng.integers(len(inner))]) if inner else None


def reshape_grid(client: Client, grid_id: int, outline, seed: int, deadline: float,
                 acknowledged: list) -> None:
    """Move an inner vertex of one's grid a few metres; read again after a 412."""
    rng = np.random.default_rng(seed)
    for _ in range(GRID_EDITS):
        if time.monotonic() > deadline:
            return
        got = client.call("GET", f"/collections/grids/items/{grid_id}")
        feature = got.json()
        shape = shapely.geometry.shape(feature["geometry"])
        xy = _inner_vertex(shape, outline, rng)
        if xy is None:
            return
        feature["geometry"] = moved(shape, xy, *rng.uniform(-6e-5, 6e-5, 2))
        r = client.call("PUT", f"/collections/grids/items/{grid_id}", json=feature,
                        headers={"If-Match": got.headers["ETag"],
                                 "Content-Type": "application/geo+json"})
        if r.status_code == 200:
            body = r.json()
            for changed in body["changed"]["features"]:
                acknowledged.append((changed["id"], body["versions"][str(changed["id"])],
                                     changed["geometry"]))
        elif r.status_code not in (412, 422):
            client.log.fail(f"grid {grid_id}: {r.status_code} {r.text[:200]}")


def reader(client: Client, paths: list[str], deadline: float, edited: threading.Event,
           check=None) -> None:
    """GET the paths in turn while the editors edit (three rounds at least, and not past
    the deadline); each must answer 200."""
    rounds = 0
    while time.monotonic() < deadline and not (edited.is_set() and rounds >= 3):
        rounds += 1
        for path in paths:
            r = client.call("GET", path)
            if r.status_code != 200:
                client.log.fail(f"reader {path}: {r.status_code} {r.text[:200]}")
            elif check:
                check(r)


def test_24_editors_and_4_readers_at_once(load_db, load_server):
    db, base, log = load_db, load_server.url, Log()
    planner, police = _tokens(db, "planner", 9), _tokens(db, "police", 16)
    viewer = _tokens(db, "viewer", 2)
    planned = requests.post(f"{base}/api/grids/generate", timeout=120,
                            headers={"Authorization": f"Bearer {planner[8]}"},
                            json={"jurisdiction": COMMUNITY, "target_households": 25,
                                  "replace": True})
    assert planned.status_code == 201, planned.text
    grid_ids = [f["id"] for f in planned.json()["features"]][:8]
    assert len(grid_ids) == 8
    grids = geoms(db)
    outline = shapely.coverage_union_all(np.array(list(grids.values()), dtype=object)).boundary
    with db.connect() as conn:
        cameras = conn.execute(text(
            "SELECT id FROM cameras WHERE jurisdiction_code LIKE '4301%' ORDER BY id LIMIT 12"
        )).scalars().all()
        box = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                "(SELECT ST_Extent(geom) e FROM jurisdictions WHERE code = "
                                ":c) x"), {"c": COMMUNITY}).one()
    assert len(cameras) == 12

    results: dict = defaultdict(list)
    acknowledged: list = []
    validations: list = []
    deadline = time.monotonic() + DEADLINE_S
    threads: list[threading.Thread] = []

    def spawn(fn, *args):
        def run():
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - a client's crash is a finding
                log.fail(f"{fn.__name__} raised {exc!r}")
        threads.append(threading.Thread(target=run, name=fn.__name__))

    for pair in range(4):  # 8 officers racing in pairs for cameras[0:4]
        barrier = threading.Barrier(2)
        for side in range(2):
            spawn(contested, Client(base, police[2 * pair + side], log), cameras[pair],
                  float(100 * side + 10 * pair), barrier, results)
    for i in range(8):  # 8 officers, each with a camera of their own: cameras[4:12]
        spawn(own_camera, Client(base, police[8 + i], log), cameras[4 + i], i, deadline)
    for i, grid_id in enumerate(grid_ids):  # 8 planners on neighbouring grids
        spawn(reshape_grid, Client(base, planner[i], log), grid_id, outline, i, deadline,
              acknowledged)

    def valid(r):
        validations.append(r.json()["valid"])
        if not r.json()["valid"]:
            log.fail(f"coverage invalid during the run: {r.text[:300]}")

    bbox = ",".join(f"{v:.6f}" for v in box)
    x, y = tile_of((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, 14)
    readers = [
        ([f"/api/grids/validate?jurisdiction={COMMUNITY}"], valid, planner[8]),
        ([f"/collections/grids/items?bbox={bbox}&limit=50",
          "/collections/cameras/items?limit=200"], None, viewer[0]),
        ([f"/collections/households/items?bbox={bbox}&limit=100"], None, police[0]),
        ([f"/tiles/grids/14/{x}/{y}.mvt", f"/tiles/roads/14/{x}/{y}.mvt"], None, viewer[1]),
    ]
    edited = threading.Event()  # the editors are done: reading on proves nothing more
    for paths, check, token in readers:
        spawn(reader, Client(base, token, log), paths, deadline, edited, check)
    assert len(threads) == 24 + 4

    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads[:24]:
        t.join(timeout=90)
    edited.set()
    for t in threads[24:]:
        t.join(timeout=90)
    elapsed = time.perf_counter() - began
    assert not any(t.is_alive() for t in threads), "a client hung"

    latencies = np.array(log.latencies) * 1000
    print(f"\nload: {len(latencies)} requests in {elapsed:.1f} s "
          f"({len(latencies) / elapsed:.0f}/s), p50 {np.percentile(latencies, 50):.0f} ms, "
          f"p95 {np.percentile(latencies, 95):.0f} ms; statuses {dict(log.statuses)}; "
          f"{len(acknowledged)} grid versions acknowledged, {len(validations)} coverage checks")
    assert log.server_errors == []
    assert log.failures == []

    # each contested round: exactly one winner, the other 412; the last winner's value stays
    assert len(results) == 4 * ROUNDS
    for key, outcomes in results.items():
        assert sorted(s for s, _v in outcomes) == [200, 412], (key, outcomes)
    with db.connect() as conn:
        stored = dict(conn.execute(text("SELECT id, bearing FROM cameras WHERE id = ANY(:i)"),
                                   {"i": cameras[:4]}).all())
        audited = Counter(conn.execute(text(
            "SELECT feature_id FROM audit WHERE layer = 'cameras' AND action = 'update' "
            "AND feature_id = ANY(:i)"), {"i": cameras[:4]}).scalars())
    assert stored == {c: next(v for s, v in results[(c, ROUNDS - 1)] if s == 200)
                      for c in cameras[:4]}
    assert all(audited[c] == ROUNDS for c in cameras[:4])  # one audit row per won round

    # every acknowledged grid version is in the history with the shape it was given
    assert len(acknowledged) >= 8
    auth = {"Authorization": f"Bearer {planner[8]}"}
    histories = {g: requests.get(f"{base}/api/grids/{g}/history", headers=auth,
                                 timeout=30).json()["versions"]
                 for g in {g for g, _v, _geom in acknowledged}}
    for grid_id, version, geometry in acknowledged:
        kept = {v["version"]: v["geometry"] for v in histories[grid_id]}
        assert version in kept, (grid_id, version)
        assert shapely.geometry.shape(kept[version]).equals_exact(
            shapely.geometry.shape(geometry), 1e-7)
    assert len(validations) >= 3 and all(validations)
    assert_tiles(db)
