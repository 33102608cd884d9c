"""The ``safegrid`` command line.

Errors print one readable line per problem on stderr and exit non-zero; nothing is
half-written.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import click

from layers import LAYERS, get_layer
from layers.errors import SafegridError
from layers.registry import ROLES, UnknownLayer
from webmap.osm_cli import import_osm_cmd
from webmap.peers_cli import peers_group
from webmap.warnings_cli import warnings_group

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from layers.users import User

# The database and analysis libraries are imported inside the commands that use them:
# `safegrid --help` and the light commands start without loading them.

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


@cache
def _operator() -> User:
    """Who the reports and batch runs are by: the command line, as an administrator."""
    from layers.users import User

    return User(0, "cli", "admin", None, None)


def _engine() -> Engine:
    """The engine of the database every command uses (:func:`layers.db.engine`)."""
    from layers.db import engine

    return engine()


def _loaded(module: str, *names: str) -> tuple[type, ...]:
    """The classes ``names`` of ``module`` when it is imported, else none.

    An exception can only be of a class whose module is loaded, so the error handling
    needs no import of the database libraries.
    """
    found = sys.modules.get(module)
    return tuple(getattr(found, name) for name in names) if found else ()


class SafegridGroup(click.Group):
    """Turns safegrid's typed errors into readable lines and an exit code."""

    def invoke(self, ctx: click.Context):
        """Run the command; print safegrid errors as lines and exit non-zero."""
        try:
            return super().invoke(ctx)
        except SafegridError as exc:
            for line in str(exc).splitlines():
                click.echo(f"error: {line}" if line == str(exc).splitlines()[0] else f"  {line}",
                           err=True)
            sys.exit(EXIT_BAD_INPUT)
        except UnknownLayer as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except Exception as exc:
            if isinstance(exc, _loaded("layers.cluster", "ClusterError")):
                click.echo(f"error: {exc}", err=True)
                sys.exit(EXIT_FAILED)
            _exit_on_database_error(exc)
            raise


def _exit_on_database_error(exc: Exception) -> None:
    """A missing schema, or a database lost or stopping the work: one line and exit 1."""
    programming, operational = _loaded("sqlalchemy.exc", "ProgrammingError",
                                       "OperationalError") or (None, None)
    if programming is None or not isinstance(exc, (programming, operational)):
        return
    import psycopg  # loaded already: the error came from a connection

    from layers.db import external_url

    if isinstance(exc, programming):
        if not isinstance(exc.orig, psycopg.errors.UndefinedTable):
            return
        reason = str(exc.orig).strip().splitlines()[0]
        click.echo(f"error: the database has no safegrid schema yet ({reason}); run "
                   "'safegrid db up' to apply the migrations; nothing was written", err=True)
        sys.exit(EXIT_FAILED)
    # lost, never reached, or a query cancelled
    reason = str(exc.orig or exc).strip().splitlines()[0]
    hint = "" if external_url() else ". Start it with 'safegrid db up'"
    lost = not isinstance(exc.orig, (psycopg.errors.TransactionRollback,
                                     psycopg.errors.QueryCanceled,
                                     psycopg.errors.LockNotAvailable))
    what = "the database is not reachable" if lost else "the database stopped the work"
    click.echo(f"error: {what} ({reason}); nothing was written"
               f"{hint if lost else ''}", err=True)
    sys.exit(EXIT_FAILED)


@click.group(cls=SafegridGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """safegrid: grids, key areas, cameras, incidents and border joint defence on PostGIS.

    Every command uses SAFEGRID_DATABASE_URL when it is set, else the managed local
    PostGIS under $SAFEGRID_HOME (default ./var).
    """


# -- database ---------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Manage the database: the local PostGIS cluster, or migrations of an external one."""


@db.command("up")
@click.option("--port", type=int, default=None,
              help="Also listen on TCP 127.0.0.1:PORT, with a generated password kept in "
                   "$SAFEGRID_HOME/password (default: unix socket only). Remembered; "
                   "--port 0 goes back to the socket only.")
def db_up(port: int | None) -> None:
    """Create (first time) and start the local cluster, then apply migrations.

    With SAFEGRID_DATABASE_URL set, only the migrations are applied to that database.
    """
    from layers.cluster import managed_cluster
    from layers.db import external_url, migrate

    if external_url() is None:
        cluster = managed_cluster()
        cluster.up(tcp_port=port)
    elif port is not None:
        raise click.UsageError("--port applies to the managed cluster only")
    migrate()
    _prepare_partitions()
    click.echo(f"database up: {_safe_url()}")


def _prepare_partitions() -> None:
    """Create the current and next months' partitions; move rows out of DEFAULT."""
    from layers.partitions import prepare

    for layer in LAYERS.values():
        if layer.partitioned:
            prepare(_engine(), layer)


@db.command("down")
def db_down() -> None:
    """Stop the local cluster (the data stays)."""
    from layers.cluster import managed_cluster
    from layers.db import external_url

    if external_url():
        click.echo("SAFEGRID_DATABASE_URL is set: the external database is not ours to stop")
        return
    was = managed_cluster().down()
    click.echo("database stopped" if was else "database was not running")


@db.command("status")
def db_status() -> None:
    """Say whether the database is up, and its URL. Exit 1 when it is down."""
    from layers.cluster import managed_cluster
    from layers.db import external_url, postgis_version, schema_revision

    if external_url() is None:
        cluster = managed_cluster()
        if not cluster.running():
            click.echo(f"down (data directory {cluster.datadir}"
                       f"{'' if cluster.initialised() else ', not created yet'})")
            click.echo(f"url: {_safe_url()}")
            sys.exit(EXIT_FAILED)
    try:
        versions = postgis_version()
        revision = schema_revision()
    except Exception as exc:  # noqa: BLE001 - any connection failure means "down"
        click.echo(f"down ({str(exc).splitlines()[0]})")
        click.echo(f"url: {_safe_url()}")
        sys.exit(EXIT_FAILED)
    click.echo(f"up: {versions}, schema revision {revision or 'none (run safegrid db up)'}")
    click.echo(f"url: {_safe_url()}")
    if external_url() is None and managed_cluster().tcp:
        cluster = managed_cluster()
        click.echo(f"tcp: {cluster.tcp_url()} (password in {cluster.password_file})")


@db.command("reset")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def db_reset(yes: bool) -> None:
    """Drop every safegrid table (all data) and create them empty again."""
    from layers.cluster import managed_cluster
    from layers.db import downgrade_all, external_url, migrate

    if not yes:
        click.confirm(f"Delete all safegrid data in {_safe_url()}?", abort=True)
    if external_url() is None:
        managed_cluster().up()
    downgrade_all()
    migrate()
    click.echo("database reset: all layers are empty")


def _safe_url() -> str:
    from sqlalchemy.engine import make_url

    from layers.db import database_url

    return make_url(database_url()).render_as_string(hide_password=True)


# -- layers, import, export ---------------------------------------------------------------


@main.command("layers")
@click.option("--json", "as_json", is_flag=True,
              help='Print a JSON list of {"name", "count", "extent"} objects.')
def layers_cmd(as_json: bool) -> None:
    """List the layers with their feature counts and extents (lon/lat)."""
    from layers.store import layer_summary

    rows = layer_summary(_engine())
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    click.echo(f"{'layer':<16} {'features':>9}  {'extent (lon/lat)':<38}  title")
    for row in rows:
        extent = ", ".join(f"{v:.4f}" for v in row["extent"]) if row["extent"] else "-"
        click.echo(f"{row['name']:<16} {row['count']:>9}  {extent:<38}  "
                   f"{LAYERS[row['name']].title_zh}")


_CRS_HELP = ("anything PROJ knows: EPSG:4326 (WGS 84), EPSG:4490 (CGCS2000 lon/lat), "
             "EPSG:4534-4554 (CGCS2000 3-degree Gauss-Kruger zones by central meridian "
             "75E-135E, e.g. EPSG:4547 for 114E, Changsha: x/y in metres), a WKT "
             "or PROJ string.")
_COORDS = click.Choice(["wgs84", "gcj02", "bd09"])


@main.command("import")
@click.argument("layer")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--crs", default=None,
              help="CRS of the input, " + _CRS_HELP + " Overrides the file's own; files "
                   "without one (CSV, workbooks) are EPSG:4326.")
@click.option("--coords", type=_COORDS, default="wgs84", show_default=True,
              help="The lon/lat are gcj02 (AMap, Tencent) or bd09 (Baidu): the offset of a "
                   "Chinese web map is undone.")
@click.option("--sheet", default=None,
              help="The sheet of an .xlsx/.xls workbook to read, by name (default: the "
                   "first).")
@click.option("--encoding", default=None,
              help="Encoding of a CSV (e.g. gbk, gb18030, utf-8; default: UTF-8 with or "
                   "without BOM, else GB18030) or of a shapefile's .dbf when no .cpg names "
                   "it (often gbk for Chinese offices' files).")
@click.option("--columns", default=None, metavar="HEADER=FIELD,...",
              help="Columns whose header the layer does not know, e.g. "
                   "'经度=lon,纬度=lat,状态=status' (any format; lon/lat/wkt in tables "
                   "only); HEADER=- leaves a column out.")
@click.option("--mode", type=click.Choice(["append", "replace"]), default="append",
              show_default=True, help="replace deletes the layer's features first.")
@click.option("--actor", default="cli", show_default=True,
              help="Name recorded in the audit trail.")
def import_cmd(layer: str, file: Path, crs: str | None, coords: str, sheet: str | None,
               encoding: str | None, columns: str | None, mode: str, actor: str) -> None:
    """Import FILE into LAYER: all of it, or nothing.

    Reads GeoJSON, GeoPackage, Shapefile (.shp or zipped), FlatGeobuf, KML, and tables
    with lon/lat (经度/纬度) or wkt columns: CSV in UTF-8 or GBK/GB18030, Excel .xlsx and
    .xls. Columns may be named by the layer's Chinese titles (编号, 朝向, 视角, 可视距离,
    状态, 类别, 上级代码...) and values by the choices' Chinese words (在线, 离线, 学校,
    区, 街道...), in tables and in shapefiles alike; a table's title
    rows above the header are passed over. Any bad row stops the import with a line per
    row, numbered as the sheet shows it.

    \b
    Examples:
      safegrid import cameras 点位台账.xlsx --sheet 监控点位 --coords bd09
      safegrid import jurisdictions 区划.shp --encoding gbk  # CGCS2000 read from its .prj
    """  # noqa: D301  (the \b is click's mark for a paragraph kept as written)
    from layers.errors import InputRejected
    from layers.io import read_file
    from layers.store import write_features
    from layers.validate import at_source_rows, clean_features

    declaration = get_layer(layer)
    t0 = time.perf_counter()
    raw = read_file(file, declaration, crs=crs, coords=coords, sheet=sheet,
                    encoding=encoding, columns=columns)
    if raw.attrs.get("columns"):
        _echo_table(raw.attrs)
    clean = clean_features(raw, declaration)
    try:
        n = write_features(_engine(), declaration, clean, mode=mode, actor=actor,
                           source=file.name)
    except InputRejected as exc:
        raise at_source_rows(exc, raw.attrs.get("rows")) from None
    click.echo(f"imported {n} features into {layer} ({mode}) in "
               f"{time.perf_counter() - t0:.1f} s")


def _echo_table(attrs: dict) -> None:
    """Say which sheet, header row and column mapping a table was read with."""
    where = f"sheet {attrs['sheet']!r}, " if attrs.get("sheet") else ""
    mapping = ", ".join(f"{h}->{t}" for h, t in attrs["columns"].items() if t != "-")
    left = [h for h, t in attrs["columns"].items() if t == "-"]
    click.echo(f"{where}header on row {attrs['header_row']}, {len(attrs['rows'])} rows; "
               f"columns: {mapping}{'; left out: ' + ', '.join(left) if left else ''}")


@main.command("export")
@click.argument("layer")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--bbox", default=None, metavar="MINLON,MINLAT,MAXLON,MAXLAT",
              help="Only features intersecting this lon/lat box (EPSG:4326).")
@click.option("--crs", default=None,
              help="Write in this CRS (default EPSG:4326): " + _CRS_HELP)
@click.option("--coords", type=_COORDS, default="wgs84", show_default=True,
              help="Write gcj02 (AMap, Tencent) or bd09 (Baidu) lon/lat for Chinese web "
                   "maps.")
def export_cmd(layer: str, file: Path, bbox: str | None, crs: str | None, coords: str) -> None:
    """Export LAYER to FILE; the format follows the extension.

    .geojson .json .gpkg .shp .zip (zipped Shapefile) .fgb .kml .csv (WKT geometry).
    """
    from layers.errors import InputRejected
    from layers.io import format_of, write_file
    from layers.store import read_features

    declaration = get_layer(layer)
    format_of(file, writing=True)
    box = None
    if bbox:
        try:
            box = tuple(float(v) for v in bbox.split(","))
        except ValueError:
            box = ()
        if len(box) != 4 or not (box[0] < box[2] and box[1] < box[3]):
            raise InputRejected(f"--bbox {bbox!r} must be MINLON,MINLAT,MAXLON,MAXLAT")
    features = read_features(_engine(), declaration, box)
    n = write_file(features, file, crs=crs, coords=coords, layer_name=layer)
    click.echo(f"exported {n} features of {layer} to {file}")


# -- users --------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """Manage users, their roles, jurisdictions and API tokens."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(list(ROLES)),
              help="admin, planner, police, border_partner or viewer.")
@click.option("--jurisdiction", default=None,
              help="Code of the user's jurisdiction (all roles but admin need one).")
@click.option("--partner", default=None,
              help="border_partner only: code of the neighbouring city.")
@click.option("--incidents", type=click.Choice(["points", "cells"]), default=None,
              help="border_partner only: give our incidents in the border zone as points "
                   "(the default) or only as counts per 250 m cell.")
@click.option("--password-stdin", is_flag=True, required=True,
              help="Read the password from standard input (never from the command line).")
def users_add(name: str, role: str, jurisdiction: str | None, partner: str | None,
              incidents: str | None, password_stdin: bool) -> None:
    """Add user NAME with a role and scope; the password comes on standard input."""
    from layers.users import add_user

    password = sys.stdin.readline().rstrip("\n")
    with _engine().begin() as conn:
        user = add_user(conn, name, role, password, jurisdiction, partner,
                        incidents or "points")
    click.echo(f"user {user.name} added ({user.role}"
               f"{', ' + user.jurisdiction if user.jurisdiction else ''}"
               f"{', partner ' + user.partner if user.partner else ''}"
               f"{', incidents as ' + user.incidents if user.partner else ''})")


@users.command("set")
@click.argument("name")
@click.option("--incidents", type=click.Choice(["points", "cells"]), required=True,
              help="What border partner NAME is given of our incidents in the border zone: "
                   "each as a point, or only counts per 250 m cell.")
def users_set(name: str, incidents: str) -> None:
    """Change what border partner NAME is given of our incidents (its tokens stay)."""
    from layers.users import set_partner_incidents

    with _engine().begin() as conn:
        user = set_partner_incidents(conn, name, incidents)
    click.echo(f"user {user.name}: incidents given as {user.incidents}")


@users.command("list")
def users_list() -> None:
    """List users with their role, jurisdiction, partner (and how it is given incidents)."""
    from layers.users import list_users

    for user in list_users(_engine()):
        click.echo(f"{user.name:<16} {user.role:<15} {user.jurisdiction or '-':<14} "
                   f"{user.partner or '-'}"
                   f"{'  incidents as ' + user.incidents if user.partner else ''}")


@users.command("remove")
@click.argument("name")
def users_remove(name: str) -> None:
    """Remove user NAME and their API tokens."""
    from layers.users import remove_user

    with _engine().begin() as conn:
        remove_user(conn, name)
    click.echo(f"user {name} removed")


@users.command("token")
@click.argument("name")
def users_token(name: str) -> None:
    """Issue a new API token for NAME; it is printed once, on the last line."""
    from layers.users import issue_token

    with _engine().begin() as conn:
        token = issue_token(conn, name)
    click.echo(f"API token for {name} (send it as 'Authorization: Bearer <token>'):")
    click.echo(token)


# -- demo and server ------------------------------------------------------------------


@main.command("demo")
@click.option("--scale", type=click.Choice(["small", "city", "province"]), default="small",
              show_default=True,
              help="small: seconds, for tests; city: ~100k households, 200k incidents, "
                   "5k cameras; province: >2M incidents, for benchmarks.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Random seed: the same seed gives the same data.")
@click.option("--end", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Last day (YYYY-MM-DD, China Standard Time) of the demo's twelve months "
                   "of incidents. Default: yesterday, so recent counts and default periods "
                   "hold data.")
@click.option("--unless-loaded", is_flag=True,
              help="Do nothing when the database already holds jurisdictions.")
@click.option("--only", "only", multiple=True, metavar="CODE",
              help="Load only this demo city (430100 长沙市, 430300 湘潭市, 430200 株洲市) "
                   "with the boundaries of its neighbours, as one city's own server would "
                   "hold it; repeat for several cities in one database. The demo users are "
                   "then those of the first city given.")
def demo_cmd(scale: str, seed: int, end: dt.datetime | None, unless_loaded: bool,
             only: tuple[str, ...]) -> None:
    """Generate the demo (three cities around Changsha) and replace all layers with it.

    Incidents span the 365 days up to --end; everything else depends on --seed only.
    With --only, every feature goes to exactly one city (its jurisdiction, or the
    jurisdiction holding its middle), so the --only sets of two cities never share a
    feature.
    """
    from tqdm import tqdm

    from layers import demo

    only = demo.checked_cities(only)
    if unless_loaded and demo.is_loaded(_engine()):
        click.echo("demo: data already loaded, left as it is")
        return
    t0 = time.perf_counter()
    steps = ["jurisdictions", "neighbourhoods", "roads", "key areas", "grids", "incidents",
             *(f"writing {n}" for n in demo.LOAD_ORDER), "done"]
    with tqdm(total=len(steps), desc=f"demo {scale}", unit="step",
              disable=None) as bar:
        def step(message: str) -> None:
            bar.set_postfix_str(message[:40])
            bar.update(1)

        last = end.date() if end else demo.default_end()
        counts = demo.load(_engine(), scale, seed, step, last, only)
    summary = ", ".join(f"{k} {v}" for k, v in counts.items())
    first = demo.demo_start(last).date()
    which = f", only {' '.join(only)}" if only else ""
    click.echo(f"demo {scale} (seed {seed}{which}) loaded in {time.perf_counter() - t0:.1f} s: "
               f"{summary}")
    click.echo(f"incidents from {first} to {last} (China Standard Time)")
    click.echo("demo users (name / password / role / scope):")
    for user in demo.demo_users(only, demo.DEMO_USERS):
        scope = user["jurisdiction"] or "everything"
        if user["partner"]:
            scope += f" with partner {user['partner']}"
        click.echo(f"  {user['name']:<8} {user['password']:<20} {user['role']:<15} {scope}")


@main.command("report")
@click.option("--jurisdiction", "code", required=True,
              help="Code of the village, community or larger jurisdiction.")
@click.option("--month", required=True, help="The month, as YYYY-MM.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write it: FILE.html, or FILE.pdf (printed by Chromium).")
def report_cmd(code: str, month: str, out: Path) -> None:
    """Write the monthly security notice (治安状况告知) of a jurisdiction.

    Counts by category against the month before and the same month last year,
    disputes, and a map of hot cells; a copy to post and a copy to archive.
    """
    from layers.report import notice_figures
    from webmap.reports import render_notice, write_pdf

    if out.suffix.lower() not in (".html", ".pdf"):
        raise click.BadParameter(f"--out must end in .html or .pdf, got {out.name!r}")
    with _engine().connect() as conn:
        html = render_notice(notice_figures(conn, _operator(), code, month))
    if out.suffix.lower() == ".pdf":
        write_pdf(html, out)
    else:
        out.write_text(html, encoding="utf-8")
    click.echo(f"wrote {out}")


# -- grids ---------------------------------------------------------------------------


@main.group()
def grids() -> None:
    """Plan grids (网格) from the command line."""


@grids.command("generate")
@click.argument("code")
@click.option("--weight", type=click.Choice(["households", "population", "buildings", "area"]),
              default=None,
              help="What the grids are balanced on. Default: households when the "
                   "jurisdiction has any, else buildings (floor area), else area.")
@click.option("--households", "target_households", type=int, default=None,
              help="Households per grid (20-5000) for --weight households.")
@click.option("--persons", "target_persons", type=int, default=None,
              help="Registered persons per grid (50-15000) for --weight population.")
@click.option("--floor-area", "target_floor_area_m2", type=float, default=None,
              help="Floor area per grid in m² (1000-1000000) for --weight buildings: "
                   "footprint × floors, floors = height ÷ 3 m, at least 1.")
@click.option("--area", "target_area_m2", type=float, default=None,
              help="Area per grid in m² (10000-100000000) for --weight area.")
@click.option("--replace", is_flag=True,
              help="Replace the comprehensive grids the communities already have "
                   "(and their joint-household units); without it such a community is refused.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="Language of the line saying what the grids follow.")
def grids_generate_cmd(code: str, weight: str | None, replace: bool, lang: str,
                       **targets: float | None) -> None:
    """Partition every community under jurisdiction CODE into grids.

    Each community is cut by its roads into street blocks, and the blocks are grouped
    into contiguous, compact grids of about the target weight. Give the target of the
    weight used (or several targets when --weight is left to the data). Nothing is
    written when anything is refused.
    """
    from layers.gridgen import TARGETS, generate_grids
    from webmap.grids_api import generation_note

    given = {w: targets[t.field] for w, t in TARGETS.items() if targets[t.field] is not None}
    with _engine().begin() as conn:
        generated = generate_grids(conn, _operator(), code, given, replace, weight=weight)
    click.echo(f"{len(generated.ids)} grids generated under {code}: "
               f"{generation_note(generated, lang)}")


# -- batch jobs on Dask ---------------------------------------------------------------


@main.group()
def batch() -> None:
    """Batch analyses on a Dask cluster, for data too large for one request.

    Hot spots read the incidents step by step (a month is one PostgreSQL partition) on
    the workers; coverage computes the cameras' fields of view there. Give a running
    scheduler with --scheduler tcp://HOST:8786 (its workers need safegrid installed and
    a route to the database), or let --workers N start a local cluster for the run.
    """


_SCHEDULER = click.option(
    "--scheduler", default=None, metavar="ADDRESS",
    help="Address of a running Dask scheduler (e.g. tcp://10.0.0.5:8786); default: a "
         "local cluster for this run.")
_WORKERS = click.option("--workers", default=2, show_default=True,
                        type=click.IntRange(1, 256),
                        help="Worker processes of the local cluster (without --scheduler).")
_JURISDICTION = click.option("--jurisdiction", "code", required=True,
                             help="Code of the jurisdiction to analyse (a city, a province).")


@contextmanager
def _dask_client(scheduler: str | None, workers: int):
    """A ``distributed.Client`` on ``scheduler``, or on a local cluster of ``workers``."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise click.ClickException(f"cannot reach the Dask scheduler at {scheduler}: "
                                       f"{str(exc).splitlines()[0]}") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def _batch_operator(code: str) -> User:
    """The command line's operator (an administrator), once ``code`` is known to exist."""
    from layers.access import jurisdiction_to_analyse

    with _engine().connect() as conn:  # before any cluster starts: a typo fails at once
        jurisdiction_to_analyse(conn, _operator(), code)
    return _operator()


def _on_dask(desc: str, scheduler: str | None, workers: int, work) -> dict:
    """``work(client)`` on a Dask client, with a progress bar over its stages."""
    from tqdm import tqdm

    with tqdm(total=3, desc=desc, unit="stage", disable=None) as bar:
        bar.set_postfix_str("starting the cluster" if not scheduler else "connecting")
        with _dask_client(scheduler, workers) as client:
            bar.update(1)
            bar.set_postfix_str("computing on the workers")
            body = work(client)
            bar.update(1)
            bar.set_postfix_str("stopping the cluster" if not scheduler else "done")
        bar.update(1)
    return body


def _write_json(path: Path, body: dict) -> None:
    path.write_text(json.dumps(body, ensure_ascii=False, default=str), encoding="utf-8")


@batch.command("hotspots")
@_JURISDICTION
@click.option("--from", "start", required=True, help="Start: YYYY-MM-DD or an RFC 3339 time.")
@click.option("--to", "end", required=True, help="End (that day included): YYYY-MM-DD or RFC "
                                                 "3339.")
@click.option("--cell", required=True, type=float, help="Cell size in metres.")
@click.option("--shape", type=click.Choice(["square", "hex"]), default="square",
              show_default=True, help="Cell shape.")
@click.option("--category", default=None, help="Only incidents of this category.")
@click.option("--step", type=click.Choice(["month", "week"]), default="month",
              show_default=True, help="Time step of the emerging hot spots (and of reading).")
@_SCHEDULER
@_WORKERS
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the cells to this GeoJSON file.")
def batch_hotspots(code: str, start: str, end: str, cell: float, shape: str,
                   category: str | None, step: str, scheduler: str | None, workers: int,
                   out: Path | None) -> None:
    """Gi* hot spots and emerging hot spots of a period, counted on Dask.

    The result is saved as a hot-spot run (it reopens on /map/analysis) and its id
    printed; cells carry count, z, p, p_fdr, class, their emerging category and their
    counts per step.
    """
    from layers.hotspots import HotspotQuery, run_batch
    from layers.validate import instant, period_end

    query = HotspotQuery(code, instant(start, False), period_end(end), category, cell,
                         shape)
    query.check()
    operator = _batch_operator(code)
    body = _on_dask("batch hotspots", scheduler, workers,
                    lambda client: run_batch(_engine(), operator, query, client, step))
    if out is not None:
        _write_json(out, body)
    summary = body["summary"]
    click.echo(f"run {body['run']}: {body['parameters']['incidents_in_cells']} incidents in "
               f"{summary['cells']} cells over {body['parameters']['steps']} steps; classes "
               + ", ".join(f"{k} {v}" for k, v in sorted(summary["classes"].items())))


@batch.command("coverage")
@_JURISDICTION
@click.option("--target", type=click.Choice(["key_areas", "school_zones", "grids", "roads"]),
              default="key_areas", show_default=True, help="What the cameras should watch.")
@click.option("--planned", is_flag=True, help="Count cameras with status planned too.")
@_SCHEDULER
@_WORKERS
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="GeoJSON file for the targets with covered_ratio and the summary.")
def batch_coverage(code: str, target: str, planned: bool, scheduler: str | None,
                   workers: int, out: Path) -> None:
    """Camera coverage of a jurisdiction's targets, fields of view computed on Dask.

    The same answer as GET /api/coverage (exact 2D visibility, building occlusion
    included), written to --out.
    """
    from layers.coverage import CoverageQuery, coverage

    query = CoverageQuery(code, target, planned=planned)
    query.check()
    operator = _batch_operator(code)
    def work(client) -> dict:
        with _engine().connect() as conn:
            return coverage(conn, operator, query, client)

    body = _on_dask("batch coverage", scheduler, workers, work)
    _write_json(out, body)
    summary = body["summary"]
    ratio = summary["covered_ratio"]
    click.echo(f"wrote {out}: {summary['targets']} {target}, "
               f"{'no area' if ratio is None else f'{ratio:.1%}'} watched by "
               f"{summary['cameras']['watching']} cameras")


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, type=int, show_default=True, help="Port to listen on.")
@click.option("--threads", default=8, type=int, show_default=True,
              help="Worker threads of the WSGI server.")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="Print one line per request (address, method, path, status, ms, user).")
def serve_cmd(host: str, port: int, threads: int, access_log: bool) -> None:
    """Serve the web map and API with the waitress WSGI server.

    Limits come from SAFEGRID_MAX_CONTENT_LENGTH (bytes of a request body),
    SAFEGRID_RATE_LIMIT (requests per client, e.g. "3000/minute"; "off"),
    SAFEGRID_LOGIN_LIMIT (failed logins per user name and address),
    SAFEGRID_DB_LOCK_TIMEOUT (default 10s) and SAFEGRID_DB_STATEMENT_TIMEOUT (300s).
    """
    import logging

    from waitress import serve

    from webmap import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("safegrid.access").setLevel(logging.INFO if access_log else logging.WARNING)
    try:
        app = create_app()
    except ValueError as exc:  # a limit or timeout that does not parse
        raise click.ClickException(str(exc)) from None
    click.echo(f"safegrid serving on http://{host}:{port}/ (map: http://{host}:{port}/map)")
    serve(app, host=host, port=port, threads=threads, ident="safegrid")


main.add_command(import_osm_cmd)
main.add_command(warnings_group)
main.add_command(peers_group)

if __name__ == "__main__":
    main()
