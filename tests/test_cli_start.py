"""The command line starts without the libraries its light commands do not use.

``safegrid --help``, the help of every command and group, and the commands that only
read or write a row (``users``, ``peers list``, ``db status``) must not import the
analysis and web libraries: those load inside the commands that run an analysis, read a
file or serve. Each check runs the real console script (``.venv/bin/safegrid``) in a new
process and reads which of those libraries ended up in ``sys.modules``. Speed itself is
measured, not asserted.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from sqlalchemy.engine import make_url

from layers.db import engine
from layers.users import remove_user
from tests.conftest import SAFEGRID, fresh_database

HEAVY = ("geopandas", "pandas", "scipy", "shapely", "flask", "networkx")
GROUPS = {"db": ("up", "down", "status", "reset"),
          "users": ("add", "list", "remove", "set", "token"),
          "grids": ("generate",),
          "batch": ("hotspots", "coverage"),
          "peers": ("add", "list", "remove"),
          "warnings": ("check",)}
COMMANDS = ("layers", "import", "export", "demo", "report", "serve", "import-osm")

# Runs the console script as `python .venv/bin/safegrid ARGS` would, then says on the last
# line of stderr which heavy libraries were imported (atexit: after the script's exit).
_PROBE = f"""\
import atexit, json, runpy, sys
def said():
    print("LOADED " + json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))), file=sys.stderr)
atexit.register(said)
sys.argv = [{SAFEGRID!r}, *sys.argv[1:]]
runpy.run_path({SAFEGRID!r}, run_name="__main__")
"""


def safegrid(*args: str, db_url: str | None = None,
             input: str | None = None) -> tuple[subprocess.CompletedProcess, list[str]]:
    """``safegrid ARGS`` in a new process; its result and the heavy libraries it loaded."""
    env = dict(os.environ)
    if db_url:
        env["SAFEGRID_DATABASE_URL"] = db_url
    result = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True,
                            text=True, env=env, input=input, timeout=120)
    last = result.stderr.splitlines()[-1]
    assert last.startswith("LOADED "), result.stderr
    result.stderr = result.stderr.removesuffix(last + "\n")
    return result, json.loads(last.removeprefix("LOADED "))


def _listed(help_text: str) -> dict[str, str]:
    """The ``Commands:`` section of a click help: name -> short help."""
    section = help_text.split("Commands:\n", 1)[1]
    rows = [line.split(None, 1) for line in section.splitlines() if line.startswith("  ")
            and not line.startswith("   ")]
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows}


# Every help at once, in one new process: exit code, text and the heavy libraries loaded
# so far (so the first help that loads one is the one to blame).
_SWEEP = f"""\
import json, sys
from click.testing import CliRunner
from webmap.cli import main
out = []
for args in json.loads(sys.argv[1]):
    r = CliRunner().invoke(main, args, prog_name="safegrid")
    out.append([r.exit_code, r.output, sorted(set({HEAVY!r}) & set(sys.modules))])
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def helps() -> dict[tuple[str, ...], tuple[int, str, list[str]]]:
    """(exit code, text, heavy libraries loaded) of the help of every command and group."""
    asked = [(), *((g,) for g in GROUPS), *((c,) for c in COMMANDS),
             *((g, c) for g, cs in GROUPS.items() for c in cs)]
    result = subprocess.run(
        [sys.executable, "-c", _SWEEP, json.dumps([[*a, "--help"] for a in asked])],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return {a: tuple(r) for a, r in zip(asked, json.loads(result.stdout), strict=True)}


@pytest.mark.parametrize("args", [("--help",), ("users", "--help"), ("peers", "--help")])
def test_help_loads_no_analysis_or_web_library(args):
    result, loaded = safegrid(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: safegrid")
    assert loaded == []


def test_help_lists_every_command_and_group_with_its_short_help(helps):
    result, _ = safegrid("--help")
    listed = _listed(result.stdout)
    assert set(listed) == set(GROUPS) | set(COMMANDS)
    assert all(listed.values()), listed
    assert set(_listed(helps[()][1])) == set(listed)  # (wrapped to another width)
    for group, commands in GROUPS.items():
        code, text, _ = helps[(group,)]
        assert code == 0, (group, text)
        inner = _listed(text)
        assert set(inner) == set(commands), group
        assert all(inner.values()), (group, inner)


def test_no_help_loads_an_analysis_or_web_library(helps):
    for args, (code, text, loaded) in helps.items():
        assert code == 0, (args, text)
        assert text.startswith(f"Usage: safegrid {' '.join(args)}".rstrip()), (args, text)
        assert "Show this message and exit." in text, args
        assert loaded == [], args


@pytest.mark.db
def test_user_and_peer_commands_load_no_analysis_or_web_library(db_url):
    add, loaded = safegrid("users", "add", "startcheck", "--role", "admin",
                           "--password-stdin", db_url=db_url, input="start-check-pass\n")
    assert add.returncode == 0, add.stderr
    assert loaded == []
    try:
        for args in (("users", "list"), ("users", "token", "startcheck"), ("peers", "list"),
                     ("db", "status")):
            result, loaded = safegrid(*args, db_url=db_url)
            assert result.returncode == 0, (args, result.stderr)
            assert loaded == [], args
    finally:
        with engine(db_url).begin() as conn:
            remove_user(conn, "startcheck")


@pytest.mark.db
def test_database_errors_still_say_one_line_and_exit_1(db_url):
    """The errors caught around every command, now that their classes load lazily."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = make_url(db_url).set(host="127.0.0.1", port=port, query={})
    result, _ = safegrid("users", "list", db_url=down.render_as_string(hide_password=False))
    assert result.returncode == 1
    assert result.stderr.startswith("error: the database is not reachable (")
    assert result.stderr.rstrip().endswith("; nothing was written")
    assert len(result.stderr.strip().splitlines()) == 1
    empty = fresh_database(f"{make_url(db_url).database}_start")
    result, loaded = safegrid("users", "list", db_url=empty)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: the database has no safegrid schema yet (relation \"users\" does not exist); "
        "run 'safegrid db up' to apply the migrations; nothing was written"]
    assert loaded == []
