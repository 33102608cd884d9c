"""Which database safegrid talks to, its engine, and its migrations.

``SAFEGRID_DATABASE_URL`` names an existing PostGIS; otherwise the managed local
cluster (:mod:`layers.cluster`) under ``$SAFEGRID_HOME`` is used.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from .cluster import Cluster, managed_cluster

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "check_duration",
    "database_url",
    "downgrade_all",
    "engine",
    "external_url",
    "head_revision",
    "migrate",
    "ping",
    "schema_revision",
]

_MIGRATIONS = Path(__file__).with_name("migrations")


def external_url() -> str | None:
    """``SAFEGRID_DATABASE_URL`` normalised to the psycopg 3 driver, or None."""
    url = os.environ.get("SAFEGRID_DATABASE_URL", "").strip()
    if not url:
        return None
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgis"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def database_url(cluster: Cluster | None = None) -> str:
    """The URL every command uses: the external one, else the managed cluster's."""
    return external_url() or (cluster or managed_cluster()).url()


@cache
def engine(url: str | None = None, pooled: bool = True, lock_timeout: str | None = None,
           statement_timeout: str | None = None) -> Engine:
    """A pooled engine for ``url`` (default :func:`database_url`); one per set of arguments.

    ``pooled=False``: every connection is closed when released (batch workers).
    ``lock_timeout`` / ``statement_timeout`` (PostgreSQL durations such as ``"10s"``):
    a statement waiting longer for a lock, or running longer, is cancelled (the web
    app's requests; see :func:`check_duration`).
    """
    pool: dict = {"pool_size": 8, "max_overflow": 8, "pool_timeout": 10} if pooled else \
        {"poolclass": NullPool}
    # JIT compiling costs tens of milliseconds and buys nothing on the short queries of
    # a web request (PostGIS functions have high nominal costs).
    options = ["-c jit=off"] + [
        f"-c {name}={check_duration(name, value)}" for name, value in
        (("lock_timeout", lock_timeout), ("statement_timeout", statement_timeout)) if value]
    return create_engine(
        url or database_url(),
        pool_pre_ping=True,
        **pool,
        connect_args={"connect_timeout": 5, "options": " ".join(options)},
    )


def check_duration(name: str, value: str) -> str:
    """``value`` if it is a PostgreSQL duration (``250ms``, ``10s``, ``5min``, ``0``: none)."""
    if not re.fullmatch(r"\d+(ms|s|min|h)?", str(value).strip()):
        raise ValueError(f"{name} {value!r} is not a duration like '10s', '500ms' or '2min'")
    return str(value).strip()


def _alembic_config(url: str) -> Config:
    from alembic.config import Config  # Alembic loads only when migrations are looked at

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str | None = None) -> None:
    """Apply every Alembic migration to the database at ``url``."""
    from alembic import command

    command.upgrade(_alembic_config(url or database_url()), "head")


def downgrade_all(url: str | None = None) -> None:
    """Undo every migration: drops all safegrid tables (data included)."""
    from alembic import command

    command.downgrade(_alembic_config(url or database_url()), "base")


def head_revision() -> str:
    """The newest migration's revision."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config("postgresql://")).get_current_head()


def schema_revision(url: str | None = None) -> str | None:
    """The Alembic revision the database is at, or None when unmigrated."""
    from alembic.runtime.migration import MigrationContext

    with engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ping(db: Engine) -> None:
    """Ask the database for one row: an error (OperationalError) when it does not answer."""
    with db.connect() as conn:
        conn.execute(text("SELECT 1"))


def postgis_version(url: str | None = None) -> str:
    """``PostgreSQL x.y / PostGIS a.b.c`` of the database at ``url``."""
    with engine(url).connect() as conn:
        pg = conn.execute(text("SHOW server_version")).scalar_one()
        gis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    return f"PostgreSQL {pg.split()[0]} / PostGIS {gis}"
