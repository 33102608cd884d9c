"""Incidents' ``occurred_until``: the end of the time an incident happened in.

Imported through ``safegrid import incidents`` with and without the column, refused
whole when it is before ``occurred_at`` (nothing written), and served by the OGC API
items. A small town of its own in a database of its own keeps the shared demo as it is.
"""

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import pytest
import requests
import shapely
from sqlalchemy import text
from sqlalchemy.engine import make_url

from layers import LAYERS
from layers.db import engine, migrate
from layers.store import write_features
from layers.users import add_user, issue_token
from layers.validate import clean_features
from tests.conftest import Server, fresh_database, run_cli

pytestmark = pytest.mark.db

CODE = "990101"
CST = dt.timezone(dt.timedelta(hours=8))
# lon/lat box of the town (about 1 km square near 113.0 E, 28.5 N)
WEST, SOUTH, EAST, NORTH = 113.0, 28.5, 113.0102, 28.509


def town(url: str) -> None:
    """The jurisdiction ``CODE`` (a square of about 1 km) and an admin, written to ``url``."""
    box = shapely.box(WEST, SOUTH, EAST, NORTH)
    gdf = gpd.GeoDataFrame({"code": [CODE], "name": ["测试镇"], "level": ["street"]},
                           geometry=[shapely.MultiPolygon([box])], crs="EPSG:4326")
    write_features(engine(url), LAYERS["jurisdictions"],
                   clean_features(gdf, LAYERS["jurisdictions"]))


@pytest.fixture(scope="module")
def town_url(db_url):
    url = fresh_database(f"{make_url(db_url).database}_until")
    migrate(url)
    town(url)
    return url


def _count(url: str) -> int:
    with engine(url).connect() as conn:
        return conn.execute(text("SELECT count(*) FROM incidents")).scalar()


def _geojson(path: Path, rows: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [113.005, 28.504]},
         "properties": r} for r in rows]}, ensure_ascii=False))
    return path


def test_incidents_import_with_and_without_occurred_until(town_url, tmp_path):
    before = _count(town_url)
    plain = _geojson(tmp_path / "plain.geojson", [
        {"occurred_at": "2026-03-01T08:00:00+08:00", "category": "criminal"}])
    r = run_cli(town_url, "import", "incidents", str(plain))
    assert r.returncode == 0, r.stderr
    spans = _geojson(tmp_path / "spans.geojson", [
        {"occurred_at": "2026-03-02T22:00:00+08:00", "occurred_until": "2026-03-03T07:30:00+08:00",
         "category": "criminal"},
        {"occurred_at": "2026-03-04T10:00:00+08:00", "occurred_until": None,
         "category": "fraud"},
        {"occurred_at": "2026-03-05T10:00:00+08:00",
         "occurred_until": "2026-03-05T10:00:00+08:00", "category": "fraud"}])
    r = run_cli(town_url, "import", "incidents", str(spans))
    assert r.returncode == 0, r.stderr
    assert _count(town_url) == before + 4
    with engine(town_url).connect() as conn:
        rows = conn.execute(text(
            "SELECT occurred_at, occurred_until FROM incidents ORDER BY occurred_at")).all()
    got = {a.astimezone(CST).isoformat(): u and u.astimezone(CST).isoformat()
           for a, u in rows}
    assert got["2026-03-01T08:00:00+08:00"] is None
    assert got["2026-03-02T22:00:00+08:00"] == "2026-03-03T07:30:00+08:00"
    assert got["2026-03-04T10:00:00+08:00"] is None
    assert got["2026-03-05T10:00:00+08:00"] == "2026-03-05T10:00:00+08:00"


def test_a_table_names_the_column_in_chinese(town_url, tmp_path):
    before = _count(town_url)
    csv = tmp_path / "ledger.csv"
    csv.write_text("经度,纬度,发生时间,发生时间止,类别\n"  # local times: CST
                   "113.004,28.503,2026-04-01 23:00,2026-04-02 06:00,刑事\n", encoding="utf-8")
    r = run_cli(town_url, "import", "incidents", str(csv))
    assert r.returncode == 0, r.stderr
    assert _count(town_url) == before + 1
    with engine(town_url).connect() as conn:
        until = conn.execute(text("SELECT occurred_until FROM incidents WHERE occurred_at = "
                                  "'2026-04-01T23:00:00+08:00'")).scalar()
    assert until == dt.datetime(2026, 4, 2, 6, tzinfo=CST)


def test_an_end_before_the_start_writes_nothing(town_url, tmp_path):
    before = _count(town_url)
    bad = _geojson(tmp_path / "bad.geojson", [
        {"occurred_at": "2026-05-01T08:00:00+08:00", "category": "criminal"},
        {"occurred_at": "2026-05-02T08:00:00+08:00",
         "occurred_until": "2026-05-02T07:59:00+08:00", "category": "criminal"}])
    r = run_cli(town_url, "import", "incidents", str(bad))
    assert r.returncode != 0
    assert _count(town_url) == before  # the good row is not written either


def test_an_end_before_the_start_is_refused_with_its_reason(town_url, tmp_path):
    bad = _geojson(tmp_path / "bad.geojson", [
        {"occurred_at": "2026-05-01T08:00:00+08:00", "category": "criminal"},
        {"occurred_at": "2026-05-02T08:00:00+08:00",
         "occurred_until": "2026-05-02T07:59:00+08:00", "category": "criminal"}])
    r = run_cli(town_url, "import", "incidents", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "row 2" in r.stderr and "occurred_until" in r.stderr and "occurred_at" in r.stderr


def test_the_row_check_names_both_fields():
    layer = LAYERS["incidents"]
    start = dt.datetime(2026, 5, 2, 8, tzinfo=CST)
    columns = {"occurred_at": [start, start, start, start],
               "occurred_until": [start - dt.timedelta(minutes=1), start, None,
                                  start + dt.timedelta(hours=9)]}
    problems = layer.order_problems(columns)
    assert [i for i, _ in problems] == [0]
    assert "'occurred_until' (2026-05-02T07:59:00+08:00) is before field 'occurred_at' " \
           "(2026-05-02T08:00:00+08:00)" in problems[0][1]


def test_the_ogc_api_items_show_occurred_until(town_url, tmp_path):
    with engine(town_url).begin() as conn:
        if not conn.execute(text("SELECT 1 FROM users WHERE name = 'townadmin'")).first():
            add_user(conn, "townadmin", "admin", "townadmin-pass-2026")
        token = issue_token(conn, "townadmin")
    server = Server(town_url, tmp_path / "serve.log")
    try:
        r = requests.get(f"{server.url}/collections/incidents/items", timeout=30,
                         headers={"Authorization": f"Bearer {token}"},
                         params={"datetime": "2026-03-02T00:00:00+08:00/"
                                             "2026-03-03T00:00:00+08:00"})
        assert r.status_code == 200, r.text[:300]
        props = [f["properties"] for f in r.json()["features"]]
        assert len(props) == 1
        assert dt.datetime.fromisoformat(props[0]["occurred_until"]) == \
            dt.datetime(2026, 3, 3, 7, 30, tzinfo=CST)
        schema = requests.get(f"{server.url}/collections/incidents/queryables", timeout=30,
                              headers={"Authorization": f"Bearer {token}"})
        if schema.status_code == 200:
            assert "occurred_until" in schema.json()["properties"]
    finally:
        server.stop()
