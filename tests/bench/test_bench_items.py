"""Items pages of 1 000 features from a 1M-incident table, first page and 500th page:
safegrid (keyset paging, GeoJSON built in PostGIS) against pygeoapi's PostgreSQL
provider (OFFSET paging, features built in Python) on the same table and database.

Both are called through their Flask apps in this process (no network in between).
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from layers import LAYERS
from layers.partitions import prepare

from .conftest import median_time, report

pytestmark = [pytest.mark.bench, pytest.mark.db]

ROWS = 1_000_000
PAGE = 1000
DEEP = 500


@pytest.fixture(scope="module")
def million(db, demo_small):
    with db.begin() as conn:
        conn.execute(text("DELETE FROM incidents"))
        conn.execute(text(f"""
            INSERT INTO incidents (geom, occurred_at, category, severity, jurisdiction_code)
            SELECT ST_SetSRID(ST_MakePoint(112.93 + random() * 0.1,
                                           27.99 + random() * 0.06), 4326),
                   timestamptz '2025-11-01' + random() * interval '365 days',
                   (ARRAY['criminal', 'dispute', 'fraud'])[1 + floor(random() * 3)::int],
                   1 + floor(random() * 5)::int, '430102001001'
            FROM generate_series(1, {ROWS})"""))
    # written with plain SQL: give the months that went to DEFAULT their partitions
    prepare(db, LAYERS["incidents"])
    with db.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE incidents"))
        deep_after = conn.execute(text(
            f"SELECT id FROM incidents ORDER BY id OFFSET {PAGE * (DEEP - 1) - 1} LIMIT 1")
        ).scalar_one()
    return deep_after


def _pygeoapi_client(db_url: str, tmp: Path):
    url = make_url(db_url)
    config = textwrap.dedent(f"""
        server:
          bind: {{host: 127.0.0.1, port: 5000}}
          url: http://localhost:5000
          mimetype: application/json; charset=UTF-8
          encoding: utf-8
          language: en-US
          limits: {{default_items: {PAGE}, max_items: 10000}}
          map: {{url: 'https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png', attribution: OSM}}
        logging: {{level: ERROR}}
        metadata:
          identification: {{title: bench, description: bench, keywords: [bench],
                            keywords_type: theme, terms_of_service: 'https://example.org',
                            url: 'https://example.org'}}
          license: {{name: CC-BY 4.0, url: 'https://creativecommons.org/licenses/by/4.0/'}}
          provider: {{name: bench, url: 'https://example.org'}}
          contact: {{name: bench, position: bench, address: bench, city: bench,
                     stateorprovince: bench, postalcode: '0', country: bench, phone: '0',
                     fax: '0', email: bench@example.org, url: 'https://example.org',
                     hours: bench, instructions: bench, role: pointOfContact}}
        resources:
          incidents:
            type: collection
            title: incidents
            description: incidents
            keywords: [incidents]
            extents:
              spatial: {{bbox: [-180, -90, 180, 90],
                         crs: 'http://www.opengis.net/def/crs/OGC/1.3/CRS84'}}
            providers:
              - type: feature
                name: PostgreSQL
                data: {{host: '{url.query["host"]}', port: {url.query.get("port", 5432)},
                        dbname: {url.database}, user: {url.username},
                        search_path: [public]}}
                id_field: id
                table: incidents
                geom_field: geom
        """)
    (tmp / "pygeoapi.yml").write_text(config)
    openapi = tmp / "openapi.yml"
    env = {**os.environ, "PYGEOAPI_CONFIG": str(tmp / "pygeoapi.yml"),
           "PYGEOAPI_OPENAPI": str(openapi)}
    subprocess.run([str(Path(sys.executable).with_name("pygeoapi")), "openapi", "generate",
                    str(tmp / "pygeoapi.yml"), "--output-file", str(openapi)],
                   check=True, env=env, capture_output=True)
    os.environ.update({k: env[k] for k in ("PYGEOAPI_CONFIG", "PYGEOAPI_OPENAPI")})
    from pygeoapi.flask_app import APP

    return APP.test_client()


def test_items_pages_vs_pygeoapi(db, db_url, million, tokens, tmp_path):
    from webmap import create_app

    ours = create_app({"DATABASE_URL": db_url}).test_client()
    auth = {"Authorization": f"Bearer {tokens['admin']}"}
    theirs = _pygeoapi_client(db_url, tmp_path)
    base = "/collections/incidents/items"

    def get(client, url, **kw):
        r = client.get(url, **kw)
        assert r.status_code == 200, r.data[:300]
        assert len(json.loads(r.data)["features"]) == PAGE
        return r

    cases = {
        "first page": (f"{base}?limit={PAGE}", f"{base}?f=json&limit={PAGE}"),
        f"page {DEEP}": (f"{base}?limit={PAGE}&after={million}",
                         f"{base}?f=json&limit={PAGE}&offset={PAGE * (DEEP - 1)}"),
    }
    for name, (our_url, their_url) in cases.items():
        first_ours = json.loads(get(ours, our_url, headers=auth).data)["features"]
        first_theirs = json.loads(get(theirs, their_url).data)["features"]
        assert [f["id"] for f in first_ours] == [int(f["id"]) for f in first_theirs]
        t_ours = median_time(lambda u=our_url: get(ours, u, headers=auth), repeat=5)
        t_theirs = median_time(lambda u=their_url: get(theirs, u), repeat=5)
        report(f"items {name} of {PAGE} from {ROWS} incidents", t_ours,
               "pygeoapi PostgreSQL provider", t_theirs)
