"""``safegrid import-osm``: load an OpenStreetMap extract into the layers."""

from __future__ import annotations

from pathlib import Path

import click

from layers.errors import InputRejected
from layers.registry import get_layer

__all__ = ["import_osm_cmd"]

_LEVELS = get_layer("jurisdictions").get_field("level").choices or ()


def _admin_levels(values: tuple[str, ...]) -> dict[int, str] | None:
    """``N=LEVEL`` options as a mapping, or None to keep the default table."""
    from geo.osm import ADMIN_LEVELS

    if not values:
        return None
    levels = dict(ADMIN_LEVELS)
    for value in values:
        number, _, level = value.partition("=")
        if not number.strip().isdigit() or level not in (*_LEVELS, "none"):
            raise InputRejected(f"--admin-level {value!r} must be N=LEVEL with LEVEL one of "
                                f"{', '.join(_LEVELS)} or none")
        if level == "none":
            levels.pop(int(number), None)
        else:
            levels[int(number)] = level
    return levels


@click.command("import-osm")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--bbox", default=None, metavar="MINLON,MINLAT,MAXLON,MAXLAT",
              help="Take only what lies in this lon/lat box (degrees, EPSG:4326): roads are "
                   "cut at its edge, other features kept when a point inside them lies in it.")
@click.option("--within", default=None, metavar="CODE",
              help="Take only what lies in the stored jurisdiction CODE (same rule as --bbox).")
@click.option("--admin-level", "admin_levels", multiple=True, metavar="N=LEVEL",
              help="Map OSM admin_level N to a jurisdiction level (province, city, district, "
                   "street, community, village) or 'none' to leave it out; repeatable. "
                   "Default (Chinese convention): 4=province 5=city 6=district 8=street "
                   "9=community 10=community (village when named …村).")
@click.option("--actor", default="cli", show_default=True,
              help="Name recorded in the audit trail (one row per layer written).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def import_osm_cmd(file: Path, bbox: str | None, within: str | None,
                   admin_levels: tuple[str, ...], actor: str, quiet: bool) -> None:
    """Import an OpenStreetMap extract FILE (.osm.pbf, .osm, .osm.gz, .osm.bz2).

    \b
    Layers filled from OSM tags, in one transaction:
      jurisdictions  boundary=administrative areas (level by admin_level, parent by
                     containment, code from ISO3166-2 / ref:admin / ref, else osm-r<id>)
      roads          highway=*: motorway/trunk -> motorway, primary/secondary -> arterial,
                     tertiary -> collector, residential/unclassified/living_street/service
                     -> local, footway/path/pedestrian/cycleway/steps/track -> path
      buildings      building=*, height from height, else building:levels x 3 m
      key_areas      schools, kindergartens, hospitals, markets, town halls, parks,
                     entertainment venues, malls, stations, airports, ports, border
                     controls; railway=rail as a corridor 30 m each side of the track
      cameras        man_made=surveillance: camera:direction, camera:angle, height;
                     untagged: bearing 0 (north), field of view 90 (360 if panning),
                     range 50 m, status online (listed in the summary)
      checkpoints    amenity=police as police_station
    Features outside every jurisdiction (stored or in the file) are skipped. A summary
    says per layer what was taken and what was skipped, with counts per reason.
    """  # noqa: D301 - click's \b keeps the table's lines as written
    from layers.db import engine
    from layers.osm import import_osm

    summary = import_osm(engine(), file, bbox=bbox, within=within, actor=actor,
                         admin_levels=_admin_levels(admin_levels),
                         progress=False if quiet else None)
    click.echo(f"imported {file.name}: {sum(summary.taken.values())} features")
    for line in summary.lines():
        click.echo(line)
