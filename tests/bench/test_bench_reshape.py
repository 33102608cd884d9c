"""Reshape latency on a district of 2 000 grids (goal: p95 <= 100 ms).

A synthetic district of 40 communities, each tiled by 50 grids with 40 households
each, is written to the test database. Each timed request is a PUT of one grid
through the Flask app in this process, its shared corner moved by up to 30 % of a
grid's size: the whole path (parsing, checks, the re-tiling of the neighbours,
writes, audit, derived counts) in one transaction. References in the same run:

- a PATCH of the same grids' names (the same HTTP and transaction path, no geometry);
- PostGIS topology's ``ST_ChangeEdgeGeom`` moving a shared edge of the same grids,
  the database-native way to reshape a coverage (it cannot move a node shared by
  several edges, which is what dragging a corner does; it bounds what a
  topology-backed design would cost per edit).
"""

import json
import statistics
import time

import numpy as np
import pytest
import shapely
from sqlalchemy import text

from .conftest import _fmt, bench_line

pytestmark = [pytest.mark.bench, pytest.mark.db]

DISTRICT = "439901"
COMMUNITIES, COLS, ROWS = 40, 10, 5
DX, DY = 0.001, 0.002  # degrees: about 100 m x 220 m per grid
EDITS = 120


def _district() -> tuple[list, list, np.ndarray]:
    """Jurisdiction rows, grid rows and household positions of the synthetic district."""
    jurisdictions = [(DISTRICT, "基准区", "district", "430100",
                      shapely.box(113.5, 28.5, 113.5 + 8 * 0.011, 28.5 + 5 * 0.011))]
    grids, homes = [], []
    rng = np.random.default_rng(0)
    for c in range(COMMUNITIES):
        x0, y0 = 113.5 + (c % 8) * 0.011, 28.5 + (c // 8) * 0.011
        xs, ys = x0 + np.arange(COLS + 1) * DX, y0 + np.arange(ROWS + 1) * DY
        code = f"{DISTRICT}{c:03d}"
        jurisdictions.append((code, f"基准社区{c}", "community", DISTRICT,
                              shapely.box(xs[0], ys[0], xs[-1], ys[-1])))
        for i in range(COLS):
            for j in range(ROWS):
                cell = shapely.Polygon([(xs[i], ys[j]), (xs[i + 1], ys[j]),
                                        (xs[i + 1], ys[j + 1]), (xs[i], ys[j + 1])])
                grids.append((f"{code}{i:02d}{j:02d}", code, cell))
                homes.append(rng.uniform((xs[i], ys[j]), (xs[i + 1], ys[j + 1]), (40, 2)))
    return jurisdictions, grids, np.vstack(homes)


@pytest.fixture(scope="module")
def district(db, demo_small):
    jurisdictions, grids, homes = _district()
    with db.begin() as conn:
        conn.execute(text("DELETE FROM grids WHERE jurisdiction_code LIKE :d"),
                     {"d": DISTRICT + "%"})
        conn.execute(text("DELETE FROM households WHERE jurisdiction_code LIKE :d"),
                     {"d": DISTRICT + "%"})
        conn.execute(text("DELETE FROM jurisdictions WHERE code LIKE :d"),
                     {"d": DISTRICT + "%"})
        for code, name, level, parent, geom in jurisdictions:
            conn.execute(text(
                "INSERT INTO jurisdictions (geom, code, name, level, parent_code) VALUES "
                "(ST_Multi(ST_GeomFromWKB(:g, 4326)), :c, :n, :l, :p)"),
                {"g": shapely.to_wkb(geom), "c": code, "n": name, "l": level, "p": parent})
        conn.execute(text(
            "INSERT INTO grids (geom, code, name, kind, jurisdiction_code) "
            "SELECT ST_GeomFromWKB(decode(g, 'hex'), 4326), c, c, 'comprehensive', j "
            "FROM unnest(CAST(:g AS text[]), CAST(:c AS text[]), CAST(:j AS text[])) "
            "AS t(g, c, j)"),
            {"g": [shapely.to_wkb(r[2], hex=True) for r in grids],
             "c": [r[0] for r in grids], "j": [r[1] for r in grids]})
        conn.execute(text(
            "INSERT INTO households (geom, code, persons, jurisdiction_code) "
            "SELECT ST_SetSRID(ST_MakePoint(x, y), 4326), 'B' || n, 3, :d || '000' "
            "FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[])) "
            "WITH ORDINALITY AS t(x, y, n)"),
            {"x": homes[:, 0].tolist(), "y": homes[:, 1].tolist(), "d": DISTRICT})
        from layers.store import refresh_derived

        refresh_derived(conn, "grids", shapely.to_wkb(shapely.set_srid(
            jurisdictions[0][4], 4326), include_srid=True))
    with db.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE grids, households"))
    yield len(grids)
    with db.begin() as conn:
        conn.execute(text("DELETE FROM grids WHERE jurisdiction_code LIKE :d"),
                     {"d": DISTRICT + "%"})
        conn.execute(text("DELETE FROM households WHERE code LIKE 'B%' AND "
                          "jurisdiction_code LIKE :d"), {"d": DISTRICT + "%"})
        conn.execute(text("DELETE FROM jurisdictions WHERE code LIKE :d AND level = "
                          "'community'"), {"d": DISTRICT + "%"})
        conn.execute(text("DELETE FROM jurisdictions WHERE code = :d"), {"d": DISTRICT})


@pytest.fixture(scope="module")
def client(db_url, tokens):
    from webmap.app import create_app

    app = create_app({"DATABASE_URL": db_url, "TESTING": True})
    headers = {"Authorization": f"Bearer {tokens['admin']}"}
    return app.test_client(), headers


def _p(times: list[float], q: float) -> float:
    return float(np.percentile(times, q))


def _line(name: str, times: list[float]) -> str:
    return (f"{name}: p50 {_fmt(statistics.median(times))}, p95 {_fmt(_p(times, 95))} "
            f"({len(times)} requests)")


def test_reshape_p95_on_a_district_of_2000_grids(db, district, client):
    http, auth = client
    rng = np.random.default_rng(1)
    with db.connect() as conn:
        ids = dict(conn.execute(text("SELECT code, id FROM grids WHERE jurisdiction_code "
                                     "LIKE :d"), {"d": DISTRICT + "%"}).all())
    reshape_times, patch_times, changed = [], [], []
    for n in range(EDITS):
        c, i, j = rng.integers(COMMUNITIES), rng.integers(1, COLS), rng.integers(1, ROWS)
        grid_id = ids[f"{DISTRICT}{c:03d}{i:02d}{j:02d}"]  # its lower-left corner is inner
        item = http.get(f"/collections/grids/items/{grid_id}", headers=auth)
        feature = item.get_json()
        with db.connect() as conn:
            geom = shapely.from_wkb(bytes(conn.execute(text(
                "SELECT ST_AsBinary(geom) FROM grids WHERE id = :i"),
                {"i": grid_id}).scalar_one()))
        ring = np.array(geom.exterior.coords)
        corner = np.argmin(ring[:-1, 0] + ring[:-1, 1] * DX / DY)  # the lower-left one
        ring[corner] += rng.uniform(-0.3, 0.3, 2) * (DX, DY)
        if corner == 0:
            ring[-1] = ring[0]
        feature["geometry"] = {"type": "Polygon", "coordinates": [ring.tolist()]}
        t0 = time.perf_counter()
        r = http.put(f"/collections/grids/items/{grid_id}", data=json.dumps(feature),
                     headers={**auth, "If-Match": item.headers["ETag"],
                              "Content-Type": "application/geo+json"})
        reshape_times.append(time.perf_counter() - t0)
        assert r.status_code in (200, 422), r.get_data(as_text=True)
        if r.status_code == 200:
            changed.append(len(r.get_json()["changed"]["features"]))
        etag = r.headers.get("ETag") or item.headers["ETag"]
        t0 = time.perf_counter()
        r = http.patch(f"/collections/grids/items/{grid_id}",
                       data=json.dumps({"properties": {"name": f"grid {n}"}}),
                       headers={**auth, "If-Match": etag,
                                "Content-Type": "application/merge-patch+json"})
        patch_times.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.get_data(as_text=True)
    topology = _topology_edge_moves(db, rng)
    p95 = _p(reshape_times, 95)
    bench_line(f"reshape with neighbour update, district of {district} grids: "
               f"{_line('safegrid PUT', reshape_times)}; {len(changed)} applied, "
               f"{np.mean(changed):.1f} grids changed each (goal p95 <= 100 ms)")
    bench_line(f"  {_line('reference PATCH of a name (no geometry)', patch_times)} | "
               f"PUT/PATCH p95 {p95 / _p(patch_times, 95):.1f}x")
    topology_name = ("reference postgis_topology ST_ChangeEdgeGeom (edge only, no feature "
                     "rows, no audit)")
    bench_line(f"  {_line(topology_name, topology)} | p95 ratio "
               f"{_p(topology, 95) / p95:.2f}x")


def _topology_edge_moves(db, rng) -> list[float]:
    """Times of ``ST_ChangeEdgeGeom`` bending an inner edge of one community's grids."""
    code = f"{DISTRICT}000"
    with db.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis_topology"))
        conn.execute(text("SELECT topology.DropTopology('bench_grids') FROM topology.topology "
                          "WHERE name = 'bench_grids'"))
        conn.execute(text("SELECT topology.CreateTopology('bench_grids', 4326, 1e-9)"))
        conn.execute(text("SELECT topology.TopoGeo_AddPolygon('bench_grids', geom) "
                          "FROM grids WHERE jurisdiction_code = :c ORDER BY id"), {"c": code})
        edges = conn.execute(text(
            "SELECT edge_id, ST_AsBinary(geom) FROM bench_grids.edge_data "
            "WHERE left_face <> 0 AND right_face <> 0 AND ST_NPoints(geom) = 2")).all()
    times = []
    for n in range(EDITS):
        edge_id, wkb = edges[n % len(edges)]
        line = shapely.from_wkb(bytes(wkb))
        (ax, ay), (bx, by) = line.coords
        mid = ((ax + bx) / 2 + rng.uniform(-0.05, 0.05) * DX,
               (ay + by) / 2 + rng.uniform(-0.05, 0.05) * DY)
        bent = shapely.LineString([(ax, ay), mid, (bx, by)])
        with db.connect() as conn:  # each bend is undone, so every edge starts straight
            t0 = time.perf_counter()
            conn.execute(text("SELECT topology.ST_ChangeEdgeGeom('bench_grids', :e, "
                              "ST_GeomFromWKB(:g, 4326))"),
                         {"e": edge_id, "g": shapely.to_wkb(bent)})
            times.append(time.perf_counter() - t0)
            conn.rollback()
    with db.begin() as conn:
        conn.execute(text("SELECT topology.DropTopology('bench_grids')"))
    return times
