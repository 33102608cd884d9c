"""``safegrid users``: add, list, token, remove, and every bad input refused."""

import pytest
import requests
from sqlalchemy import text

from ..clihelp import run_in_process

pytestmark = pytest.mark.db


def _users(db):
    with db.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM users")).scalar_one(), conn.execute(
            text("SELECT count(*) FROM api_tokens")).scalar_one()


def test_add_token_use_list_remove(cli, db, server, demo_small):
    added = cli("users", "add", "wang.li", "--role", "planner", "--jurisdiction", "430300",
                "--password-stdin", input="a-long-password\n")
    assert added.returncode == 0, added.stderr
    assert "wang.li added (planner, 430300)" in added.stdout
    token = cli("users", "token", "wang.li").stdout.strip().splitlines()[-1]
    assert token.startswith("sg_") and len(token) > 30
    with db.connect() as conn:  # stored hashed, never in clear
        stored = conn.execute(text(
            "SELECT token_hash, password_hash FROM api_tokens t JOIN users u "
            "ON u.id = t.user_id WHERE u.name = 'wang.li'")).one()
    assert token not in stored[0] and "a-long-password" not in stored[1]
    assert stored[1].startswith("scrypt$")
    grids = requests.get(f"{server}/collections/grids/items", timeout=30,
                         headers={"Authorization": f"Bearer {token}"}).json()
    assert {f["properties"]["jurisdiction_code"][:4] for f in grids["features"]} == {"4303"}
    listing = cli("users", "list").stdout
    assert "wang.li" in listing and "planner" in listing and "430300" in listing
    removed = cli("users", "remove", "wang.li")
    assert removed.returncode == 0
    after = requests.get(f"{server}/collections/grids/items", timeout=30,
                         headers={"Authorization": f"Bearer {token}"})
    assert after.status_code == 401  # its tokens went with it


@pytest.mark.parametrize(("args", "password", "message"), [
    (["x1", "--role", "wizard", "--jurisdiction", "430100"], "long-enough-1", "wizard"),
    (["x2", "--role", "planner"], "long-enough-1", "needs --jurisdiction"),
    (["x3", "--role", "planner", "--jurisdiction", "999"], "long-enough-1",
     "'999' is not a jurisdiction code"),
    (["x4", "--role", "border_partner", "--jurisdiction", "430100"], "long-enough-1",
     "needs --partner"),
    (["x5", "--role", "viewer", "--jurisdiction", "430100", "--partner", "430300"],
     "long-enough-1", "border_partner users only"),
    (["x6", "--role", "viewer", "--jurisdiction", "430100"], "short", "at least 8"),
    (["admin", "--role", "admin"], "long-enough-1", "already exists"),
    (["bad name!", "--role", "admin"], "long-enough-1", "must be letters"),
    (["x7", "--role", "police", "--jurisdiction", "430100", "--incidents", "cells"],
     "long-enough-1", "--incidents is for border_partner users only"),
    (["x8", "--role", "border_partner", "--jurisdiction", "430300", "--partner", "430100",
      "--incidents", "heatmap"], "long-enough-1", "'heatmap' is not one of"),
])
def test_bad_user_input_is_refused_and_nothing_written(db, db_url, demo_small, args,
                                                       password, message):
    # `safegrid users add` in this process: the same command, its message and exit code,
    # without a new process's start-up per case (the other tests run it as a process)
    before = _users(db)
    result = run_in_process(db_url, "users", "add", *args, "--password-stdin",
                            input=password + "\n")
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert _users(db) == before


def test_token_and_remove_of_unknown_users_fail(cli, db, demo_small):
    before = _users(db)
    for command in (["token", "nobody"], ["remove", "nobody"]):
        result = cli("users", *command)
        assert result.returncode != 0 and "no user called 'nobody'" in result.stderr
    assert _users(db) == before


def test_what_a_border_partner_is_given_of_our_incidents(cli, db, db_url, server, demo_small):
    """``--incidents cells`` on add, ``users set`` to change it: the partner's token is
    refused the incident points and reads the cells instead, then the points again."""
    added = cli("users", "add", "xt.border", "--role", "border_partner", "--jurisdiction",
                "430300", "--partner", "430100", "--incidents", "cells", "--password-stdin",
                input="a-long-password\n")
    assert added.returncode == 0, added.stderr
    assert "(border_partner, 430300, partner 430100, incidents as cells)" in added.stdout
    try:
        token = cli("users", "token", "xt.border").stdout.strip().splitlines()[-1]
        listed = [line for line in cli("users", "list").stdout.splitlines()
                  if line.startswith("xt.border ")]
        assert listed and listed[0].endswith("incidents as cells")

        def status(layer: str) -> int:
            return requests.get(f"{server}/collections/{layer}/items?limit=1", timeout=60,
                                headers={"Authorization": f"Bearer {token}"}).status_code

        assert (status("incidents"), status("incident_cells")) == (403, 200)
        changed = cli("users", "set", "xt.border", "--incidents", "points")
        assert changed.returncode == 0, changed.stderr
        assert changed.stdout.strip() == "user xt.border: incidents given as points"
        assert status("incidents") == 200  # the same token, now given the points
        before = _users(db)  # the refusals: `users set` in this process (it ran as one above)
        for args, message in ((["nobody", "--incidents", "cells"], "no user called"),
                              (["planner", "--incidents", "cells"], "border_partner users"),
                              (["xt.border", "--incidents", "dots"], "'dots' is not one of")):
            refused = run_in_process(db_url, "users", "set", *args)
            assert refused.returncode != 0 and message in refused.stderr, refused.stderr
        assert _users(db) == before
        with db.connect() as conn:
            assert conn.execute(text("SELECT partner_incidents FROM users WHERE name = "
                                     "'xt.border'")).scalar_one() == "points"
    finally:
        cli("users", "remove", "xt.border")
