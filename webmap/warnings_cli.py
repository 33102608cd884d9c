"""``safegrid warnings``: run the standing watches (for cron) and list their warnings."""

from __future__ import annotations

import datetime as dt
import sys

import click

__all__ = ["warnings_group"]


@click.group("warnings")
def warnings_group() -> None:
    """Risk warnings (风险预警) from standing hot-spot, near-repeat and risk-level watches."""


@warnings_group.command("check")
@click.option("--now", "now_text", default=None, metavar="ISO",
              help="Check as of this date-time (RFC 3339; without an offset: China Standard "
                   "Time). Default: the present.")
def check_cmd(now_text: str | None) -> None:
    """Run every watch once and record the warnings it raises (run it from cron).

    Each watch analyses a period of its run's length ending now; a cell that became a new
    or intensifying hot spot, a near-repeat risk zone that opened, or a key area or grid
    whose risk level (风险等级) rose, since the previous check, is recorded once. One line
    per watch; exit 1 when a watch could not be checked (the others still are).
    """
    from layers.db import engine
    from layers.validate import instant
    from layers.warnings import check_watches

    now = instant(now_text, False) if now_text else dt.datetime.now(dt.UTC)
    results = check_watches(engine(), now)
    failed = False
    for r in results:
        head = f"watch {r['watch']} ({r['kind']}, {r['jurisdiction']})"
        if r["error"]:
            failed = True
            click.echo(f"error: {head}: {r['error']}", err=True)
        else:
            ids = ", ".join(map(str, r["warnings"]))
            click.echo(f"{head}: {len(r['warnings'])} new warning(s)"
                       + (f": {ids}" if ids else ""))
    click.echo(f"{len(results)} watch(es) checked as of {now.isoformat()}")
    if failed:
        sys.exit(1)
