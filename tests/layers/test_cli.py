"""The command line against the real database: layers, export, import modes, help."""

import json

import pytest
from sqlalchemy import text

from layers import LAYERS
from layers.store import read_features, write_features
from layers.validate import clean_features

from ..clihelp import run_in_process

pytestmark = pytest.mark.db


def test_layers_json_lists_counts_and_extents(cli, demo_small):
    result = cli("layers", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rows) >= set(demo_small)
    assert rows["incidents"]["count"] == demo_small["incidents"]
    minx, miny, maxx, maxy = rows["jurisdictions"]["extent"]
    assert 112 < minx < maxx < 114 and 27 < miny < maxy < 29


def test_export_bbox_and_import_append_then_replace(cli, db, demo_small, tmp_path):
    kept = read_features(db, LAYERS["cameras"])  # put back for the other tests at the end
    path = tmp_path / "cams.gpkg"
    result = cli("export", "cameras", str(path), "--bbox", "112.95,28.00,113.00,28.05")
    assert result.returncode == 0, result.stderr
    exported = int(result.stdout.split()[1])
    with db.connect() as conn:
        inside = conn.execute(text(
            "SELECT count(*) FROM cameras WHERE geom && "
            "ST_MakeEnvelope(112.95, 28.00, 113.00, 28.05, 4326)")).scalar_one()
        total = conn.execute(text("SELECT count(*) FROM cameras")).scalar_one()
    assert exported == inside and 0 < inside < total
    # appending the same cameras again collides on their codes: refused, nothing written
    again = cli("import", "cameras", str(path))
    assert again.returncode != 0 and "already exists in layer cameras" in again.stderr
    replaced = cli("import", "cameras", str(path), "--mode", "replace", "--actor", "tester")
    assert replaced.returncode == 0, replaced.stderr
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cameras")).scalar_one() == inside
        audit = conn.execute(text(
            "SELECT actor, action, before->>'count', after->>'added' FROM audit "
            "ORDER BY id DESC LIMIT 1")).one()
    assert audit == ("tester", "replace", str(total), str(inside))
    write_features(db, LAYERS["cameras"], clean_features(kept, LAYERS["cameras"]),
                   mode="replace")
    assert len(read_features(db, LAYERS["cameras"])) == total


def test_bad_bbox_and_bad_coords_are_refused(cli, demo_small, tmp_path):
    bad = cli("export", "cameras", str(tmp_path / "x.geojson"), "--bbox", "1,2,3")
    assert bad.returncode != 0 and "--bbox" in bad.stderr
    coords = cli("export", "cameras", str(tmp_path / "x.geojson"), "--coords", "wgs72")
    assert coords.returncode != 0 and "'wgs72' is not one of 'wgs84', 'gcj02', 'bd09'" in \
        coords.stderr


def test_help_explains_every_option(cli, db_url):
    import click

    from webmap.cli import main

    def commands(group, prefix=()):
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from commands(command, (*prefix, name))
            else:
                yield (*prefix, name), command

    seen = 0
    for path, command in commands(main):
        assert command.help, path
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, (path, param.name)
                seen += 1
    assert seen >= 12
    result = cli("import", "--help")
    assert result.returncode == 0 and "gcj02" in result.stdout and "--mode" in result.stdout
    for word in ("bd09", "EPSG:4490", "EPSG:4534-4554", "--sheet", "--encoding", "--columns"):
        assert word in result.stdout, word
    # `import --help` above ran as a real process; the other help here in process
    result = run_in_process(db_url, "export", "--help")
    assert result.returncode == 0 and "bd09" in result.stdout and "EPSG:4490" in result.stdout
