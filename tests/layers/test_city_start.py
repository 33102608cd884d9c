"""A real city from an empty database, by the command line alone, as the README's quick
start does it: civil-affairs boundaries as a CGCS2000 shapefile with Chinese field names
(its .dbf in GBK with no .cpg), OpenStreetMap as the base, a camera ledger in BD-09, and
first grids planned from the building stock."""

import subprocess
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pyogrio
import pytest
import shapely
from pyproj import Geod
from sqlalchemy import text
from sqlalchemy.engine import make_url

from geo.crs import wgs84_to_bd09
from layers.db import engine

from ..conftest import fresh_database, run_cli

pytestmark = pytest.mark.db

HELSINKI = Path(__file__).resolve().parents[1] / "data" / "osm" / "helsinki.osm.pbf"
GEOD = Geod(ellps="WGS84")
CHANGSHA = shapely.box(112.95, 28.15, 113.05, 28.25)  # 芙蓉区-sized, in lon/lat


@pytest.fixture(scope="module")
def empty(db_url):
    """(engine, cli) of an empty database of the module's own: no schema yet."""
    url = fresh_database(f"{make_url(db_url).database}_realcity")
    db = engine(url)
    yield db, (lambda *args, **kw: run_cli(url, *args, **kw))
    db.dispose()


def _count(db, layer: str) -> int:
    with db.connect() as conn:
        return conn.execute(text(f'SELECT count(*) FROM "{layer}"')).scalar_one()


def _lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def _boundaries(path: Path, outline: shapely.Geometry, crs: int, names: dict) -> None:
    """A city and its two halves as a shapefile in ``crs``, fields named in Chinese."""
    x0, y0, x1, y1 = outline.bounds
    mid = (x0 + x1) / 2
    frame = gpd.GeoDataFrame(
        {"编码": names["codes"], "名称": names["names"], "级别": ["市", "区", "区"],
         "上级": [None, names["codes"][0], names["codes"][0]]},
        geometry=[outline, shapely.box(x0, y0, mid, y1), shapely.box(mid, y0, x1, y1)],
        crs=4326).to_crs(crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyogrio.write_dataframe(frame, path, encoding="gbk")
    path.with_suffix(".cpg").unlink(missing_ok=True)  # as such files often come


def test_a_command_on_an_empty_database_says_to_migrate(empty, tmp_path):
    _, cli = empty
    path = tmp_path / "b.shp"
    _boundaries(path, CHANGSHA, 4547, {"codes": ["430102", "430102001", "430102002"],
                                       "names": ["芙蓉区", "东片", "西片"]})
    result = cli("import", "jurisdictions", str(path), "--encoding", "gbk")
    assert result.returncode != 0
    assert _lines(result) == [
        "error: the database has no safegrid schema yet (relation \"jurisdictions\" does not "
        "exist); run 'safegrid db up' to apply the migrations; nothing was written"]


def test_cgcs2000_shapefile_with_chinese_fields_in_gbk(empty, tmp_path):
    db, cli = empty
    assert cli("db", "up").returncode == 0
    path = tmp_path / "区划.shp"
    names = {"codes": ["430102", "430102001", "430102002"], "names": ["芙蓉区", "东片", "西片"]}
    _boundaries(path, CHANGSHA, 4547, names)  # CGCS2000 / 3-degree GK CM 114E
    # read as the file says (no .cpg: GDAL's default), the Chinese names are garbled
    # and the header map cannot know the columns: refused, nothing written
    garbled = cli("import", "jurisdictions", str(path))
    assert garbled.returncode != 0 and _count(db, "jurisdictions") == 0
    result = cli("import", "jurisdictions", str(path), "--encoding", "gbk")
    assert result.returncode == 0, result.stderr
    with db.connect() as conn:
        rows = conn.execute(text("SELECT code, name, level, parent_code, ST_AsBinary(geom) "
                                 "FROM jurisdictions ORDER BY code")).all()
    assert [r[:4] for r in rows] == [("430102", "芙蓉区", "city", None),
                                     ("430102001", "东片", "district", "430102"),
                                     ("430102002", "西片", "district", "430102")]
    # corners back within a centimetre of the lon/lat they were made from
    stored = np.array(shapely.get_coordinates(shapely.from_wkb(bytes(rows[0][4]))))
    truth = np.array(shapely.get_coordinates(CHANGSHA))
    nearest = [GEOD.inv(*p, *truth[np.argmin(np.hypot(*(truth - p).T))])[2] for p in stored]
    assert max(nearest) < 0.01


def test_columns_override_a_shapefiles_header_map(empty, tmp_path):
    db, cli = empty
    path = tmp_path / "区划2.shp"
    _boundaries(path, CHANGSHA.buffer(-0.01), 4547,
                {"codes": ["430103", "430103001", "430103002"], "names": ["天心区", "北", "南"]})
    before = _count(db, "jurisdictions")
    # 名称 left out: the name is required, so every row is refused and nothing written
    result = cli("import", "jurisdictions", str(path), "--encoding", "gbk", "--columns", "名称=-")
    assert result.returncode != 0 and "name" in result.stderr
    assert _count(db, "jurisdictions") == before
    result = cli("import", "jurisdictions", str(path), "--sheet", "x")
    assert result.returncode != 0 and "--sheet applies to workbooks" in result.stderr


def test_the_quick_start_chain_on_openstreetmap(empty, tmp_path):
    db, cli = empty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extent = shapely.box(*pyogrio.read_dataframe(HELSINKI, layer="points",
                                                     columns=[]).total_bounds)
    city = extent.buffer(0.01, join_style="mitre")
    path = tmp_path / "helsinki.shp"
    _boundaries(path, city, 3067, {"codes": ["HEL", "HEL-W", "HEL-E"],
                                   "names": ["赫尔辛基", "西区", "东区"]})
    assert cli("import", "jurisdictions", str(path), "--encoding", "gbk").returncode == 0
    osm = cli("import-osm", str(HELSINKI), "--within", "HEL", "--quiet")
    assert osm.returncode == 0, osm.stderr
    assert _count(db, "buildings") > 400 and _count(db, "roads") > 2000
    # a ledger in Baidu coordinates: stored within a metre of where the cameras are
    x0, y0, x1, y1 = city.bounds
    truth = np.column_stack([np.linspace(x0 + 0.01, x1 - 0.01, 4),
                             np.linspace(y0 + 0.01, y1 - 0.01, 4)])
    bd_lon, bd_lat = wgs84_to_bd09(truth[:, 0], truth[:, 1])
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "监控点位"
    sheet.append(["编号", "经度", "纬度", "朝向", "视角", "可视距离(米)", "状态"])
    for i in range(4):
        sheet.append([f"XL-{i}", float(bd_lon[i]), float(bd_lat[i]), 90, 60, 80,
                      ["在线", "离线", "在线", "在建"][i]])
    book.save(tmp_path / "台账.xlsx")
    ledger = cli("import", "cameras", str(tmp_path / "台账.xlsx"), "--coords", "bd09")
    assert ledger.returncode == 0, ledger.stderr
    with db.connect() as conn:
        stored = conn.execute(text("SELECT ST_X(geom), ST_Y(geom), status FROM cameras "
                                   "WHERE code LIKE 'XL-%' ORDER BY code")).all()
    # outside China BD-09 is the identity, as it is for the web maps that use it
    assert max(GEOD.inv(x, y, *truth[i])[2] for i, (x, y, _) in enumerate(stored)) < 1.0
    assert [s for *_, s in stored] == ["online", "offline", "online", "planned"]
    # first grids from the building stock: no households, so the data chooses buildings
    grids = cli("grids", "generate", "HEL", "--floor-area", "30000")
    assert grids.returncode == 0, grids.stderr
    made = int(grids.stdout.split()[0])
    assert made == _count(db, "grids") > 10 and "按建筑面积" in grids.stdout
    # again without --replace: refused in one line, nothing written
    again = cli("grids", "generate", "HEL", "--floor-area", "30000")
    assert again.returncode != 0 and "--replace" in again.stderr
    assert _count(db, "grids") == made
    bad = cli("grids", "generate", "HEL", "--weight", "area", "--area", "5", "--replace")
    assert bad.returncode != 0 and "target_area_m2" in bad.stderr
    assert _count(db, "grids") == made
    with db.connect() as conn:
        holes = conn.execute(text(
            "SELECT count(*) FROM jurisdictions j WHERE level = 'district' AND NOT "
            "ST_Equals(ST_SnapToGrid(ST_Union(ARRAY(SELECT geom FROM grids g "
            "WHERE g.jurisdiction_code = j.code)), 1e-7), ST_SnapToGrid(j.geom, 1e-7))"
        )).scalar_one()
    assert holes == 0  # each district's grids cover it exactly
