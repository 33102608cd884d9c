"""Who sees what: each role x each layer x in and out of scope, checked independently."""

import os
import subprocess

import pyogrio
import pytest
import shapely
from shapely.geometry import shape

from layers import LAYERS
from layers.access import BORDER_ZONE_M
from layers.demo import DEMO_USERS
from layers.store import read_features

pytestmark = pytest.mark.db

USERS = {u["name"]: u for u in DEMO_USERS}


def _subtree(jur, code):
    """Codes under ``code`` (itself included), from the parent links, in Python."""
    codes, frontier = {code}, {code}
    while frontier:
        frontier = set(jur.code[jur.parent_code.isin(frontier)]) - codes
        codes |= frontier
    return codes


def _zone(jur, a, b, width):
    """The A-B border zone with shapely in the metric CRS (independent of PostGIS)."""
    metric = jur.to_crs(32649).set_index("code").geometry
    border = shapely.intersection(metric[a].boundary, metric[b].buffer(1.0))
    zone = shapely.intersection(shapely.union(metric[a], metric[b]), border.buffer(width))
    return zone


@pytest.fixture(scope="module")
def everything(db, demo_small):
    return {name: read_features(db, layer, with_id=True) for name, layer in LAYERS.items()}


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("user", list(USERS))
def test_read_matrix(api, everything, user, layer):
    role = USERS[user]["role"]
    r = api(user, f"/collections/{layer}/items", params={"limit": 10000})
    if role not in LAYERS[layer].read_roles:
        assert r.status_code == 403, r.text
        assert f"may not read {layer}" in r.json()["error"]
        assert api(user, f"/collections/{layer}").status_code == 403
        return
    assert r.status_code == 200, r.text
    got = {f["id"]: f for f in r.json()["features"]}
    table = everything[layer]
    jur = everything["jurisdictions"]
    if role == "admin":
        assert set(got) == set(table.id)
    elif role == "border_partner":
        metric = table.to_crs(32649).set_index("id").geometry
        outer = _zone(jur, USERS[user]["jurisdiction"], USERS[user]["partner"],
                      BORDER_ZONE_M + 50)
        inner = _zone(jur, USERS[user]["jurisdiction"], USERS[user]["partner"],
                      BORDER_ZONE_M - 50)
        assert all(metric[i].distance(outer) < 0.01 for i in got)  # on the edge counts
        # well inside (not on the zone's own edge, where float rounding decides)
        must = set(metric.index[shapely.intersects(metric.values, inner.buffer(-1.0))])
        assert must <= set(got)
        if layer == "incidents":
            assert len(must) > 0
    else:
        codes = _subtree(jur, USERS[user]["jurisdiction"])
        column = "code" if layer == "jurisdictions" else "jurisdiction_code"
        assert set(got) == set(table.id[table[column].isin(codes)])
        assert 0 < len(got) < len(table) or layer in ("buildings",) or len(table) < 3


def test_out_of_scope_item_is_404(api, everything):
    grids = everything["grids"]
    xiangtan = grids[grids.jurisdiction_code.str.startswith("4303")].id.iloc[0]
    changsha = grids[grids.jurisdiction_code.str.startswith("4301")].id.iloc[0]
    assert api("planner", f"/collections/grids/items/{changsha}").status_code == 200
    assert api("planner", f"/collections/grids/items/{xiangtan}").status_code == 404
    assert api("admin", f"/collections/grids/items/{xiangtan}").status_code == 200


def test_border_partner_sees_both_sides_inside_the_zone(api, everything):
    feats = api("partner", "/collections/incidents/items", params={"limit": 10000}).json()
    codes = {f["properties"]["jurisdiction_code"][:4] for f in feats["features"]}
    assert codes == {"4301", "4303"}  # both cities, nothing from Zhuzhou


@pytest.mark.parametrize("layer", list(LAYERS))
def test_gdal_ogr2ogr_copies_every_collection_completely(server, tokens, everything,
                                                         tmp_path, layer):
    out = tmp_path / f"{layer}.geojson"
    env = {**os.environ, "GDAL_HTTP_HEADERS": f"Authorization: Bearer {tokens['admin']}"}
    result = subprocess.run(
        ["ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{server}", layer,
         "-oo", "PAGE_SIZE=700"],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    info = pyogrio.read_info(out)
    assert info["features"] == len(everything[layer])
    first = pyogrio.read_dataframe(out, max_features=1)
    assert set(LAYERS[layer].field_names) - {"head_name", "phone"} <= set(first.columns)
    one = shape(first.geometry.iloc[0].__geo_interface__)
    assert one.is_valid
