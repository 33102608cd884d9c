"""Batch jobs on Dask (a LocalCluster): hot spots read month by month on the workers and
coverage with the fields of view computed there give the single-process answers."""

import datetime as dt
import json

import pytest
from distributed import Client, LocalCluster
from sqlalchemy import text

from layers.coverage import CoverageQuery, coverage
from layers.hotspots import HotspotQuery, get_run, run_batch, run_emerging, run_hotspots
from layers.users import User

pytestmark = pytest.mark.db

ADMIN = User(0, "test", "admin", None, None)
CST = dt.timezone(dt.timedelta(hours=8))
QUERY = HotspotQuery("430100", dt.datetime(2026, 1, 1, tzinfo=CST),
                     dt.datetime(2026, 7, 1, tzinfo=CST), cell=400.0)


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


def _cells(body: dict) -> dict:
    return {(f["properties"]["row"], f["properties"]["col"]): f["properties"]
            for f in body["features"]}


def test_batch_hot_spots_equal_the_single_process_runs(db, demo_small, client):
    batch = run_batch(db, ADMIN, QUERY, client)
    with db.begin() as conn:
        single = run_hotspots(conn, ADMIN, QUERY, "gi")
        emerging = run_emerging(conn, ADMIN, QUERY, "month")
    assert batch["parameters"]["batch"] == {"partitions": 6}
    ours, gi, trend = _cells(batch), _cells(single), _cells(emerging)
    assert batch["parameters"]["incidents_in_cells"] == sum(c["count"] for c in gi.values())
    assert batch["parameters"]["incidents_in_cells"] > 100
    assert set(ours) == set(gi) and len(ours) > 50
    for key, cell in ours.items():
        assert cell["count"] == gi[key]["count"]
        assert cell["class"] == gi[key]["class"]
        assert cell["z"] == pytest.approx(gi[key]["z"], abs=1e-6)
        if key in trend:  # the emerging run leaves out empty cells without a pattern
            assert cell["category"] == trend[key]["category"]
            assert cell["counts"] == trend[key]["counts"]
        else:
            assert cell["count"] == 0 and cell["category"] == "no_pattern"
    assert sum(c["class"] != "not_significant" for c in ours.values()) > 0
    with db.connect() as conn:  # saved: it reopens like any run
        saved = get_run(conn, ADMIN, batch["run"])
    assert saved["features"] == batch["features"]


def test_the_last_moment_of_the_period_counts(db, demo_small, client):
    """A period ending on a day's last microsecond: an incident half a second before its
    end is counted, as in the single-process run."""
    end = dt.datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=CST)
    query = HotspotQuery("430100", dt.datetime(2026, 4, 1, tzinfo=CST), end, cell=400.0)
    with db.begin() as conn:
        conn.execute(text(
            "INSERT INTO incidents (geom, occurred_at, category, jurisdiction_code, updated_by)"
            " SELECT geom, :t, 'fraud', jurisdiction_code, 'test-last' FROM incidents "
            "WHERE jurisdiction_code LIKE '4301%' ORDER BY id LIMIT 1"),
            {"t": end - dt.timedelta(microseconds=500_000)})
    try:
        batch = run_batch(db, ADMIN, query, client)
        with db.begin() as conn:
            single = run_hotspots(conn, ADMIN, query, "gi")
            last = sum(f["properties"]["counts"][-1] for f in batch["features"])
            again = conn.execute(text(
                "SELECT count(*) FROM incidents i, jurisdictions j WHERE j.code = '430100' "
                "AND ST_Intersects(i.geom, j.geom) AND i.occurred_at >= :s "
                "AND i.occurred_at <= :e"),
                {"s": batch["step_edges"][-1]["from"], "e": end}).scalar_one()
    finally:
        with db.begin() as conn:
            conn.execute(text("DELETE FROM incidents WHERE updated_by = 'test-last'"))
    assert {k: c["count"] for k, c in _cells(batch).items()} == \
        {k: c["count"] for k, c in _cells(single).items()}
    # the last step (a whole month back from the end) holds the incident of its last second
    assert batch["step_edges"][-1]["to"] == end.isoformat()
    assert 0 < last <= again


def test_batch_runs_are_for_administrators(db, demo_small):
    from layers.access import Forbidden
    from layers.users import user_by_name

    with db.connect() as conn:
        police = user_by_name(conn, "police")[0]
    with pytest.raises(Forbidden, match="administrators only"):
        run_batch(db, police, QUERY)


def test_batch_coverage_equals_the_single_process_answer(db, demo_small, client):
    query = CoverageQuery("430102", "key_areas")
    with db.connect() as conn:
        ours = coverage(conn, ADMIN, query, client)
        single = coverage(conn, ADMIN, query)
    assert ours["summary"] == single["summary"]
    assert ours["summary"]["cameras"]["watching"] > 10
    ratios = {f["id"]: f["properties"]["covered_ratio"] for f in single["features"]}
    assert {f["id"]: f["properties"]["covered_ratio"] for f in ours["features"]} == ratios
    assert any(r and r > 0 for r in ratios.values())


def _runs(db) -> int:
    with db.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM hotspot_runs")).scalar_one()


def test_the_batch_commands(cli, db, demo_small, tmp_path):
    cells = tmp_path / "cells.geojson"
    r = cli("batch", "hotspots", "--jurisdiction", "430100", "--from", "2026-01-01",
            "--to", "2026-06-30", "--cell", "400", "--workers", "1", "--out", str(cells))
    assert r.returncode == 0, r.stderr[-800:]
    run = int(r.stdout.split()[1].rstrip(":"))
    written = json.loads(cells.read_text())
    with db.connect() as conn:
        saved = get_run(conn, ADMIN, run)
    assert saved["parameters"]["batch"] == {"partitions": 6}
    assert len(saved["features"]) == len(written["features"]) > 50
    area = tmp_path / "coverage.geojson"
    r = cli("batch", "coverage", "--jurisdiction", "430102", "--workers", "1", "--out",
            str(area))
    assert r.returncode == 0, r.stderr[-800:]
    body = json.loads(area.read_text())
    with db.connect() as conn:
        single = coverage(conn, ADMIN, CoverageQuery("430102", "key_areas"))
    assert body["summary"] == single["summary"]
    assert f"{single['summary']['targets']} key_areas" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--jurisdiction", "999999"], "unknown jurisdiction '999999'"),
    (["--jurisdiction", "430100", "--to", "2025-01-01"], "must be before to"),
    (["--jurisdiction", "430100", "--scheduler", "tcp://127.0.0.1:9"],
     "cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
])
def test_bad_batch_runs_say_why_and_save_nothing(cli, db, demo_small, args, message):
    before = _runs(db)
    base = {"--from": "2026-01-01", "--to": "2026-06-30", "--cell": "400"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    r = cli("batch", "hotspots", *[v for kv in base.items() for v in kv])
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr[-500:]
    assert _runs(db) == before
