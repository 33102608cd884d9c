"""A real city's tables: camera ledgers and key-area lists as .xlsx, .xls and GBK CSV.

Chinese headers and values, title rows above the header, BD-09 (Baidu) and GCJ-02
(AMap) coordinates made from known WGS 84 positions inside the demo area; bad rows are
named by the row number the sheet shows, and nothing is written.
"""

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from pyproj import Geod
from sqlalchemy import text
from sqlalchemy.engine import make_url

from geo.crs import bd09_to_wgs84, wgs84_to_bd09, wgs84_to_gcj02
from layers import LAYERS
from layers.db import engine
from layers.demo import generate
from layers.errors import InputRejected
from layers.io import read_file
from layers.registry import SKIP, header_key
from layers.validate import clean_features

from ..conftest import demo_database, run_cli

pytestmark = pytest.mark.db

TABLES = Path(__file__).resolve().parents[1] / "data" / "tables"
GEOD = Geod(ellps="WGS84")
HEADER = ["编号", "名称", "经度", "纬度", "朝向", "视角", "可视距离(米)", "安装高度", "状态",
          "地址"]


@pytest.fixture(scope="module")
def own(db_url):
    """(engine, cli) of a demo database of the module's own: the imports here add
    cameras and key areas (and so change grids' key-area counts) that other tests must
    not see."""
    url = demo_database(f"{make_url(db_url).database}_sheets")
    db = engine(url)
    yield db, (lambda *args, **kw: run_cli(url, *args, **kw))
    db.dispose()


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    """(N, 2) WGS 84 lon/lat inside the demo's jurisdictions: the demo's own cameras."""
    cams = generate("small", 1)["cameras"]
    return np.column_stack([cams.geometry.x.values[:12], cams.geometry.y.values[:12]])


def _state(db, layer: str) -> tuple[int, int]:
    with db.connect() as conn:
        return (conn.execute(text(f'SELECT count(*) FROM "{layer}"')).scalar_one(),
                conn.execute(text("SELECT count(*) FROM audit")).scalar_one())


def _positions(db, layer: str, column: str, keys: list[str]) -> dict[str, tuple]:
    with db.connect() as conn:
        rows = conn.execute(text(
            f'SELECT {column}, ST_X(geom), ST_Y(geom), * FROM "{layer}" '
            f"WHERE {column} = ANY(:keys)"), {"keys": keys}).mappings().all()
    return {r[column]: r for r in rows}


def _metres(lonlat: np.ndarray, xs, ys) -> np.ndarray:
    _, _, d = GEOD.inv(lonlat[:, 0], lonlat[:, 1], np.asarray(xs), np.asarray(ys))
    return d


def _ledger(path: Path, rows: list[list], titles: bool = True, sheet: str = "监控点位",
            header: list | None = None) -> None:
    """A workbook as a city sends it: a notes sheet first, then the ledger sheet with a
    title and a filled-in-by line above the header (so the header is row 3)."""
    book = openpyxl.Workbook()
    book.active.title = "填表说明"
    book.active.append(["经纬度取自百度地图"])
    ws = book.create_sheet(sheet)
    if titles:
        ws.append(["长沙市雪亮工程视频监控点位台账"])
        ws.append(["填报单位：芙蓉分局", None, None, "填报日期：2026-11-30"])
    ws.append(header or HEADER)
    for row in rows:
        ws.append(row)
    book.save(path)


def _camera_rows(prefix: str, lonlat: np.ndarray, statuses: list[str]) -> list[list]:
    return [[f"{prefix}{i:03d}", f"{prefix}点位{i}", float(x), float(y), 15 * i, 60, 80,
             6.5, status, "五一大道"] for i, ((x, y), status)
            in enumerate(zip(lonlat, statuses, strict=True))]


def _errors(result: subprocess.CompletedProcess) -> list[str]:
    return [ln.strip() for ln in result.stderr.splitlines() if ln.strip()]


def test_xlsx_ledger_in_bd09_with_chinese_headers_and_values(own, truth, tmp_path):
    db, cli = own
    lon, lat = wgs84_to_bd09(truth[:6, 0], truth[:6, 1])
    statuses = ["在线", "离线", "在建", "规划", "online", " 在线 "]
    path = tmp_path / "雪亮工程点位.xlsx"
    _ledger(path, _camera_rows("BD", np.column_stack([lon, lat]), statuses))
    result = cli("import", "cameras", str(path), "--sheet", "监控点位", "--coords", "bd09")
    assert result.returncode == 0, result.stderr
    assert "sheet '监控点位', header on row 3, 6 rows" in result.stdout
    assert "left out: 名称, 地址" in result.stdout
    stored = _positions(db, "cameras", "code", [f"BD{i:03d}" for i in range(6)])
    codes = [f"BD{i:03d}" for i in range(6)]
    assert [stored[c]["status"] for c in codes] == [
        "online", "offline", "planned", "planned", "online", "online"]
    assert [stored[c]["bearing"] for c in codes] == [15.0 * i for i in range(6)]
    assert {stored[c]["range_m"] for c in codes} == {80.0}
    error = _metres(truth[:6], [stored[c]["st_x"] for c in codes],
                    [stored[c]["st_y"] for c in codes])
    assert error.max() < 1.0, error
    # BD-09 really is hundreds of metres off: read as WGS 84 it would be far from truth
    assert _metres(truth[:6], lon, lat).min() > 300


@pytest.mark.parametrize(("encoding", "option"), [
    ("gbk", None), ("gb18030", "gb18030"), ("utf-8-sig", None), ("utf-8", None)])
def test_key_area_csv_in_gcj02_any_encoding(own, truth, tmp_path, encoding, option):
    db, cli = own
    words = ["学校", "医院", "农贸市场", "火车站", "码头", "政务大厅"]
    wanted = ["school", "hospital", "market", "station", "port", "government_hall"]
    lon, lat = wgs84_to_gcj02(truth[6:12, 0], truth[6:12, 1])
    tag = encoding.replace("-", "")
    lines = ["序号,名称,类别,经度,纬度,安保人数"] + [
        f"{i + 1},{tag}重点{words[i]}{i},{words[i]},{float(x)!r},{float(y)!r},{i}"
        for i, (x, y) in enumerate(zip(lon, lat, strict=True))]
    path = tmp_path / "重点区域.csv"
    path.write_bytes("\r\n".join(lines).encode(encoding))
    args = ["--encoding", option] if option else []
    result = cli("import", "key_areas", str(path), "--coords", "gcj02", *args)
    assert result.returncode == 0, result.stderr
    names = [f"{tag}重点{w}{i}" for i, w in enumerate(words)]
    stored = _positions(db, "key_areas", "name", names)
    assert [stored[n]["category"] for n in names] == wanted
    assert [stored[n]["security_staff"] for n in names] == list(range(6))
    error = _metres(truth[6:12], [stored[n]["st_x"] for n in names],
                    [stored[n]["st_y"] for n in names])
    assert error.max() < 1.0, error


def test_bad_rows_are_named_by_sheet_row_and_nothing_is_written(own, truth, tmp_path):
    db, cli = own
    lon, lat = wgs84_to_bd09(truth[:6, 0], truth[:6, 1])
    rows = _camera_rows("BAD", np.column_stack([lon, lat]), ["在线"] * 6)
    rows[1][2] = None  # no 经度: sheet row 5
    rows[2][3] = 95.2  # 纬度 off the planet: sheet row 6
    rows.insert(3, [None] * len(HEADER))  # a blank row (7) is passed over
    rows[4][8] = "损坏"  # an unknown 状态 ("broken"): sheet row 8
    rows[5][4] = 400  # 朝向 out of range: sheet row 9
    path = tmp_path / "ledger.xlsx"
    _ledger(path, rows)
    before = _state(db, "cameras")
    result = cli("import", "cameras", str(path), "--sheet", "监控点位", "--coords", "bd09")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert _errors(result) == [
        "error: 4 of 6 rows refused for layer cameras; nothing was written",
        "row 5: 经度 (lon) is missing a value",
        "row 6: 纬度 (lat): 95.2 is out of range [-90, 90]",
        "row 8: field 'status': '损坏' is not one of online (在线), offline (离线), "
        "planned (规划)",
        "row 9: field 'bearing': 400 is out of range [0, 360)",
    ]
    assert _state(db, "cameras") == before


def test_database_checks_name_sheet_rows_too(own, truth, tmp_path):
    db, cli = own
    rows = _camera_rows("DUP", truth[:3], ["在线"] * 3)
    rows[2][0] = rows[0][0]  # the same 编号 twice: rows 4 and 7 (after a blank row 5)
    rows.insert(1, [None] * len(HEADER))
    rows.append(["DUPFAR", "远处", 116.4, 39.9, 0, 60, 80, 6, "离线", ""])  # Beijing: row 8
    path = tmp_path / "dup.xlsx"
    _ledger(path, rows)
    before = _state(db, "cameras")
    result = cli("import", "cameras", str(path))  # the first sheet has no ledger: named one
    assert result.returncode != 0
    assert _errors(result) == [
        "error: dup.xlsx, sheet '填表说明': no header row: none of the first 10 rows names a "
        "column of layer cameras (such as 经度, 纬度); --sheet names another sheet"]
    result = cli("import", "cameras", str(path), "--sheet", "监控点位")
    assert result.returncode != 0
    lines = _errors(result)
    assert lines[0] == "error: 3 of 4 rows refused for layer cameras; nothing was written"
    assert [ln.split(":")[0] for ln in lines[1:]] == ["row 4", "row 7", "row 8"]
    assert "appears more than once" in lines[1] and "outside every jurisdiction" in lines[3]
    assert _state(db, "cameras") == before


def test_unknown_sheet_and_options_that_do_not_apply(own, truth, tmp_path):
    db, cli = own
    path = tmp_path / "ledger.xlsx"
    _ledger(path, _camera_rows("SH", truth[:1], ["在线"]))
    before = _state(db, "cameras")
    result = cli("import", "cameras", str(path), "--sheet", "摄像头")
    assert result.returncode != 0
    assert _errors(result) == [
        "error: ledger.xlsx: no sheet '摄像头'; its sheets are: '填表说明', '监控点位'"]
    result = cli("import", "cameras", str(path), "--sheet", "监控点位", "--encoding", "gbk")
    assert result.returncode != 0 and "--encoding applies to CSV" in result.stderr
    csv = tmp_path / "a.csv"
    csv.write_text("编号,经度,纬度\n", encoding="utf-8")
    result = cli("import", "cameras", str(csv), "--sheet", "监控点位")
    assert result.returncode != 0 and "--sheet applies to workbooks" in result.stderr
    result = cli("import", "cameras", str(csv), "--encoding", "klingon")
    assert result.returncode != 0 and "'klingon' is not an encoding" in result.stderr
    assert _state(db, "cameras") == before


def test_columns_override_maps_unknown_headers(own, truth, tmp_path):
    db, cli = own
    header = ["点位号", "点位经度", "点位纬度", "朝向", "视角", "可视距离", "在用情况",
              "所属派出所"]
    rows = [[f"CO{i}", float(x), float(y), 90, 45, 60, s, "五一路派出所"]
            for i, ((x, y), s) in enumerate(zip(truth[:2], ["在线", "离线"], strict=True))]
    path = tmp_path / "ledger.xlsx"
    _ledger(path, rows, titles=False, sheet="Sheet1", header=header)
    before = _state(db, "cameras")
    plain = cli("import", "cameras", str(path), "--sheet", "Sheet1")
    assert plain.returncode != 0
    assert len(_errors(plain)) == 1 and "'点位号', '点位经度', '点位纬度'" in plain.stderr
    assert "--columns" in plain.stderr
    for bad, says in [("点位经度lon", "is not HEADER=FIELD"),
                      ("点位经度=lon,在用情况=colour", "'colour' is not a field of layer cameras"),
                      ("=lon", "is not HEADER=FIELD")]:
        result = cli("import", "cameras", str(path), "--sheet", "Sheet1", "--columns", bad)
        assert result.returncode != 0 and says in result.stderr, result.stderr
        assert len(_errors(result)) == 1, result.stderr
    assert _state(db, "cameras") == before
    columns = "点位号=code,点位经度=lon,点位纬度=lat，在用情况=status,所属派出所=-"
    result = cli("import", "cameras", str(path), "--sheet", "Sheet1", "--columns", columns)
    assert result.returncode == 0, result.stderr
    assert "header on row 1" in result.stdout
    stored = _positions(db, "cameras", "code", ["CO0", "CO1"])
    assert (stored["CO0"]["status"], stored["CO1"]["status"]) == ("online", "offline")
    assert _metres(truth[:2], [stored[c]["st_x"] for c in ("CO0", "CO1")],
                   [stored[c]["st_y"] for c in ("CO0", "CO1")]).max() < 0.01


def test_export_in_bd09_round_trips(own, tmp_path):
    db, cli = own
    layer = LAYERS["cameras"]
    path = tmp_path / "cams_bd09.csv"
    result = cli("export", "cameras", str(path), "--coords", "bd09",
                 "--bbox", "112.95,28.00,113.00,28.05")
    assert result.returncode == 0, result.stderr
    with db.connect() as conn:
        original = {r[0]: (r[1], r[2]) for r in conn.execute(text(
            "SELECT code, ST_X(geom), ST_Y(geom) FROM cameras WHERE geom && "
            "ST_MakeEnvelope(112.95, 28.00, 113.00, 28.05, 4326)"))}
    as_written = read_file(path, layer)
    back = read_file(path, layer, coords="bd09")
    assert sorted(back["code"]) == sorted(original) and len(original) > 5
    truth = np.array([original[c] for c in back["code"]])
    assert _metres(truth, as_written.geometry.x, as_written.geometry.y).min() > 300
    assert _metres(truth, back.geometry.x, back.geometry.y).max() < 0.05
    # by the independent inverse too (the file's text, not our reader)
    lon, lat = bd09_to_wgs84(as_written.geometry.x.values, as_written.geometry.y.values)
    assert _metres(truth, lon, lat).max() < 0.05
    bad = cli("export", "cameras", str(tmp_path / "x.csv"), "--coords", "bd09",
              "--crs", "EPSG:4547")
    assert bad.returncode != 0 and "cannot be combined with --crs" in bad.stderr
    xlsx = cli("export", "cameras", str(tmp_path / "x.xlsx"))
    assert xlsx.returncode != 0 and "cannot write '.xlsx'" in xlsx.stderr


def test_incidents_from_a_workbook_with_date_cells(own, truth, tmp_path):
    db, cli = own
    when = [dt.datetime(2026, 5, 1, 20, 30), dt.datetime(2026, 5, 2, 8, 0)]
    rows = [[t, word, float(x), float(y), 2] for t, word, (x, y)
            in zip(when, ["电信诈骗", "矛盾纠纷"], truth[:2], strict=True)]
    path = tmp_path / "警情.xlsx"
    _ledger(path, rows, titles=False, sheet="警情",
            header=["发生时间", "警情类别", "东经", "北纬", "严重程度"])
    result = cli("import", "incidents", str(path), "--sheet", "警情")
    assert result.returncode == 0, result.stderr
    with db.connect() as conn:
        got = conn.execute(text(
            "SELECT category, severity FROM incidents WHERE occurred_at IN "
            "('2026-05-01 20:30+08', '2026-05-02 08:00+08') AND severity = 2 "
            "ORDER BY occurred_at")).all()
    assert [tuple(r) for r in got] == [("fraud", 2), ("dispute", 2)]


def test_xls_workbook(own, tmp_path):
    """tests/data/tables/cameras.xls: an Excel 97-2003 ledger (see its README)."""
    db, cli = own
    path = str(TABLES / "cameras.xls")
    result = cli("import", "cameras", path, "--sheet", "点位")
    assert result.returncode != 0 and "'建设日期'" in result.stderr
    result = cli("import", "cameras", path, "--sheet", "点位", "--columns", "建设日期=-")
    assert result.returncode == 0, result.stderr
    assert "sheet '点位', header on row 2, 2 rows" in result.stdout
    stored = _positions(db, "cameras", "code", ["XLS001", "XLS002"])
    assert (stored["XLS001"]["status"], stored["XLS002"]["status"]) == ("online", "planned")
    assert (stored["XLS001"]["bearing"], stored["XLS002"]["height_m"]) == (45.0, 8.5)
    assert _metres(np.array([[112.964555, 28.019038], [112.941213, 28.00251]]),
                   [stored[c]["st_x"] for c in ("XLS001", "XLS002")],
                   [stored[c]["st_y"] for c in ("XLS001", "XLS002")]).max() < 0.01


def test_xls_without_xlrd_says_so_in_one_line(tmp_path):
    code = ("import sys; sys.modules['xlrd'] = None\n"
            "from layers import LAYERS\nfrom layers.io import read_file\n"
            "from layers.errors import InputRejected\n"
            f"try:\n    read_file({str(TABLES / 'cameras.xls')!r}, LAYERS['cameras'])\n"
            "except InputRejected as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == ("cameras.xls: reading .xls needs the xlrd package "
                                  "(pip install xlrd), or save the workbook as .xlsx")


@pytest.mark.parametrize("name", list(LAYERS))
def test_each_header_and_word_means_one_thing(name):
    """No header of a layer goes to two fields, no word to two choices."""
    layer = LAYERS[name]
    claims: dict[str, set] = {}
    for f in layer.fields:
        for h in f.header_names():
            claims.setdefault(header_key(h), set()).add(f.name)
        words: dict[str, set] = {}
        for word, choice in f.words:
            assert choice in (f.choices or ()), (f.name, word, choice)
            words.setdefault(word, set()).add(choice)
            assert f.choice_of(word) == choice
        assert all(len(c) == 1 for c in words.values()), words
    for axis, headers in (("lon", layer.lon_headers), ("lat", layer.lat_headers),
                          ("wkt", layer.wkt_headers)):
        for h in headers:
            claims.setdefault(header_key(h), set()).add(axis)
    doubled = {k: v for k, v in claims.items() if len(v) > 1}
    assert not doubled
    left_out = {header_key(h) for h in layer.left_out_headers}
    assert all(layer.header_map()[k] == SKIP for k in left_out - set(claims))


def test_a_missing_column_names_the_headers_it_could_have(tmp_path):
    path = tmp_path / "ledger.xlsx"
    _ledger(path, [["A1", "甲", 112.98, 28.02, 0, 60, 50, 6, "在线", ""]], titles=False,
            header=[h if h != "视角" else "备用" for h in HEADER])
    with pytest.raises(InputRejected) as refused:
        read_file(path, LAYERS["cameras"], sheet="监控点位", columns="备用=-")
    assert str(refused.value) == (
        "ledger.xlsx: required field(s) 'fov' missing for layer cameras: no column headed "
        "fov or 视场角(度) or Field of view (°) or 视角 or 水平视角 or 可视角度 ...; name one "
        "with --columns HEADER=fov")


def test_swapped_lon_and_lat_are_pointed_out(tmp_path):
    path = tmp_path / "ledger.xlsx"
    _ledger(path, [["A1", "甲", 28.02, 112.98, 0, 60, 50, 6, "在线", ""]])
    layer = LAYERS["cameras"]
    with pytest.raises(InputRejected) as refused:
        clean_features(read_file(path, layer, sheet="监控点位"), layer)
    assert [str(p) for p in refused.value.problems] == [
        "row 4: 纬度 (lat): 112.98 is out of range [-90, 90]; are 经度 (lon) and 纬度 (lat) "
        "swapped?"]


def test_cgcs2000_lon_lat_and_gauss_kruger_metres(truth, tmp_path):
    """CGCS2000 (EPSG:4490) lon/lat, and a survey table in its 3-degree Gauss-Kruger zone
    for 114E (EPSG:4547) whose X坐标 is the northing, as Chinese surveys write it."""
    from pyproj import Transformer

    layer = LAYERS["cameras"]
    header = ["编号", "X坐标", "Y坐标", "朝向", "视角", "可视距离", "状态"]
    rows = [[f"GK{i}", float(x), float(y), 0, 60, 50, "在线"]
            for i, (x, y) in enumerate(truth[:4])]
    path = tmp_path / "cgcs2000.xlsx"
    _ledger(path, rows, titles=False, sheet="点位", header=["编号", "经度", "纬度", *header[3:]])
    got = read_file(path, layer, crs="EPSG:4490", sheet="点位")
    assert _metres(truth[:4], got.geometry.x, got.geometry.y).max() < 0.01
    to_gk = Transformer.from_crs(4326, 4547, always_xy=True)
    east, north = to_gk.transform(truth[:4, 0], truth[:4, 1])
    rows = [[f"GK{i}", float(n), float(e), 0, 60, 50, "在线"]
            for i, (e, n) in enumerate(zip(east, north, strict=True))]
    path = tmp_path / "gk.xlsx"
    _ledger(path, rows, titles=False, sheet="点位", header=header)
    with pytest.raises(InputRejected, match="'X坐标', 'Y坐标'"):
        read_file(path, layer, crs="EPSG:4547", sheet="点位")
    got = read_file(path, layer, crs="EPSG:4547", sheet="点位", columns="X坐标=lat,Y坐标=lon")
    assert _metres(truth[:4], got.geometry.x, got.geometry.y).max() < 0.01


def test_a_subset_of_a_table_is_numbered_in_its_own_order(truth, tmp_path):
    path = tmp_path / "ledger.xlsx"
    _ledger(path, _camera_rows("SUB", truth[:3], ["在线", "损坏", "在线"]))
    layer = LAYERS["cameras"]
    table = read_file(path, layer, sheet="监控点位")
    with pytest.raises(InputRejected) as whole:
        clean_features(table, layer)
    assert [p.row for p in whole.value.problems] == [5]  # as the sheet shows it
    with pytest.raises(InputRejected) as part:
        clean_features(table.iloc[1:], layer)
    assert [p.row for p in part.value.problems] == [1]  # not the sheet's rows any more


def test_numbers_may_carry_the_unit_of_their_column(truth, tmp_path):
    path = tmp_path / "ledger.xlsx"
    rows = _camera_rows("U", truth[:4], ["在线"] * 4)
    for row, bearing, height in zip(rows, ["90°", "45度", "１２０ 度", "30"],
                                    ["6米", "7.5 m", 8, "9 米"], strict=True):
        row[4], row[7] = bearing, height
    rows[3][6] = "80尺"  # not the column's unit: refused with its reason
    _ledger(path, rows)
    layer = LAYERS["cameras"]
    with pytest.raises(InputRejected) as refused:
        clean_features(read_file(path, layer, sheet="监控点位"), layer)
    assert [str(p) for p in refused.value.problems] == [
        "row 7: field 'range_m': '80尺' is not a number"]
    rows[3][6] = 80
    _ledger(path, rows)
    clean = clean_features(read_file(path, layer, sheet="监控点位"), layer)
    assert list(clean["bearing"]) == [90.0, 45.0, 120.0, 30.0]
    assert list(clean["height_m"]) == [6.0, 7.5, 8.0, 9.0]
