"""Faults: the database goes away under a running server, and writes are killed.

A private cluster of its own (``SAFEGRID_HOME`` in a temporary directory) so the rest
of the suite never sees it stop. While it is down, requests get 503 with a JSON message
within a few seconds; once it is back, the server recovers by itself. An edit of the
server, an import of the command line and the database itself each get ``kill -9`` in
the middle of a write: afterwards nothing of that write is there, and the same write
then succeeds.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import requests
from sqlalchemy import text

from layers import demo
from layers.cluster import managed_cluster
from layers.db import engine, migrate
from layers.users import issue_token

from ..conftest import SAFEGRID, Server

pytestmark = pytest.mark.db

CITY = "430100"


@pytest.fixture(scope="module")
def home() -> Path:
    """A private managed cluster with the small demo; stopped and removed at the end."""
    path = Path(tempfile.mkdtemp(prefix="safegrid-faults-"))
    path.chmod(0o755)  # the server user must reach it when we are root
    cluster = managed_cluster(path)
    cluster.up()
    migrate(cluster.url())
    demo.load(engine(cluster.url()), "small", 1)
    yield path
    engine(cluster.url()).dispose()
    cluster.down()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def db(home):
    return engine(managed_cluster(home).url())


def _env(home: Path) -> dict[str, str]:
    """The environment of a command on the private cluster (not the suite's database)."""
    env = {k: v for k, v in os.environ.items() if k != "SAFEGRID_DATABASE_URL"}
    return {**env, "SAFEGRID_HOME": str(home)}


def safegrid(home: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([SAFEGRID, *args], capture_output=True, text=True, timeout=120,
                          env=_env(home), **kw)


def _serve(home: Path, db, log: Path, env: dict | None = None) -> Server:
    """A server on the private cluster, with an administrator's token as ``token``."""
    server = Server(managed_cluster(home).url(), log, {"SAFEGRID_HOME": str(home), **(env or {})})
    with db.begin() as conn:
        server.token = issue_token(conn, "admin")
    return server


@pytest.fixture(scope="module")
def served(home, db, tmp_path_factory):
    """One server for the tests that take the database away under it (it must recover
    every time, and its whole output stays free of tracebacks) and for the held lock:
    an edit gives up after waiting 1 s for a lock."""
    server = _serve(home, db, tmp_path_factory.mktemp("served") / "serve.log",
                    {"SAFEGRID_DB_LOCK_TIMEOUT": "1s"})
    yield server
    server.stop()


def timed_get(server: Server, path: str) -> tuple[requests.Response, float]:
    began = time.monotonic()
    r = requests.get(server.url + path, timeout=30,
                     headers={"Authorization": f"Bearer {server.token}"})
    return r, time.monotonic() - began


def writing_backends(db, relation: str) -> list[int]:
    """Server processes holding a write lock on ``relation`` (a write in progress)."""
    with db.connect() as conn:
        return conn.execute(text(
            "SELECT DISTINCT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = :r AND l.mode = 'RowExclusiveLock' AND l.granted "
            "AND l.pid <> pg_backend_pid()"), {"r": relation}).scalars().all()


def wait_for_write(db, relation: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if writing_backends(db, relation):
            return
        assert proc.poll() is None, "the write ended before it could be interrupted"
        time.sleep(0.01)
    raise AssertionError(f"no write into {relation} began within {seconds} s")


def assert_write_dropped(db, relation: str) -> None:
    """The write into ``relation`` of a killed client ends (within 10 s) and is gone."""
    deadline = time.monotonic() + 10  # the database notices the lost client
    while writing_backends(db, relation) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert writing_backends(db, relation) == []


def assert_recovers(server: Server, path: str) -> None:
    """``path`` answers 200 again within 15 s (503 meanwhile, nothing else)."""
    back = time.monotonic()
    while True:
        r, _took = timed_get(server, path)
        if r.status_code == 200:
            return
        assert r.status_code == 503, r.text[:200]
        assert time.monotonic() - back < 15, "the server did not recover within 15 s"
        time.sleep(0.5)


def fingerprint(db, table: str) -> tuple:
    """What a partial write would change: rows, the largest id, versions, audit rows."""
    with db.connect() as conn:
        return conn.execute(text(
            f"SELECT count(*), coalesce(max(id), 0), coalesce(sum(version), 0), "
            f"(SELECT count(*) FROM audit) FROM {table}")).one()


def test_database_down_gives_503_quickly_and_the_server_recovers(home, served):
    for path in ("/collections/cameras/items?limit=5", "/healthz"):
        assert timed_get(served, path)[0].status_code == 200
    assert safegrid(home, "db", "down").returncode == 0
    paths = ["/collections/cameras/items?limit=5", "/collections", "/healthz",
             f"/api/grids/validate?jurisdiction={CITY}", "/tiles/roads/12/3346/1730.mvt"]
    for path in paths * 2:
        r, took = timed_get(served, path)
        assert r.status_code == 503, (path, r.status_code, r.text[:200])
        assert "database is not reachable" in r.json()["error"]
        assert took < 3, (path, took)
    status = safegrid(home, "db", "status")
    assert status.returncode == 1 and status.stdout.startswith("down")
    imported = safegrid(home, "layers")
    assert imported.returncode == 1
    assert imported.stderr.startswith("error: the database is not reachable")
    assert "Traceback" not in imported.stderr
    assert safegrid(home, "db", "up").returncode == 0
    assert_recovers(served, "/collections/cameras/items?limit=5")
    assert all(timed_get(served, p)[0].status_code == 200 for p in paths)
    assert "Traceback" not in served.output()


def _generate_grids(server: Server) -> subprocess.Popen:
    """A long edit in the background (curl): every grid of the city planned anew."""
    return subprocess.Popen(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
         f"{server.url}/api/grids/generate", "-H", f"Authorization: Bearer {server.token}",
         "-H", "Content-Type: application/json",
         "-d", f'{{"jurisdiction": "{CITY}", "target_households": 30, "replace": true}}'],
        stdout=subprocess.PIPE, text=True)


def test_an_edit_killed_with_the_server_leaves_nothing(home, db, tmp_path):
    served = _serve(home, db, tmp_path / "serve.log")  # a server of its own: it is killed
    before = fingerprint(db, "grids")
    edit = _generate_grids(served)
    try:
        wait_for_write(db, "grids", edit)
        served.proc.send_signal(signal.SIGKILL)
        served.proc.wait(timeout=10)
    finally:
        edit.wait(timeout=30)
        served.stop()
    assert_write_dropped(db, "grids")
    assert fingerprint(db, "grids") == before
    # the same edit, with a server started again, goes through whole
    again = Server(managed_cluster(home).url(), served.log, {"SAFEGRID_HOME": str(home)})
    try:
        r = requests.post(f"{again.url}/api/grids/generate", timeout=300,
                          headers={"Authorization": f"Bearer {served.token}"},
                          json={"jurisdiction": "430103002001", "target_households": 30,
                                "replace": True})
        assert r.status_code == 201, r.text[:300]
    finally:
        again.stop()
    assert fingerprint(db, "grids") != before


@pytest.fixture(scope="module")
def many_incidents(tmp_path_factory, db) -> Path:
    """60 000 incidents inside Changsha, as FlatGeobuf."""
    with db.connect() as conn:
        xmin, ymin, xmax, ymax, code = conn.execute(text(
            "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom), code "
            "FROM jurisdictions WHERE level = 'community' AND code LIKE '4301%' "
            "ORDER BY ST_Area(geom) DESC LIMIT 1")).one()
        area = conn.execute(text("SELECT ST_AsText(geom) FROM jurisdictions WHERE code = :c"),
                            {"c": code}).scalar_one()
    import shapely

    shape = shapely.from_wkt(area)
    rng = np.random.default_rng(7)
    xy = rng.uniform((xmin, ymin), (xmax, ymax), (120_000, 2))
    inside = shapely.contains_xy(shape, xy[:, 0], xy[:, 1])
    xy = xy[inside][:60_000]
    n = len(xy)
    assert n == 60_000
    frame = gpd.GeoDataFrame({
        "occurred_at": pd.Timestamp("2026-10-01", tz="UTC") + pd.to_timedelta(
            rng.integers(0, 30 * 24 * 3600, n), unit="s"),
        "category": rng.choice(["criminal", "fraud", "dispute"], n),
        "severity": rng.integers(1, 4, n),
        "jurisdiction_code": code,
    }, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs="EPSG:4326")
    path = tmp_path_factory.mktemp("incidents") / "many.fgb"
    frame.to_file(path, driver="FlatGeobuf")
    return path


def _start_import(home: Path, path: Path) -> subprocess.Popen:
    return subprocess.Popen([SAFEGRID, "import", "incidents", str(path), "--mode", "append"],
                            env=_env(home), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_an_import_killed_midway_leaves_nothing(home, db, many_incidents):
    before = fingerprint(db, "incidents")
    proc = _start_import(home, many_incidents)
    wait_for_write(db, "incidents", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert_write_dropped(db, "incidents")
    assert fingerprint(db, "incidents") == before


def _kill_database(home: Path) -> None:
    """``kill -9`` of the postmaster and every server process under it (a crash)."""
    pid = int((managed_cluster(home).datadir / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    os.kill(pid, signal.SIGKILL)
    for child in children.stdout.split():
        try:
            os.kill(int(child), signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_an_import_cut_off_by_a_database_crash_leaves_nothing(home, db, many_incidents):
    before = fingerprint(db, "incidents")
    proc = _start_import(home, many_incidents)
    wait_for_write(db, "incidents", proc)
    _kill_database(home)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "Traceback" not in err, err[-1000:]
    assert err.strip().splitlines()[-1].startswith("error:"), err[-500:]
    db.dispose()  # the pool's connections died with the server
    up = safegrid(home, "db", "up")  # crash recovery, then the same URL again
    assert up.returncode == 0, up.stderr
    assert fingerprint(db, "incidents") == before
    done = safegrid(home, "import", "incidents", str(many_incidents), "--mode", "append")
    assert done.returncode == 0, done.stderr[-500:]
    after = fingerprint(db, "incidents")
    assert after[0] == before[0] + 60_000


def test_an_edit_cut_off_by_a_database_crash_is_503_and_leaves_nothing(home, db, served):
    before = fingerprint(db, "grids")
    edit = _generate_grids(served)
    wait_for_write(db, "grids", edit)
    _kill_database(home)
    status, _ = edit.communicate(timeout=60)
    assert status == "503"  # the server answers, with the database gone mid-write
    db.dispose()
    assert safegrid(home, "db", "up").returncode == 0
    assert fingerprint(db, "grids") == before
    assert_recovers(served, "/collections/grids/items?limit=1")
    assert "Traceback" not in served.output()


def test_an_edit_waiting_on_a_held_lock_gives_up_with_503(db, served):
    with db.connect() as conn:
        camera = conn.execute(text("SELECT id FROM cameras ORDER BY id LIMIT 1")).scalar_one()
    item = f"{served.url}/collections/cameras/items/{camera}"
    auth = {"Authorization": f"Bearer {served.token}"}

    def patch(etag):
        return requests.patch(item, data='{"properties": {"fov": 33}}', timeout=30, headers={
            **auth, "If-Match": etag, "Content-Type": "application/merge-patch+json"})

    etag = requests.get(item, headers=auth, timeout=30).headers["ETag"]
    with db.connect() as holder:  # another transaction keeps the row locked
        holder.execute(text("SELECT 1 FROM cameras WHERE id = :i FOR UPDATE"), {"i": camera})
        began = time.monotonic()
        r = patch(etag)
        took = time.monotonic() - began
        holder.rollback()
    assert r.status_code == 503 and "another change holds" in r.json()["error"]
    assert 0.9 < took < 5
    assert requests.get(item, headers=auth, timeout=30).headers["ETag"] == etag
    assert patch(etag).status_code == 200  # once the lock is gone
    assert "Traceback" not in served.output()
