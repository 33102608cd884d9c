"""Shared fixtures: the real test database, the demo in it, the CLI and a live server."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from layers.cluster import ClusterError, managed_cluster
from layers.db import engine, migrate

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
# The demo the tests load ends on a fixed day, so that periods in tests mean the same
# data whatever day they run: its incidents span 2025-11-01 to 2026-10-31 (CST).
DEMO_END = dt.date(2026, 10, 31)
SAFEGRID = str(Path(sys.executable).with_name("safegrid"))


def pytest_sessionfinish(session) -> None:
    """Close the headless Chromium the browser tests shared, if one was started."""
    browser = sys.modules.get("tests.webmap.browser")
    if browser is not None:
        browser.close_chromium()


_RUN_DIR: list[Path] = []  # the test run's directory shared by its workers, once known


@pytest.fixture(scope="session", autouse=True)
def _run_dir(tmp_path_factory) -> None:
    """Note this run's shared directory (see :func:`shared_dir`) for :func:`demo_database`."""
    _RUN_DIR[:] = [shared_dir(tmp_path_factory)]


def _base_name() -> str:
    """The name of the test database before pytest-xdist adds a worker's suffix."""
    external = os.environ.get("SAFEGRID_TEST_DATABASE_URL")
    return make_url(external).database if external else "safegrid_test"


def _template_name(kind: str) -> str:
    """The template database of the ``kind`` demo for this run's processes: the workers
    of a pytest-xdist run share one, a process of its own (the API fuzzing, running
    beside them) has another."""
    return f"{_base_name()}{'_workers' if _worker_suffix() else ''}_{kind}_template"


def _worker_suffix() -> str:
    """``_gw0``, ``_gw1``... under pytest-xdist (each worker has databases of its own)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return f"_{worker}" if worker else ""


@pytest.fixture(scope="session")
def db_url() -> str:
    """A fresh, migrated database ``safegrid_test`` in the managed cluster.

    The suite must not pass without the database: failing to reach it stops the run.
    """
    url = os.environ.get("SAFEGRID_TEST_DATABASE_URL")
    if not url:
        cluster = managed_cluster()
        name = "safegrid_test" + _worker_suffix()
        try:
            cluster.up()
            cluster.create_database(name, fresh=True)
        except (ClusterError, OSError) as exc:
            pytest.exit(f"database tests cannot run: {exc}", returncode=1)
        url = cluster.url(name)
    elif _worker_suffix():
        url = fresh_database(make_url(url).database + _worker_suffix())
    migrate(url)
    return url


def fresh_database(name: str) -> str:
    """An empty PostGIS database ``name`` next to the test database (dropped first); its URL."""
    external = os.environ.get("SAFEGRID_TEST_DATABASE_URL")
    if not external:
        cluster = managed_cluster()
        cluster.up()
        cluster.create_database(name, fresh=True)
        return cluster.url(name)
    url = make_url(external)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    own = url.set(database=name).render_as_string(hide_password=False)
    with create_engine(own).begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    return own


def _admin_url():
    """URL of the ``postgres`` database of the server the test databases live on."""
    external = os.environ.get("SAFEGRID_TEST_DATABASE_URL")
    if external:
        return make_url(external).set(database="postgres")
    cluster = managed_cluster()
    cluster.up()
    return make_url(cluster.url("postgres"))


def shared_dir(tmp_path_factory) -> Path:
    """A directory of this test run that every pytest-xdist worker of the run shares
    (the run's base temporary directory; each worker's own is inside it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if _worker_suffix() else base


def copied_database(name: str, template: str, build: Callable[[str], None],
                    shared: Path) -> str:
    """A fresh database ``name`` copied from the database ``template``; its URL.

    ``template`` is made once per test run: the first caller, holding a lock in the
    ``shared`` directory (see :func:`shared_dir`), creates and migrates it and calls
    ``build(url)`` to fill it (``build`` closes its connections: PostgreSQL copies a
    database nobody is connected to); a template left by an earlier run is made
    anew. The others wait for it and copy it (``CREATE DATABASE ... TEMPLATE``: half
    a second for the city demo, which takes half a minute or more to load).
    """
    with open(shared / f"{template}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        built = shared / f"{template}.built"
        if not built.exists():
            url = fresh_database(template)
            migrate(url)
            build(url)
            built.touch()
        admin_url = _admin_url()
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                # a connection left in a pool somewhere would make the copy fail
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = :t"), {"t": template})
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        finally:
            admin.dispose()
    return admin_url.set(database=name).render_as_string(hide_password=False)


def _load_small(url: str) -> None:
    """The small demo (seed 1, ending on :data:`DEMO_END`) into the database at ``url``."""
    from layers import demo

    demo.load(engine(url), "small", 1, end=DEMO_END)
    engine(url).dispose()


def demo_database(name: str) -> str:
    """A fresh database ``name`` with the small demo (seed 1), migrated; its URL.

    For tests that write a lot (load, fuzzing) and must not change the shared one. In a
    test run it is a copy of a template the run loads once (see :func:`copied_database`).
    """
    if _RUN_DIR:
        return copied_database(name, _template_name("small"), _load_small,
                               _RUN_DIR[0])
    url = fresh_database(name)
    migrate(url)
    _load_small(url)
    return url


@pytest.fixture(scope="session")
def db(db_url):
    """The engine of the test database."""
    return engine(db_url)


@pytest.fixture(scope="session")
def demo_small(db) -> dict[str, int]:
    """The small demo (seed 1) loaded into the test database; counts per layer."""
    from layers import demo

    return demo.load(db, "small", 1, end=DEMO_END)


def run_cli(db_url: str, *args: str, input: str | None = None,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the ``safegrid`` command against the test database."""
    full_env = {**os.environ, "SAFEGRID_DATABASE_URL": db_url, **(env or {})}
    return subprocess.run([SAFEGRID, *args], capture_output=True, text=True, env=full_env,
                          input=input, timeout=300)


@pytest.fixture(scope="session")
def cli(db_url):
    """``cli("import", ...)`` runs the command line against the test database."""
    return lambda *args, **kw: run_cli(db_url, *args, **kw)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str, proc: subprocess.Popen, seconds: float = 60.0) -> bool:
    """Whether the server at ``url`` answers ``/healthz`` within ``seconds`` (False as
    soon as its process ``proc`` has ended)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return True
        except requests.ConnectionError:
            if proc.poll() is not None:
                return False
            time.sleep(0.2)
    return False


class Server:
    """A real ``safegrid serve`` process on a free loopback port, its output in ``log``."""

    def __init__(self, db_url: str, log: Path, env: dict | None = None, *args: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        full_env = {**os.environ, "SAFEGRID_DATABASE_URL": db_url, **(env or {})}
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [SAFEGRID, "serve", "--port", str(self.port), *args], env=full_env,
                stdout=out, stderr=subprocess.STDOUT)
        if not answers(self.url, self.proc):
            self.stop()
            pytest.fail(f"safegrid serve did not come up: {log.read_text()[-2000:]}")

    def output(self) -> str:
        """Everything the server printed so far."""
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Terminate the server (kill it when it does not stop within 10 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def live_server(db_url, demo_small, tmp_path_factory) -> Server:
    """The shared server of the HTTP tests, on the test database with the small demo."""
    server = Server(db_url, tmp_path_factory.mktemp("server") / "serve.log")
    yield server
    server.stop()


def _load_city(url: str) -> None:
    """The city demo (seed 1, ending on :data:`DEMO_END`) into the database at ``url``."""
    from layers import demo

    demo.load(engine(url), "city", 1, end=DEMO_END)
    engine(url).dispose()


@pytest.fixture(scope="session")
def city_server(db_url, tmp_path_factory):
    """(URL, engine) of a server of its own on the city demo (seed 1, ending on
    :data:`DEMO_END`), in a database named after the suite's; for the tests that must
    see the city's sizes (page budgets, each role's day).

    The city demo is loaded once per test run (about half a minute, more on a busy
    machine) into a template database, and each worker's database is a copy of it.
    """
    url = copied_database(f"{make_url(db_url).database}_city", _template_name("city"),
                          _load_city, shared_dir(tmp_path_factory))
    city_engine = engine(url)
    server = Server(url, tmp_path_factory.mktemp("city") / "serve.log")
    try:
        yield server.url, city_engine
    finally:
        server.stop()
        city_engine.dispose()


@pytest.fixture(scope="session")
def server(live_server) -> str:
    """The base URL of the shared server."""
    return live_server.url


@pytest.fixture(scope="session")
def tokens(db, demo_small) -> dict[str, str]:
    """An API token for each demo user (admin, planner, police, partner, viewer)."""
    from layers.demo import DEMO_USERS
    from layers.users import issue_token

    with db.begin() as conn:
        return {u["name"]: issue_token(conn, u["name"]) for u in DEMO_USERS}


@pytest.fixture(scope="session")
def api(server, tokens):
    """``api(user, path, **kw)``: a GET (or ``method=``) as that demo user; None: anonymous."""

    def call(user: str | None, path: str, method: str = "GET", **kw) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        if user:
            headers["Authorization"] = f"Bearer {tokens[user]}"
        return requests.request(method, f"{server}{path}", headers=headers, timeout=60, **kw)

    return call


def demo_password(user: str) -> str:
    """The demo password of ``user``."""
    from layers.demo import DEMO_USERS

    return next(u["password"] for u in DEMO_USERS if u["name"] == user)


def login_form(session: requests.Session, server: str, user: str, password: str,
               **fields: str) -> requests.Response:
    """Fill in the /login form (with its CSRF token) in ``session``; the answer."""
    import re

    form = session.get(f"{server}/login", timeout=10).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    return session.post(f"{server}/login", timeout=30, allow_redirects=False,
                        data={"csrf": csrf, "name": user, "password": password, **fields})


def login(server: str, user: str, password: str | None = None) -> requests.Session:
    """A browser-like session logged in through the /login form."""
    s = requests.Session()
    r = login_form(s, server, user, password or demo_password(user), next="/map")
    assert r.status_code == 302, r.text
    return s
