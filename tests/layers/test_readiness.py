"""Whether the database answers (/healthz) and already holds data (demo --unless-loaded)."""

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from layers.db import engine, migrate, ping
from layers.demo import is_loaded
from tests.conftest import fresh_database

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def empty_url(db_url) -> str:
    """A migrated database next to the test database, with no data at all."""
    url = fresh_database(f"{make_url(db_url).database}_empty")
    migrate(url)
    return url


def test_a_database_with_jurisdictions_is_loaded_and_an_empty_one_is_not(db, demo_small,
                                                                         empty_url):
    assert is_loaded(db)
    assert not is_loaded(engine(empty_url))


def test_ping_answers_or_raises(db_url, db):
    assert ping(db) is None
    gone = engine(make_url(db_url).set(database="safegrid_no_such_database")
                  .render_as_string(hide_password=False))
    with pytest.raises(OperationalError):
        ping(gone)
    gone.dispose()


def _versions(db) -> dict[str, int]:
    with db.connect() as conn:
        return dict(conn.execute(text("SELECT layer, version FROM layer_versions")).all())


def test_demo_unless_loaded_leaves_loaded_data_alone(cli, db, demo_small):
    before = _versions(db)
    r = cli("demo", "--unless-loaded")
    assert r.returncode == 0, r.stderr
    assert "already loaded, left as it is" in r.stdout
    assert _versions(db) == before  # nothing written
