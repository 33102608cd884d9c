"""Bulk import of the city demo's incidents: safegrid's validated, audited import
(pyogrio read, checks, each point located among the leaf jurisdictions, COPY into a
partition per month, derived fields) against GeoPandas ``to_postgis`` (CSV through COPY
into a new table with one spatial index, no checks) into the same PostGIS. Both read the
file; safegrid also writes three more indexes, a partition per month and an audit row."""

import statistics

import pytest
from sqlalchemy import text

from layers import LAYERS
from layers.demo import generate
from layers.io import read_file, write_file
from layers.store import write_features
from layers.validate import clean_features

from .conftest import median_time, report

pytestmark = [pytest.mark.bench, pytest.mark.db]


def test_import_incidents_vs_geopandas_to_postgis(db, tmp_path):
    from layers import demo

    demo.load(db, "small", 1)  # jurisdictions to check the location against
    city = generate("city", 1)
    incidents = city["incidents"]
    jur = city["jurisdictions"]
    write_features(db, LAYERS["jurisdictions"], clean_features(jur, LAYERS["jurisdictions"]),
                   mode="replace")
    path = tmp_path / "incidents.fgb"
    write_file(incidents, path)
    layer = LAYERS["incidents"]

    def ours():
        clean = clean_features(read_file(path, layer), layer)
        write_features(db, layer, clean, mode="replace", progress=False)

    def reference():
        raw = read_file(path, layer)
        raw.to_postgis("bench_incidents", db, if_exists="replace", index=False,
                       chunksize=50_000)

    # taken in turns, so that a change in the machine's load falls on both alike
    times = [(median_time(ours, 1), median_time(reference, 1)) for _ in range(3)]
    ours_s, ref_s = (statistics.median(t) for t in zip(*times, strict=True))
    with db.connect() as conn:  # every check ran: each incident has its jurisdiction
        written, located = conn.execute(text(
            "SELECT count(*), count(jurisdiction_code) FROM incidents")).one()
    assert written == located == len(incidents)
    report(f"import {len(incidents)} incidents from FlatGeobuf", ours_s,
           "geopandas to_postgis (no validation)", ref_s)
    with db.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS bench_incidents")
