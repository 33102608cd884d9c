"""The managed local PostGIS cluster under ``$SAFEGRID_HOME`` (default ``./var``).

On first use :func:`up` runs ``initdb`` into ``$SAFEGRID_HOME/pgdata``, starts the
server listening on a unix socket in ``$SAFEGRID_HOME/run`` only (TCP on 127.0.0.1
when a port is asked for) and creates the database with PostGIS. As root the server
runs as an unprivileged system user (``postgres`` when it exists, else ``safegrid``);
as a normal user it runs as that user.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
import psycopg.sql

__all__ = ["Cluster", "ClusterError", "managed_cluster"]

SUPERUSER = "safegrid"
SOCKET_PORT = 5432


class ClusterError(RuntimeError):
    """The managed cluster could not be set up, started or reached."""


def _pg_bindir() -> Path:
    """Directory of the newest installed PostgreSQL server binaries."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise ClusterError(
        "PostgreSQL server binaries (pg_ctl) not found; install postgresql and postgis "
        "(./scripts/demo does) or set SAFEGRID_DATABASE_URL to an existing PostGIS"
    )


def _server_user() -> str | None:
    """The unprivileged user the server runs as when we are root; None otherwise."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "safegrid"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "safegrid"],
        check=True,
    )
    return "safegrid"


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL data directory managed by safegrid."""

    home: Path
    database: str = "safegrid"

    @property
    def datadir(self) -> Path:
        """The cluster's data directory."""
        return self.home / "pgdata"

    @property
    def socket_dir(self) -> Path:
        """Directory of the server's unix socket (short path if the home is deep)."""
        wanted = self.home / "run"
        if len(str(wanted)) + len("/.s.PGSQL.65535") < 100:
            return wanted
        digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"safegrid-{digest}"

    @property
    def logfile(self) -> Path:
        """The server's log file."""
        return self.home / "log" / "postgresql.log"

    @property
    def port(self) -> int:
        """Port of the server (names its unix socket; TCP too when it was asked for)."""
        saved = self.home / "port"
        return int(saved.read_text()) if saved.exists() else SOCKET_PORT

    @property
    def tcp(self) -> bool:
        """Whether the server was asked to listen on 127.0.0.1 too."""
        return (self.home / "port").exists()

    def url(self, database: str | None = None) -> str:
        """SQLAlchemy URL of ``database`` (default: the cluster's) over the unix socket."""
        return (
            f"postgresql+psycopg://{SUPERUSER}@/{database or self.database}"
            f"?host={self.socket_dir}&port={self.port}"
        )

    # -- state -------------------------------------------------------------------------

    def initialised(self) -> bool:
        """Whether ``initdb`` has been run."""
        return (self.datadir / "PG_VERSION").exists()

    def running(self) -> bool:
        """Whether the server answers on its socket."""
        if not self.initialised() or self._crashed():
            return False
        result = self._run([str(_pg_bindir() / "pg_ctl"), "status", "-D", str(self.datadir)],
                           check=False)
        return result.returncode == 0

    # -- actions -----------------------------------------------------------------------

    def up(self, tcp_port: int | None = None) -> None:
        """Initialise on first use, start if stopped, create the database with PostGIS."""
        if not self.initialised():
            self._initdb()
        if tcp_port == 0:  # back to the unix socket only
            if self.tcp:
                if self.running():
                    self.down()
                (self.home / "port").unlink()
        elif tcp_port is not None:
            if not 1024 <= tcp_port <= 65535:
                raise ClusterError(f"--port must be 0 or in 1024-65535, got {tcp_port}")
            if self.running() and (not self.tcp or self.port != tcp_port):
                self.down()
            (self.home / "port").write_text(str(tcp_port))
        if not self.running():
            self._start()
        self.create_database(self.database)
        if self.tcp:
            self._set_tcp_password()

    @property
    def password_file(self) -> Path:
        """Password of the superuser for TCP connections (unix sockets need none)."""
        return self.home / "password"

    def tcp_url(self, database: str | None = None) -> str | None:
        """URL for other programs over TCP (password masked), when TCP is on."""
        if not self.tcp:
            return None
        return f"postgresql://{SUPERUSER}:***@127.0.0.1:{self.port}/{database or self.database}"

    def _set_tcp_password(self) -> None:
        if not self.password_file.exists():
            self.password_file.touch(mode=0o600)
            self.password_file.write_text(secrets.token_urlsafe(24))
        password = self.password_file.read_text().strip()
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                psycopg.sql.Identifier(SUPERUSER), psycopg.sql.Literal(password)))

    def down(self) -> bool:
        """Stop the server; return whether it was running."""
        if not self.running():
            return False
        self._run([str(_pg_bindir() / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", "fast",
                   "-w"])
        return True

    def create_database(self, name: str, *, fresh: bool = False) -> None:
        """Create database ``name`` with the postgis extension (drop it first if ``fresh``)."""
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  (name,)).fetchone()
            if exists and fresh:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )
                conn.execute(f'DROP DATABASE "{_ident(name)}"')
                exists = None
            if not exists:
                conn.execute(f'CREATE DATABASE "{_ident(name)}"')
        with psycopg.connect(self._dsn(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    # -- helpers -----------------------------------------------------------------------

    def _dsn(self, database: str) -> str:
        return f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname={database}"

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        program = Path(argv[0]).name
        user = _server_user()
        if user:
            argv = ["runuser", "-u", user, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True)
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise ClusterError(
                f"{program} failed: "
                f"{detail[-1] if detail else 'exit code ' + str(result.returncode)}"
                f" (log: {self.logfile})"
            )
        return result

    def _prepare_dirs(self) -> None:
        user = _server_user()
        for path in (self.home, self.datadir, self.socket_dir, self.logfile.parent):
            path.mkdir(parents=True, exist_ok=True)
        self.datadir.chmod(0o700)
        if user:
            entry = pwd.getpwnam(user)
            for path in (self.datadir, self.socket_dir, self.logfile.parent):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            probe = self._run(["test", "-w", str(self.datadir)], check=False)
            if probe.returncode != 0:
                raise ClusterError(
                    f"the database server user {user!r} cannot reach {self.datadir}; "
                    "set SAFEGRID_HOME to a directory every user can traverse"
                )

    def _write_hba(self) -> None:
        """Trust the private unix socket; TCP (only when asked for) needs the password."""
        hba = self.datadir / "pg_hba.conf"
        hba.write_text(
            "# written by safegrid at every start\n"
            "local all all trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host all all ::1/128 scram-sha-256\n"
        )
        user = _server_user()
        if user:
            entry = pwd.getpwnam(user)
            os.chown(hba, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        self._prepare_dirs()
        self._run([
            str(_pg_bindir() / "initdb"), "-D", str(self.datadir), "-U", SUPERUSER,
            "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
            "--locale=C.UTF-8",
        ])
        settings = {
            "listen_addresses": "''",
            "unix_socket_permissions": "0700",
            "shared_buffers": "'256MB'",
            "work_mem": "'32MB'",
            "maintenance_work_mem": "'256MB'",
            "max_wal_size": "'2GB'",
            "max_connections": "100",
        }
        conf = "".join(f"{k} = {v}\n" for k, v in settings.items())
        with open(self.datadir / "postgresql.conf", "a", encoding="utf-8") as fh:
            fh.write("\n# safegrid managed cluster\n" + conf)

    def _crashed(self) -> bool:
        """Whether ``postmaster.pid`` names a server that is gone.

        Killed, or a zombie nobody reaped: PostgreSQL and pg_ctl take a zombie for alive.
        """
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, and someone else's
            return False
        try:  # alive to kill(): a zombie too, so look at its state where we can
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):  # no procfs, or hidden from us: take it for alive
            return False
        return state in ("Z", "X")

    def _remove_stale_locks(self) -> None:
        """After a crash, the lock files of the dead server (it cannot remove them)."""
        if not self._crashed():
            return
        for lock in (self.datadir / "postmaster.pid",
                     self.socket_dir / f".s.PGSQL.{self.port}.lock"):
            lock.unlink(missing_ok=True)

    def _start(self) -> None:
        self._prepare_dirs()
        self._remove_stale_locks()
        self._write_hba()
        listen = "127.0.0.1" if self.tcp else "''"
        self._run([
            str(_pg_bindir() / "pg_ctl"), "start", "-D", str(self.datadir), "-w", "-t", "60",
            "-l", str(self.logfile),
            "-o", f"-k {self.socket_dir} -c listen_addresses={listen} -c port={self.port}",
        ])


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ClusterError(f"database name {name!r} must be letters, digits and underscores")
    return name


def managed_cluster(home: str | os.PathLike | None = None, database: str = "safegrid") -> Cluster:
    """The cluster under ``home`` (default ``$SAFEGRID_HOME`` or ``./var``)."""
    base = Path(home or os.environ.get("SAFEGRID_HOME") or "var").resolve()
    return Cluster(base, database)
