"""Two cities, two servers: a fixture for border work between separate installations.

``two_cities`` (module scope; a test module takes it with ``from . import twocities``
and ``two_cities = twocities.two_cities``) sets up, all through the
``safegrid`` command line as two administrators would:

- two managed PostgreSQL clusters, each under a temporary ``SAFEGRID_HOME`` of its own
  (``safegrid db up`` with that home: its own data directory and unix socket directory,
  no TCP port), never ``./var``;
- ``safegrid demo --only 430100`` (长沙, city A) in one and ``--only 430300`` (湘潭, city B)
  in the other (small scale, seed 1, ending on :data:`tests.conftest.DEMO_END`);
- on each, a ``border_partner`` user for the other city (``peer_430300`` on A, whose token
  B's server presents, ``peer_430100`` on B) and its API token (``safegrid users add``,
  ``safegrid users token``), also in ``tokens["peer"]``; and tokens for the demo users
  ``admin``, ``planner``, ``police``, ``partner`` (issued in process, to save seconds);
- two servers, ``safegrid serve`` on free loopback ports, each with its own home (so each
  finds its own peers' token files) and its access log in :attr:`City.log`;
- peers both ways: on A ``xiangtan`` -> B's server for the 430100-430300 border, with B's
  ``peer_430100`` token, and on B ``changsha`` -> A's server with A's ``peer_430300`` token
  (``safegrid peers add ... --token-stdin``);
- a third database, ``reference`` in cluster A, holding ``demo --only 430100 --only 430300``:
  the same data in one database, for "two servers give the one-database answer".

It yields a :class:`TwoCities`: ``a`` and ``b`` (:class:`City`: code, home, database URL,
server URL, tokens, ``cli(...)``, ``get(user, path)``, ``access_log()``), ``reference_url``,
``stop_b()`` / ``start_b()`` (B's server goes down and comes back on the same URL),
``setup_seconds`` and ``steps`` (seconds per step of the set-up). At teardown the
servers stop, both clusters are stopped with ``safegrid db down`` and the homes removed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine

from layers.cluster import managed_cluster

from ..conftest import DEMO_END, SAFEGRID, answers

__all__ = ["A", "B", "City", "TwoCities", "two_cities"]

A, B = "430100", "430300"
PEER_NAMES = {A: "changsha", B: "xiangtan"}  # the name each city's server has for the other
DEMO_TOKENS = ("admin", "planner", "police", "partner")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SAFEGRID_DATABASE_URL", "SAFEGRID_TEST_DATABASE_URL")}
    env["SAFEGRID_HOME"] = str(home)
    if database_url:
        env["SAFEGRID_DATABASE_URL"] = database_url
    return env


def _check(result: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if result.returncode != 0:
        pytest.fail(f"{what} failed: {result.stderr.strip()[-2000:]}")
    return result


def _together(jobs: list[tuple[list[str], dict, str]]) -> None:
    """Run ``safegrid`` commands at the same time (two clusters, two cores); fail on any."""
    procs = [(subprocess.Popen([SAFEGRID, *argv], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True), what)
             for argv, env, what in jobs]
    for proc, what in procs:
        out, err = proc.communicate(timeout=600)
        _check(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), what)


@dataclass
class City:
    """One city's installation: its home, database, server and tokens."""

    code: str
    home: Path
    db_url: str
    port: int
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Base URL of the city's server."""
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        """``safegrid ARGS`` as this city's administrator (its home and database)."""
        return subprocess.run([SAFEGRID, *args], capture_output=True, text=True,
                              env=_env(self.home, self.db_url), input=input, timeout=300)

    def get(self, user: str, path: str, **kw) -> requests.Response:
        """GET ``path`` on this city's server as ``user`` (a key of :attr:`tokens`)."""
        headers = {"Authorization": f"Bearer {self.tokens[user]}", **kw.pop("headers", {})}
        return requests.get(f"{self.url}{path}", headers=headers, timeout=60, **kw)

    def start(self) -> None:
        """Start ``safegrid serve`` on :attr:`port` and wait until it answers."""
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [SAFEGRID, "serve", "--port", str(self.port)], env=_env(self.home, self.db_url),
                stdout=out, stderr=subprocess.STDOUT)
        if answers(self.url, self.proc):
            return
        self.stop()
        pytest.fail(f"safegrid serve of {self.code} did not come up: "
                    f"{self.log.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        """Stop the server (killed when it does not stop within 10 s); no-op when stopped."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def access_log(self) -> str:
        """Everything the server printed so far (one line per request)."""
        return self.log.read_text(errors="replace")


@dataclass
class TwoCities:
    """City A (430100) and city B (430300) on two servers, and the one-database reference."""

    a: City
    b: City
    reference_url: str
    setup_seconds: float
    steps: dict[str, float]  # seconds each step of the set-up took

    def stop_b(self) -> None:
        """Take B's server down (its database stays up)."""
        self.b.stop()

    def start_b(self) -> None:
        """Bring B's server back on the same URL."""
        if self.b.proc is None:
            self.b.start()


def _new_home(code: str) -> Path:
    home = Path(tempfile.mkdtemp(prefix=f"safegrid-{code}-", dir="/tmp"))
    os.chmod(home, 0o755)  # the server user must reach it when we are root
    return home


def _issue(city: City, name: str) -> str:
    out = _check(city.cli("users", "token", name), f"users token {name} on {city.code}")
    return out.stdout.strip().splitlines()[-1]


def _demo_tokens(city: City) -> dict[str, str]:
    """Tokens of the demo users (in process: a command each would cost seconds)."""
    from layers.users import issue_token

    db = create_engine(city.db_url)
    try:
        with db.begin() as conn:
            return {user: issue_token(conn, user) for user in DEMO_TOKENS}
    finally:
        db.dispose()


def _partner_user(city: City, other: City) -> None:
    """A border_partner user of ``city`` for ``other``, and its token, with the CLI."""
    name = f"peer_{other.code}"
    _check(city.cli("users", "add", name, "--role", "border_partner", "--jurisdiction",
                    city.code, "--partner", other.code, "--password-stdin",
                    input="peer-password-2026\n"), f"users add {name}")
    city.tokens.update(_demo_tokens(city))
    city.tokens[name] = city.tokens["peer"] = _issue(city, name)


def _add_peer(city: City, other: City) -> None:
    _check(city.cli("peers", "add", PEER_NAMES[other.code], other.url, "--border",
                    f"{city.code}-{other.code}", "--token-stdin",
                    input=other.tokens["peer"] + "\n"), f"peers add on {city.code}")


def _both(work, a: City, b: City) -> None:
    """``work(a, b)`` and ``work(b, a)`` at the same time."""
    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(work, a, b), pool.submit(work, b, a)]:
            done.result()


def _set_up(cities: dict[str, City], reference_url: str, steps: dict[str, float]) -> None:
    a, b = cities[A], cities[B]
    t = time.perf_counter()

    def step(name: str) -> None:
        nonlocal t
        steps[name] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()

    _together([(["db", "up"], _env(c.home), f"db up for {c.code}") for c in (a, b)])
    managed_cluster(a.home).create_database("reference")
    _check(subprocess.run([SAFEGRID, "db", "up"], env=_env(a.home, reference_url),
                          capture_output=True, text=True, timeout=300), "db up of reference")
    step("clusters up")
    end = DEMO_END.isoformat()
    _together([
        (["demo", "--only", A, "--end", end], _env(a.home, a.db_url), "demo --only A"),
        (["demo", "--only", B, "--end", end], _env(b.home, b.db_url), "demo --only B"),
        (["demo", "--only", A, "--only", B, "--end", end], _env(a.home, reference_url),
         "demo of the reference"),
    ])
    step("demos loaded")
    _both(_partner_user, a, b)
    step("users and tokens")
    _both(lambda city, _other: city.start(), a, b)
    step("servers up")
    _both(_add_peer, a, b)
    step("peers added")


@pytest.fixture(scope="module")
def two_cities(tmp_path_factory) -> Iterator[TwoCities]:
    """Two installations (430100 and 430300) with servers and peers; see the module."""
    t0 = time.perf_counter()
    logs = tmp_path_factory.mktemp("two_cities")
    cities = {}
    for code in (A, B):
        home = _new_home(code)
        cities[code] = City(code, home, managed_cluster(home).url(), _free_port(),
                            logs / f"serve_{code}.log")
    reference_url = managed_cluster(cities[A].home).url("reference")
    steps: dict[str, float] = {}
    try:
        _set_up(cities, reference_url, steps)
        yield TwoCities(cities[A], cities[B], reference_url, time.perf_counter() - t0, steps)
    finally:
        for city in cities.values():
            city.stop()
        for city in cities.values():
            subprocess.run([SAFEGRID, "db", "down"], env=_env(city.home), capture_output=True,
                           timeout=120)
            shutil.rmtree(city.home, ignore_errors=True)
