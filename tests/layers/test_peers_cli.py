"""``safegrid peers add/list/remove`` against a real server whose border_partner token is
the peer token; refusals exit non-zero with one line, write nothing, never show the token."""

import socket
import stat

import pytest
from sqlalchemy import text

from ..clihelp import run_in_process

pytestmark = pytest.mark.db


@pytest.fixture
def peers(cli, tmp_path):
    """``peers(*args, input=)``: ``safegrid peers ...`` with a SAFEGRID_HOME of the test's."""
    home = tmp_path / "home"

    def run(*args, input=None):
        return cli("peers", *args, input=input, env={"SAFEGRID_HOME": str(home)})

    run.home = home
    return run


@pytest.fixture
def peers_here(db_url, peers):
    """As :func:`peers`, the command run in this process (no new process's start-up); for
    the tests that run one command over many inputs, beside the real processes."""

    def run(*args, input=None):
        return run_in_process(db_url, "peers", *args, input=input,
                              env={"SAFEGRID_HOME": str(peers.home)})

    run.home = peers.home
    return run


def _one_line_error(result, *words):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert result.stdout == ""


def _no_peers(db, peers):
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM peers")).scalar_one() == 0
    assert not (peers.home / "peers").exists() or not list((peers.home / "peers").iterdir())


def test_add_list_remove(peers, peers_here, db, server, tokens):
    # add, list and remove each run once as a real process; the checks between them run
    # the same commands in this process
    token = tokens["partner"]
    added = peers("add", "xiangtan", server, "--border", "430100-430300", "--token-stdin",
                  input=token + "\n")
    assert added.returncode == 0, added.stderr
    assert "peer xiangtan added" in added.stdout and token not in added.stdout + added.stderr
    path = peers.home / "peers" / "xiangtan.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == token
    listed = peers("list")
    assert listed.returncode == 0, listed.stderr
    head, row = listed.stdout.strip().splitlines()
    assert head.split()[:4] == ["name", "url", "border", "added"]
    assert "last contact" in head and "last error" in head
    assert row.split()[:3] == ["xiangtan", server, "430100-430300"]
    assert row.endswith("-") and token not in listed.stdout
    with db.begin() as conn:  # as the border view records a failure
        from layers.peers import record_contact
        record_contact(conn, "xiangtan", "timed out after 3 s")
    assert "timed out after 3 s" in peers_here("list").stdout
    again = peers_here("add", "xiangtan", server, "--border", "430100-430300",
                       "--token-stdin", input=token)
    _one_line_error(again, "already exists")
    removed = peers("remove", "xiangtan")
    assert removed.returncode == 0 and "peer xiangtan removed" in removed.stdout
    assert not path.exists()
    assert peers_here("list").stdout.strip() == "no peers"
    _one_line_error(peers_here("remove", "xiangtan"), "no peer called 'xiangtan'")
    _no_peers(db, peers)


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(("args", "stdin", "words"), [
    (("--border", "430100-430300"), "sg_secret_x", ["--token-stdin"]),
    (("--border", "430100-430300", "--token-stdin"), "  \n", ["empty"]),
    (("--border", "430100", "--token-stdin"), "sg_secret_x", ["OURS-THEIRS"]),
    (("--border", "430100-990000", "--token-stdin"), "sg_secret_x", ["990000"]),
    (("--border", "430100-430300", "--token-stdin"), "sg_secret_x", ["refused the token",
                                                                        "401"]),
])
def test_bad_adds_exit_with_one_line_and_write_nothing(peers_here, db, server, args, stdin,
                                                        words):
    result = peers_here("add", "bad", server, *args, input=stdin)
    _one_line_error(result, *words)
    assert "sg_secret_x" not in result.stderr
    _no_peers(db, peers_here)


def test_unreachable_and_bad_url_are_refused(peers, db, demo_small):
    down = peers("add", "down", f"http://127.0.0.1:{_refused_port()}", "--border",
                 "430100-430300", "--token-stdin", input="sg_secret_y")
    _one_line_error(down, "could not be reached")
    bad = peers("add", "down", "ftp://example", "--border", "430100-430300", "--token-stdin",
                input="sg_secret_y")
    _one_line_error(bad, "http://")
    assert "sg_secret_y" not in down.stderr + bad.stderr
    _no_peers(db, peers)


def test_help_explains_every_option(peers, peers_here):
    shown = peers("add", "--help")  # a real process: the installed command's help
    assert shown.returncode == 0, shown.stderr
    for word in ("--border", "OURS-THEIRS", "--token-stdin", "standard input", "NAME", "URL"):
        assert word in shown.stdout
    assert "last error" in peers_here("list", "--help").stdout
    assert "token file" in peers_here("remove", "--help").stdout
    assert "0600" in peers_here("--help").stdout
