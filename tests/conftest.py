"""Shared fixtures: the real test database, the demo in it, the CLI and a live server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from layers.cluster import ClusterError, managed_cluster
from layers.db import engine, migrate

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SAFEGRID = str(Path(sys.executable).with_name("safegrid"))


@pytest.fixture(scope="session")
def db_url() -> str:
    """A fresh, migrated database ``safegrid_test`` in the managed cluster.

    The suite must not pass without the database: failing to reach it stops the run.
    """
    url = os.environ.get("SAFEGRID_TEST_DATABASE_URL")
    if not url:
        cluster = managed_cluster()
        try:
            cluster.up()
            cluster.create_database("safegrid_test", fresh=True)
        except (ClusterError, OSError) as exc:
            pytest.exit(f"database tests cannot run: {exc}", returncode=1)
        url = cluster.url("safegrid_test")
    migrate(url)
    return url


@pytest.fixture(scope="session")
def db(db_url):
    """The engine of the test database."""
    return engine(db_url)


@pytest.fixture(scope="session")
def demo_small(db) -> dict[str, int]:
    """The small demo (seed 1) loaded into the test database; counts per layer."""
    from layers import demo

    return demo.load(db, "small", 1)


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


@contextmanager
def running_server(db_url: str, log: Path | None = None) -> Iterator[str]:
    """``safegrid serve`` on ``db_url`` on a free loopback port; yields its base URL.

    The server's output goes to ``log`` (a temporary file when None), not to a pipe that
    nobody reads and that would stall the server once full.
    """
    port = _free_port()
    env = {**os.environ, "SAFEGRID_DATABASE_URL": db_url}
    with (open(log, "w+") if log else tempfile.TemporaryFile("w+")) as out:
        proc = subprocess.Popen([SAFEGRID, "serve", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT, text=True)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.3)
        else:
            proc.kill()
            proc.wait(timeout=10)
            out.seek(0)
            pytest.fail(f"safegrid serve did not come up: {out.read()}")
        try:
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def server(db_url, demo_small):
    """A real ``safegrid serve`` process on a free loopback port; yields its base URL."""
    with running_server(db_url) as base:
        yield base


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


def login(server: str, user: str, password: str | None = None) -> requests.Session:
    """A browser-like session logged in through the /login form."""
    import re

    from layers.demo import DEMO_USERS

    password = password or next(u["password"] for u in DEMO_USERS if u["name"] == user)
    s = requests.Session()
    form = s.get(f"{server}/login", timeout=10).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    r = s.post(f"{server}/login", data={"csrf": csrf, "name": user, "password": password,
                                        "next": "/map"}, timeout=30, allow_redirects=False)
    assert r.status_code == 302, r.text
    return s
