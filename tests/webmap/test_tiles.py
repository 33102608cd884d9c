"""Vector tiles over HTTP: decoded by mapbox-vector-tile and by GDAL, in scope, revalidated."""

import json
import subprocess

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from layers import LAYERS

from .tilemath import tile_bounds, tile_of

pytestmark = pytest.mark.db

Z = 13






def _city_point(db, layer, prefix):
    with db.connect() as conn:
        return conn.execute(text(
            f"SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
            f"FROM \"{layer}\" WHERE jurisdiction_code LIKE :p ORDER BY id LIMIT 1"),
            {"p": prefix + "%"}).one()


@pytest.mark.parametrize("layer", [n for n in LAYERS if n != "jurisdictions"])
def test_every_layer_tile_decodes_with_the_features_of_the_tile(api, db, layer):
    x, y = tile_of(*_city_point(db, layer, "4301"), Z)
    r = api("admin", f"/tiles/{layer}/{Z}/{x}/{y}.mvt")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    decoded = mapbox_vector_tile.decode(r.content)
    ids = {f["id"] for f in decoded[layer]["features"]}
    lon0, lat0, lon1, lat1 = tile_bounds(x, y, Z)
    with db.connect() as conn:  # brute force: features intersecting the tile
        expected = {row[0] for row in conn.execute(text(
            f"SELECT id FROM \"{layer}\" WHERE ST_Intersects(geom, "
            f"ST_MakeEnvelope(:a, :b, :c, :d, 4326))"), {"a": lon0, "b": lat0, "c": lon1,
                                                      "d": lat1})}
    assert expected and expected <= ids  # the tile buffer may add near neighbours
    sample = decoded[layer]["features"][0]["properties"]  # (MVT leaves nulls out)
    declared = LAYERS[layer]
    assert set(sample) <= set(declared.field_names)
    assert {f.name for f in declared.input_fields if f.required} <= set(sample)


def test_gdal_reads_a_tile(api, db, tmp_path):
    x, y = tile_of(*_city_point(db, "cameras", "4301"), Z)
    data = api("admin", f"/tiles/cameras/{Z}/{x}/{y}.mvt").content
    path = tmp_path / str(Z) / str(x)
    path.mkdir(parents=True)
    (path / f"{y}.pbf").write_bytes(data)
    out = subprocess.run(["ogrinfo", "-ro", "-al", "-so", str(path / f"{y}.pbf")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    count = int(out.stdout.split("Feature Count: ")[1].split()[0])
    assert count == len(mapbox_vector_tile.decode(data)["cameras"]["features"]) > 0


def test_tiles_honour_scope(api, db):
    x, y = tile_of(*_city_point(db, "grids", "4302"), Z)  # a Zhuzhou grid
    admin = mapbox_vector_tile.decode(api("admin", f"/tiles/grids/{Z}/{x}/{y}.mvt").content)
    planner = api("planner", f"/tiles/grids/{Z}/{x}/{y}.mvt")  # Changsha's planner
    assert admin["grids"]["features"]
    codes = [f["properties"]["jurisdiction_code"]
             for f in mapbox_vector_tile.decode(planner.content).get("grids", {"features": []})
             ["features"]]
    assert all(code.startswith("4301") for code in codes)
    assert api("viewer", f"/tiles/incidents/{Z}/{x}/{y}.mvt").status_code == 403
    assert api(None, f"/tiles/grids/{Z}/{x}/{y}.mvt").status_code == 401


def test_an_edit_is_visible_on_the_next_load(api, db):
    lon, lat = _city_point(db, "cameras", "4301")
    x, y = tile_of(lon, lat, Z)
    first = api("police", f"/tiles/cameras/{Z}/{x}/{y}.mvt")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache"
    same = api("police", f"/tiles/cameras/{Z}/{x}/{y}.mvt", headers={"If-None-Match": etag})
    assert same.status_code == 304
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
               "properties": {"code": "TILE-1", "bearing": 0, "fov": 90, "range_m": 50,
                              "status": "online"}}
    created = api("police", "/collections/cameras/items", method="POST",
                  data=json.dumps(feature), headers={"Content-Type": "application/geo+json"})
    assert created.status_code == 201
    after = api("police", f"/tiles/cameras/{Z}/{x}/{y}.mvt", headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["ETag"] != etag
    codes = [f["properties"]["code"]
             for f in mapbox_vector_tile.decode(after.content)["cameras"]["features"]]
    assert "TILE-1" in codes
    api("police", "/" + created.headers["Location"].split("/", 3)[3], method="DELETE")
