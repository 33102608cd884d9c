"""Vector tiles of 200 000 building footprints: safegrid's ``/tiles`` endpoint (token
check, scope, ``ST_AsMVT`` with the declared fields, ETag) through its Flask app,
against the bare ``ST_AsMVT`` query on the same table run with psycopg: what the
service adds over PostGIS itself.
"""

import mapbox_vector_tile
import numpy as np
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from .conftest import median_time, report

pytestmark = [pytest.mark.bench, pytest.mark.db]

ROWS = 200_000
BOX = (112.93, 27.99, 113.03, 28.05)  # lon/lat, inside the demo's Changsha
ZOOM = 15
RAW = """
    SELECT ST_AsMVT(t.*, 'buildings', 4096, 'geom', 'id') FROM (
        SELECT ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s),
                            4096, 64, true) AS geom, id, height_m, jurisdiction_code
        FROM buildings
        WHERE geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s,
                                                   margin => 64.0 / 4096), 4326)) t
    WHERE t.geom IS NOT NULL"""


def _tiles(z: int) -> list[tuple[int, int, int]]:
    n = 2**z

    def tx(lon):
        return int((lon + 180) / 360 * n)

    def ty(lat):
        return int((1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n)

    return [(z, x, y) for x in range(tx(BOX[0]), tx(BOX[2]) + 1)
            for y in range(ty(BOX[3]), ty(BOX[1]) + 1)]


@pytest.fixture(scope="module")
def buildings(db, demo_small):
    with db.begin() as conn:
        conn.execute(text(f"""
            INSERT INTO buildings (geom, height_m, jurisdiction_code)
            SELECT ST_Envelope(ST_Buffer(ST_SetSRID(ST_MakePoint(
                       {BOX[0]} + random() * {BOX[2] - BOX[0]},
                       {BOX[1]} + random() * {BOX[3] - BOX[1]}), 4326), 0.00008)),
                   3 + random() * 60, '430102001001'
            FROM generate_series(1, {ROWS})"""))
    with db.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE buildings"))
    yield
    with db.begin() as conn:
        conn.execute(text("DELETE FROM buildings WHERE id > (SELECT max(id) FROM buildings) "
                          f"- {ROWS}"))


def test_tiles_vs_bare_st_asmvt(db_url, buildings, tokens):
    from webmap import create_app

    client = create_app({"DATABASE_URL": db_url, "RATE_LIMIT": "off"}).test_client()
    auth = {"Authorization": f"Bearer {tokens['admin']}"}
    url = make_url(db_url)
    raw = psycopg.connect(host=url.query["host"], port=int(url.query.get("port", 5432)),
                          dbname=url.database, user=url.username)
    tiles = _tiles(ZOOM)

    def ours() -> list[bytes]:
        out = []
        for z, x, y in tiles:
            r = client.get(f"/tiles/buildings/{z}/{x}/{y}.mvt", headers=auth)
            assert r.status_code == 200
            out.append(r.data)
        return out

    def bare() -> list[bytes]:
        return [bytes(raw.execute(RAW, {"z": z, "x": x, "y": y}).fetchone()[0] or b"")
                for z, x, y in tiles]

    # the same features in both (ids of every tile)
    def ids(tile: bytes) -> set:
        decoded = mapbox_vector_tile.decode(tile)
        return {f["id"] for f in decoded.get("buildings", {}).get("features", [])}

    mine, theirs = ours(), bare()
    assert [ids(t) for t in mine] == [ids(t) for t in theirs]
    features = sum(len(ids(t)) for t in mine)
    assert features > ROWS  # the box is covered, edge features counted in both tiles
    t_ours = median_time(ours, repeat=3)
    t_bare = median_time(bare, repeat=3)
    raw.close()
    report(f"vector tiles: {len(tiles)} tiles at z{ZOOM} of {ROWS} buildings "
           f"({features} features)", t_ours, "bare ST_AsMVT query (psycopg)", t_bare)
