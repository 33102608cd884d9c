"""Row-level security: the application role sees no incident or household out of scope."""

import pytest
from sqlalchemy import text

from layers import LAYERS
from layers.access import APP_ROLE, enter_scope, read_scope
from layers.users import user_by_name

pytestmark = pytest.mark.db


def test_rls_is_on_for_the_sensitive_tables(db, demo_small):
    with db.connect() as conn:
        rows = dict(conn.execute(text(
            "SELECT relname, relrowsecurity FROM pg_class "
            "WHERE relname IN ('incidents', 'households', 'cameras')")).all())
    assert rows == {"incidents": True, "households": True, "cameras": False}


@pytest.mark.parametrize("layer", ["incidents", "households"])
def test_an_unscoped_query_returns_nothing_outside_scope(db, demo_small, layer):
    with db.connect() as conn:
        police = user_by_name(conn, "police")[0]
        outside = conn.execute(text(
            f"SELECT count(*) FROM {layer} WHERE jurisdiction_code NOT LIKE '4301%'")
        ).scalar_one()
        inside = conn.execute(text(
            f"SELECT count(*) FROM {layer} WHERE jurisdiction_code LIKE '4301%'")).scalar_one()
        assert outside > 0 and inside > 0  # as the owner: everything
        enter_scope(conn, read_scope(conn, police, LAYERS[layer]))
        assert conn.execute(text("SELECT current_user")).scalar_one() == APP_ROLE
        # deliberately no WHERE clause on scope: the policy must still hold
        assert conn.execute(text(
            f"SELECT count(*) FROM {layer} WHERE jurisdiction_code NOT LIKE '4301%'")
        ).scalar_one() == 0
        assert conn.execute(text(f"SELECT count(*) FROM {layer}")).scalar_one() == inside


def test_the_app_role_without_a_scope_sees_nothing(db, demo_small):
    with db.connect() as conn:
        conn.execute(text(f"SET LOCAL ROLE {APP_ROLE}"))
        assert conn.execute(text("SELECT count(*) FROM incidents")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM roads")).scalar_one() > 0


def test_the_app_role_cannot_read_passwords_or_tokens(db, demo_small):
    from sqlalchemy.exc import ProgrammingError

    with db.connect() as conn:
        conn.execute(text(f"SET LOCAL ROLE {APP_ROLE}"))
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("SELECT password_hash FROM users"))


def test_the_app_role_cannot_write_outside_scope(db, demo_small):
    from sqlalchemy.exc import ProgrammingError

    with db.connect() as conn:
        police = user_by_name(conn, "police")[0]
        enter_scope(conn, read_scope(conn, police, LAYERS["incidents"]))
        with pytest.raises(ProgrammingError, match="row-level security"):
            conn.execute(text(
                "INSERT INTO incidents (geom, occurred_at, category, jurisdiction_code) "
                "VALUES (ST_SetSRID(ST_MakePoint(113.1, 27.9), 4326), now(), 'other', "
                "'430202001001')"))
