"""The bad-input corpus: each file is refused with a reason, and nothing is written."""

from pathlib import Path

import pytest
from sqlalchemy import text

from ..clihelp import run_in_process

pytestmark = pytest.mark.db

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"

# file, layer, what the error must say
CASES = [
    ("self_intersecting_grid.geojson", "grids", "Self-intersection"),
    ("wrong_geometry_type_camera.geojson", "cameras", "geometry is a LineString"),
    ("off_planet_camera.geojson", "cameras", "off the planet"),
    ("projected_coordinates_without_crs.geojson", "cameras", "wrong CRS"),
    ("missing_field_camera.geojson", "cameras", "required field(s) 'status' missing"),
    ("missing_value_camera.geojson", "cameras", "field 'status' is missing a value"),
    ("unknown_field_camera.geojson", "cameras", "unknown field(s) 'colour'"),
    ("out_of_range_fov.geojson", "cameras", "400 is out of range (0, 360]"),
    ("out_of_range_bearing.geojson", "cameras", "360 is out of range [0, 360)"),
    ("bad_category_incident.geojson", "incidents", "'alien' is not one of"),
    ("outside_jurisdiction_camera.geojson", "cameras", "outside every jurisdiction"),
    ("duplicate_code_cameras.geojson", "cameras", "'DUP' appears more than once"),
    ("existing_code_camera.geojson", "cameras", "'CAM000001' already exists"),
    ("unknown_reference_grid.geojson", "grids", "'999999' is not a code in jurisdictions"),
    ("null_geometry_camera.geojson", "cameras", "geometry is missing"),
    ("malformed.geojson", "cameras", "cannot read the file"),
    # a table's rows are numbered as a spreadsheet shows them: the header is row 1
    ("bad_datetime_incidents.csv", "incidents", "row 3: field 'occurred_at'"),
    ("not_a_number_households.csv", "households", "'many' is not a number"),
    ("nan_coordinates_incidents.csv", "incidents", "NaN"),
    ("no_geometry_columns.csv", "households", "has no geometry"),
    ("cameras.txt", "cameras", "unknown file type"),
]


def _state(db, layer):
    with db.connect() as conn:
        count = conn.execute(text(f'SELECT count(*) FROM "{layer}"')).scalar_one()
        audits = conn.execute(text("SELECT count(*) FROM audit")).scalar_one()
    return count, audits


def test_corpus_has_at_least_fifteen_files():
    assert len({c[0] for c in CASES}) >= 15
    assert all((BAD / name).exists() for name, _, _ in CASES)


# The corpus goes through `safegrid import` in this process (the same command, its
# messages and exit code, without a new process's start-up per file); the tests below
# run `safegrid import` as a real process, bad rows, layer and CRS.
@pytest.mark.parametrize(("name", "layer", "reason"), CASES, ids=[c[0] for c in CASES])
def test_bad_file_is_refused_and_nothing_written(db, db_url, demo_small, name, layer, reason):
    before = _state(db, layer)
    result = run_in_process(db_url, "import", layer, str(BAD / name))
    assert result.returncode != 0
    assert reason in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert _state(db, layer) == before


def test_mixed_good_and_bad_rows_write_nothing_and_show_twenty(db, demo_small, cli):
    before = _state(db, "cameras")
    result = cli("import", "cameras", str(BAD / "many_bad_rows_cameras.geojson"))
    assert result.returncode != 0
    lines = [ln for ln in result.stderr.splitlines() if ln.strip().startswith("row ")]
    assert len(lines) == 20
    assert lines[0].strip() == "row 6: field 'fov': -1 is out of range (0, 360]"
    assert "... and 5 more bad rows" in result.stderr
    assert "25 of 30 rows refused" in result.stderr
    assert _state(db, "cameras") == before


def test_unknown_layer_is_refused(cli):
    result = cli("import", "unicorns", str(BAD / "malformed.geojson"))
    assert result.returncode != 0
    assert "unknown layer 'unicorns'" in result.stderr


def test_unknown_crs_is_refused(db, demo_small, cli):
    before = _state(db, "cameras")
    result = cli("import", "cameras", str(BAD / "off_planet_camera.geojson"), "--crs", "EPSG:0")
    assert result.returncode != 0
    assert "unknown CRS 'EPSG:0'" in result.stderr
    assert _state(db, "cameras") == before
