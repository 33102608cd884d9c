"""The managed local PostGIS: up, status, down, reset, on a private SAFEGRID_HOME."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from layers.cluster import managed_cluster
from layers.db import head_revision
from tests.conftest import SAFEGRID

pytestmark = [pytest.mark.db, pytest.mark.slow]


def _run(home, *args):
    env = {k: v for k, v in os.environ.items() if k != "SAFEGRID_DATABASE_URL"}
    env["SAFEGRID_HOME"] = str(home)
    return subprocess.run([SAFEGRID, *args], capture_output=True, text=True, env=env,
                          timeout=180)


def test_lifecycle_of_a_private_cluster():
    home = Path(tempfile.mkdtemp(prefix="safegrid-home-"))
    os.chmod(home, 0o755)  # the server user must reach it when we are root
    down = _run(home, "db", "status")
    assert down.returncode == 1 and "not created yet" in down.stdout
    try:
        up = _run(home, "db", "up")
        assert up.returncode == 0, up.stderr
        assert (home / "pgdata" / "PG_VERSION").exists()
        status = _run(home, "db", "status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "up: PostgreSQL" in status.stdout and "PostGIS 3" in status.stdout
        assert f"revision {head_revision()}" in status.stdout
        assert f"host={str(home / 'run').replace('/', '%2F')}" in status.stdout
        conf = (home / "pgdata" / "postgresql.conf").read_text()
        assert "listen_addresses = ''" in conf  # no TCP port unless asked
        assert _run(home, "db", "up").returncode == 0  # idempotent
        _check_tcp(home)
        layers = _run(home, "layers", "--json")
        assert layers.returncode == 0 and '"count": 0' in layers.stdout
        reset = _run(home, "db", "reset", "--yes")
        assert reset.returncode == 0 and "all layers are empty" in reset.stdout
        stopped = _run(home, "db", "down")
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        after = _run(home, "db", "status")
        assert after.returncode == 1 and after.stdout.startswith("down")
    finally:  # clean up without another command: stop the server if a check failed
        managed_cluster(home).down()
        shutil.rmtree(home, ignore_errors=True)


def _check_tcp(home):
    """--port adds TCP on 127.0.0.1 with a password; --port 0 takes it away."""
    import psycopg

    from tests.conftest import _free_port

    port = _free_port()
    up = _run(home, "db", "up", "--port", str(port))
    assert up.returncode == 0, up.stderr
    status = _run(home, "db", "status").stdout
    assert f"tcp: postgresql://safegrid:***@127.0.0.1:{port}/safegrid" in status
    password = (home / "password").read_text().strip()
    assert (home / "password").stat().st_mode & 0o077 == 0
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=port, user="safegrid", dbname="safegrid",
                        password="wrong", connect_timeout=5)
    with psycopg.connect(host="127.0.0.1", port=port, user="safegrid", dbname="safegrid",
                         password=password, connect_timeout=5) as conn:
        assert conn.execute("SELECT postgis_lib_version()").fetchone()[0].startswith("3")
    assert _run(home, "db", "up", "--port", "80").returncode != 0
    off = _run(home, "db", "up", "--port", "0")
    assert off.returncode == 0, off.stderr
    assert "tcp:" not in _run(home, "db", "status").stdout
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=port, user="safegrid", dbname="safegrid",
                        password=password, connect_timeout=5)


def test_unreachable_home_is_a_readable_error(tmp_path):
    from layers.cluster import _server_user

    if os.geteuid() != 0:  # a normal user runs the server as themself: nothing to reach
        assert _server_user() is None
        return
    assert _server_user() in ("postgres", "safegrid")
    home = tmp_path / "private"
    home.mkdir(mode=0o700)
    os.chmod(tmp_path, 0o700)
    result = _run(home, "db", "up")
    assert result.returncode == 1
    assert "cannot reach" in result.stderr and "SAFEGRID_HOME" in result.stderr
    assert "Traceback" not in result.stderr
