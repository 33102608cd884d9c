"""``safegrid peers``: register, list and remove the servers of neighbouring cities."""

from __future__ import annotations

import datetime as dt
import sys

import click

__all__ = ["peers_group"]


@click.group("peers")
def peers_group() -> None:
    """Other cities' safegrid servers (peers), one per shared border (边界联防).

    The border view and joint patrol plans read and write the other city's side of a
    border through its server, with a token its administrator issued to a border_partner
    user of theirs. The token is kept in $SAFEGRID_HOME/peers/NAME.token (mode 0600),
    never in the database, and is never printed.
    """


def _border(value: str) -> tuple[str, str]:
    """``A-B`` as (A, B), or :class:`~layers.peers.PeerError`."""
    from layers.peers import PeerError

    a, sep, b = (value or "").strip().partition("-")
    if not sep or not a or not b or "-" in b:
        raise PeerError(f"--border {value!r} must be two jurisdiction codes OURS-THEIRS, "
                        "e.g. 430100-430300")
    return a, b


@peers_group.command("add", short_help="Register the server of the city across a border.")
@click.argument("name")
@click.argument("url")
@click.option("--border", "border", required=True, metavar="OURS-THEIRS",
              help="The shared border: the code of our jurisdiction, then the code of "
                   "theirs (its boundary must be in this database), e.g. 430100-430300.")
@click.option("--token-stdin", is_flag=True,
              help="Read the token their administrator issued (to a border_partner user of "
                   "theirs whose partner is our side) from standard input, one line. "
                   "Required: a token never goes on the command line.")
def peers_add(name: str, url: str, border: str, token_stdin: bool) -> None:
    """Register NAME, the server at URL of the city across the border OURS-THEIRS.

    URL is the base URL of their server (http:// or https://). The peer must answer its
    OGC API with the token before anything is written. NAME is 1-40
    lower-case letters, digits, '-' or '_'.
    """
    from layers.db import engine
    from layers.peers import PeerError, add_peer

    a, b = _border(border)
    if not token_stdin:
        raise PeerError("give the token on standard input with --token-stdin (never on the "
                        "command line); nothing was written")
    token = sys.stdin.readline().strip()
    if not token:
        raise PeerError("the token on standard input is empty; nothing was written")
    with engine().begin() as conn:
        peer = add_peer(conn, name, url, a, b, token, "cli")
    click.echo(f"peer {peer.name} added: {peer.url} holds {peer.b} across our border with "
               f"{peer.a}; it answered with the token")


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


@peers_group.command("list", short_help="List the peers and how the last contact went.")
def peers_list() -> None:
    """List the peers: name, URL, border (ours-theirs), when added, last contact, last error."""
    from layers.db import engine
    from layers.peers import list_peers

    with engine().connect() as conn:
        peers = list_peers(conn)
    if not peers:
        click.echo("no peers")
        return
    click.echo(f"{'name':<16} {'url':<32} {'border':<15} {'added':<20} {'last contact':<20} "
               "last error")
    for p in peers:
        error = f"{_when(p.last_error_at)}: {p.last_error}" if p.last_error else "-"
        click.echo(f"{p.name:<16} {p.url:<32} {p.a + '-' + p.b:<15} {_when(p.added_at):<20} "
                   f"{_when(p.last_contact):<20} {error}")


@peers_group.command("remove")
@click.argument("name")
def peers_remove(name: str) -> None:
    """Remove peer NAME, what was read from it and its token file."""
    from layers.db import engine
    from layers.peers import remove_peer

    with engine().begin() as conn:
        remove_peer(conn, name)
    click.echo(f"peer {name} removed (its cached features and token file too)")
