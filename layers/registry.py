"""The layer registry: one declaration per layer.

A :class:`Layer` names its table, titles, geometry type, fields, time field, who may
read and write it and its default map style. The ORM tables (:mod:`layers.models`),
import validation (:mod:`layers.io`), export and the map page are all derived from
these declarations; adding a layer is one entry here plus one migration.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "LAT_HEADERS",
    "LAYERS",
    "LEFT_OUT_HEADERS",
    "LON_HEADERS",
    "ROLES",
    "SKIP",
    "SYSTEM_COLUMNS",
    "WKT_HEADERS",
    "Field",
    "Layer",
    "UnknownLayer",
    "get_layer",
    "choice_key",
    "header_key",
    "without_unit",
]

FieldType = Literal["text", "int", "float", "datetime"]
ROLES = ("admin", "planner", "police", "border_partner", "viewer")
# Roles that may see personal fields (a household head's name and phone).
PERSONAL_READERS = ("admin", "police", "border_partner")

# Columns every layer table has besides its fields; accepted (and ignored) on import so
# that an export can be imported again.
SYSTEM_COLUMNS = ("id", "version", "updated_at", "updated_by")

# Column headers of tables (CSV, spreadsheets) that hold the position, for every layer.
# Not X坐标/Y坐标: Chinese survey tables put northing in X, so those need --columns.
LON_HEADERS = ("lon", "经度", "东经", "longitude", "lng", "long", "x", "经度坐标")
LAT_HEADERS = ("lat", "纬度", "北纬", "latitude", "y", "纬度坐标")
WKT_HEADERS = ("wkt", "geometry", "geom", "几何", "几何图形")
# Columns of ledgers that no layer stores: read past, and said so.
LEFT_OUT_HEADERS = ("序号", "备注", "地址", "详细地址", "所在位置", "no.")
# The header map's target of a column that is read past.
SKIP = "-"


def header_key(text: object) -> str:
    """A column header as compared with declared headers.

    Width (NFKC: full-width brackets and letters), case, blanks, a leading ``*`` (a
    required column in many templates) and a trailing colon do not matter.
    """
    key = unicodedata.normalize("NFKC", str(text)).lower()
    return re.sub(r"\s+", "", key).lstrip("*").rstrip(":")


def without_unit(key: str) -> str:
    """``key`` less a trailing bracketed unit: ``朝向(度)`` -> ``朝向``."""
    return re.sub(r"(\(.*\)|\[.*\]|【.*】)$", "", key) or key


def choice_key(text: object) -> str:
    """A value as compared with a field's choices and their words (width, case, blanks)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text)).lower())


class UnknownLayer(KeyError):
    """A layer name that is not in the registry."""

    http_status = 404

    def __str__(self) -> str:
        return f"unknown layer {self.args[0]!r}; layers are: {', '.join(LAYERS)}"


# English names of fields, with units; a field not listed is its name in words.
TITLES_EN = {
    "area_m2": "Area (m²)", "bearing": "Bearing (°)", "fov": "Field of view (°)",
    "height_m": "Height (m)", "range_m": "Range (m)", "incidents_30d": "Incidents, last 30 days",
    "grid_code": "Grid code", "head_household": "Head household", "head_name": "Head's name",
    "jurisdiction_code": "Jurisdiction code", "key_areas": "Key areas",
    "occurred_at": "Occurred at", "parent_code": "Parent code", "security_staff":
    "Security staff", "unit_code": "Joint-household unit", "persons": "Persons",
    "class": "Road class", "occurred_until": "Occurred until",
}


@dataclass(frozen=True)
class Field:
    """One attribute of a layer.

    ``required`` fields must be present and non-null on import; optional ones take
    ``default``. ``derived`` fields are computed by safegrid on every write and never
    required. ``minimum``/``maximum`` bound numbers (``exclusive_minimum`` makes the
    lower bound strict). ``ref`` names ``layer.field`` that a value must exist in.
    """

    name: str
    type: FieldType = "text"
    required: bool = True
    default: object = None
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    unique: bool = False
    derived: bool = False
    personal: bool = False
    ref: str | None = None
    # A field of the same layer this one may not be earlier than (both given): e.g. an
    # incident's occurred_until and its occurred_at.
    not_before: str | None = None
    title_zh: str = ""
    # Other column headers that mean this field in a table (its name and titles count too).
    headers: tuple[str, ...] = ()
    # (word, choice) pairs: words that mean a choice, e.g. ("在线", "online").
    words: tuple[tuple[str, str], ...] = ()

    def header_names(self) -> tuple[str, ...]:
        """Every column header that means this field: name, titles and :attr:`headers`."""
        return (self.name, self.title_zh, self.title("en"), *self.headers)

    def choice_of(self, value: object) -> str | None:
        """The choice ``value`` names, or None.

        A choice in any case or width, or one of its :attr:`words`.
        """
        if self.choices is None:
            return None
        key = choice_key(value)
        for choice in self.choices:
            if key == choice:
                return choice
        for word, choice in self.words:
            if key == choice_key(word):
                return choice
        return None

    def choices_text(self) -> str:
        """The choices with their first word each: ``online (在线), offline (离线)``."""
        first: dict[str, str] = {}
        for word, choice in self.words:
            first.setdefault(choice, word)
        return ", ".join(f"{c} ({first[c]})" if c in first else c for c in self.choices or ())

    def title(self, lang: str) -> str:
        """The field's name for a person reading ``lang`` (zh or en): see :data:`TITLES_EN`."""
        if lang == "zh":
            return self.title_zh or self.name
        return TITLES_EN.get(self.name) or self.name.replace("_", " ").capitalize()

    def range_text(self) -> str:
        """Describe the allowed range, e.g. ``[0, 360)``."""
        lo = "(" if self.exclusive_minimum else "["
        hi = ")" if self.exclusive_maximum else "]"
        low = "-inf" if self.minimum is None else f"{self.minimum:g}"
        high = "inf" if self.maximum is None else f"{self.maximum:g}"
        return f"{lo}{low}, {high}{hi}"


@dataclass(frozen=True)
class Layer:
    """Declaration of one layer: the single source for table, API, import and map."""

    name: str
    title_zh: str
    title_en: str
    geometry: Literal["Point", "LineString", "Polygon", "MultiPolygon", "PointOrPolygon"]
    fields: tuple[Field, ...]
    time_field: str | None = None
    editable: bool = True
    sensitive: bool = False
    read_roles: tuple[str, ...] = ROLES
    write_roles: tuple[str, ...] = ("admin",)
    style: dict = field(default_factory=dict)
    # Layers with a jurisdiction_code derived from the geometry when absent.
    located: bool = True
    # Stored as one partition per calendar month of ``time_field`` (layers.partitions).
    partitioned: bool = False
    # Column headers of a table's position: longitude, latitude, or WKT geometry.
    lon_headers: tuple[str, ...] = LON_HEADERS
    lat_headers: tuple[str, ...] = LAT_HEADERS
    wkt_headers: tuple[str, ...] = WKT_HEADERS
    # Ledger columns this layer does not store (mapped to SKIP unless a field has them).
    left_out_headers: tuple[str, ...] = LEFT_OUT_HEADERS

    def header_map(self) -> dict[str, str]:
        """Column header (as :func:`header_key` gives it) -> field, ``lon``, ``lat``, ``wkt``.

        A header with a bracketed unit also matches without it; a column the layer
        leaves out (:attr:`left_out_headers`) goes to :data:`SKIP`.
        """
        targets: list[tuple[str, str]] = [(c, c) for c in SYSTEM_COLUMNS]
        targets += [(h, "lon") for h in self.lon_headers]
        targets += [(h, "lat") for h in self.lat_headers]
        targets += [(h, "wkt") for h in self.wkt_headers]
        targets += [(h, f.name) for f in self.fields for h in f.header_names() if h]
        targets += [(h, SKIP) for h in self.left_out_headers]
        out: dict[str, str] = {}
        for header, target in targets:
            out.setdefault(header_key(header), target)
        for header, target in targets:
            out.setdefault(without_unit(header_key(header)), target)
        return out

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of all declared fields, derived ones included."""
        return tuple(f.name for f in self.fields)

    @property
    def input_fields(self) -> tuple[Field, ...]:
        """Fields a writer supplies (not derived)."""
        return tuple(f for f in self.fields if not f.derived)

    def order_problems(self, columns: Mapping[str, Sequence]) -> list[tuple[int, str]]:
        """(position, reason) of each row where a field is earlier than its ``not_before``.

        ``columns`` maps field names to the coerced values of every row (a DataFrame
        does); a row where either value is missing has no such problem.
        """
        problems: list[tuple[int, str]] = []
        for f in self.fields:
            if f.not_before is None or f.name not in columns or f.not_before not in columns:
                continue
            later, earlier = list(columns[f.name]), list(columns[f.not_before])
            for i, (late, early) in enumerate(zip(later, earlier, strict=True)):
                if _given(late) and _given(early) and late < early:
                    problems.append((i, f"field {f.name!r} ({late.isoformat()}) is before "
                                        f"field {f.not_before!r} ({early.isoformat()})"))
        return problems

    def get_field(self, name: str) -> Field:
        """Return the declared field called ``name``."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


def _given(value: object) -> bool:
    """Whether ``value`` is a value: not None, NaN or NaT (which is not equal to itself)."""
    return value is not None and value == value


def _words(**words: str) -> tuple[tuple[str, str], ...]:
    """(word, choice) pairs from ``choice="词 词"`` (words split on blanks)."""
    return tuple((w, choice) for choice, text in words.items() for w in text.split())


def _jurisdiction_field(required: bool = False) -> Field:
    return Field(
        "jurisdiction_code",
        required=required,
        ref="jurisdictions.code",
        title_zh="所属辖区",
        headers=("辖区代码", "辖区编码", "行政区划代码", "区划代码"),
    )


KEY_AREA_CATEGORIES = (
    "school", "kindergarten", "hospital", "park", "entertainment", "mall", "airport",
    "station", "port", "railway", "border_port", "government_hall", "market",
)
INCIDENT_CATEGORIES = (
    "criminal", "public_order", "dispute", "fire", "fraud", "traffic", "other",
)

_LAYER_LIST: tuple[Layer, ...] = (
    Layer(
        "jurisdictions", "行政区划", "Jurisdictions", "MultiPolygon",
        (
            Field("code", unique=True, title_zh="代码",
                  headers=("编码", "区划代码", "编号", "行政区代码", "XZQDM")),
            Field("name", title_zh="名称", headers=("区划名称", "行政区名称", "XZQMC")),
            Field(
                "level",
                choices=("province", "city", "district", "street", "community", "village"),
                title_zh="层级",
                headers=("级别",),
                words=_words(province="省", city="市 地级市", district="区 县 区县 县级",
                             street="街道 乡镇 乡 镇", community="社区", village="村 行政村"),
            ),
            Field("parent_code", required=False, ref="jurisdictions.code", title_zh="上级代码",
                  headers=("上级", "上级编码", "上级区划代码")),
        ),
        located=False,
        style={"color": "#444444", "weight": 2, "fillOpacity": 0.0},
    ),
    Layer(
        "grids", "网格", "Grids", "Polygon",
        (
            Field("code", unique=True, title_zh="网格编码", headers=("网格编号", "编码", "编号")),
            Field("name", title_zh="网格名称", headers=("名称",)),
            Field("kind", choices=("comprehensive", "dedicated"), title_zh="网格类型",
                  headers=("类型",), words=_words(comprehensive="综合网格 综合",
                                                   dedicated="专属网格 专属")),
            _jurisdiction_field(),
            Field("households", "int", derived=True, title_zh="户数"),
            Field("population", "int", derived=True, title_zh="人口"),
            Field("area_m2", "float", derived=True, title_zh="面积(平方米)"),
            Field("key_areas", "int", derived=True, title_zh="重点区域数"),
            Field("incidents_30d", "int", derived=True, title_zh="近30天警情"),
        ),
        write_roles=("admin", "planner"),
        style={"color": "#1f78b4", "weight": 1.5, "fillOpacity": 0.08},
    ),
    Layer(
        "households", "住户", "Households", "Point",
        (
            Field("code", unique=True, title_zh="户编码", headers=("户号", "编号")),
            Field("persons", "int", minimum=0, maximum=100, title_zh="人数",
                  headers=("人口", "户人数", "家庭人口")),
            Field("head_name", required=False, personal=True, title_zh="户主姓名",
                  headers=("户主",)),
            Field("phone", required=False, personal=True, title_zh="联系电话",
                  headers=("电话", "手机", "手机号")),
            _jurisdiction_field(),
            Field("grid_code", derived=True, title_zh="所属网格"),
            Field("unit_code", derived=True, title_zh="所属联户单元"),
        ),
        sensitive=True,
        read_roles=("admin", "police", "border_partner"),
        write_roles=("admin",),
        style={"color": "#6a3d9a", "radius": 2},
    ),
    Layer(
        "household_units", "联户单元", "Joint-household units", "Polygon",
        (
            Field("code", unique=True, title_zh="联户单元编码"),
            Field("grid_code", ref="grids.code", title_zh="所属网格"),
            Field("head_household", title_zh="联户长户编码"),
            Field("size", "int", minimum=1, maximum=100, title_zh="户数"),
            _jurisdiction_field(),
            Field("status", choices=("current", "stale"), default="current", derived=True,
                  title_zh="状态"),
        ),
        write_roles=("admin", "planner"),
        style={"color": "#33a02c", "weight": 1, "fillOpacity": 0.05},
    ),
    Layer(
        "key_areas", "重点区域", "Key areas", "PointOrPolygon",
        (
            Field("name", title_zh="名称", headers=("单位名称", "场所名称", "区域名称")),
            Field("category", choices=KEY_AREA_CATEGORIES, title_zh="类别",
                  headers=("类型", "场所类别", "场所类型", "type"), words=_words(
                      school="学校 小学 中学 中小学 高中 大学",
                      kindergarten="幼儿园 托儿所",
                      hospital="医院 卫生院",
                      park="公园",
                      entertainment="娱乐场所 娱乐",
                      mall="商场 购物中心 商场超市 超市",
                      airport="机场",
                      station="车站 火车站 汽车站 客运站 高铁站",
                      port="港口 码头",
                      railway="铁路",
                      border_port="口岸",
                      government_hall="政务大厅 政务服务中心 行政服务中心",
                      market="市场 农贸市场 集贸市场",
                  )),
            Field("security_staff", "int", required=False, default=0, minimum=0,
                  maximum=10000, title_zh="安保人数", headers=("保安人数", "安保力量")),
            _jurisdiction_field(),
        ),
        write_roles=("admin", "planner"),
        style={"color": "#e31a1c", "weight": 2, "fillOpacity": 0.25},
    ),
    Layer(
        "cameras", "视频监控", "Cameras", "Point",
        (
            Field("code", unique=True, title_zh="设备编码",
                  headers=("编号", "设备编号", "点位编号", "点位编码", "摄像机编号",
                           "国标编码", "camera")),
            Field("bearing", "float", minimum=0, maximum=360, exclusive_maximum=True,
                  title_zh="朝向(度)", headers=("朝向角", "方向角", "方位角", "方向",
                                               "azimuth", "heading", "direction")),
            Field("fov", "float", minimum=0, maximum=360, exclusive_minimum=True,
                  title_zh="视场角(度)", headers=("视角", "水平视角", "可视角度", "angle")),
            Field("range_m", "float", minimum=0, maximum=1000, exclusive_minimum=True,
                  title_zh="可视距离(米)", headers=("监控距离", "视距", "range", "distance")),
            Field("height_m", "float", required=False, minimum=0, maximum=300,
                  title_zh="安装高度(米)", headers=("杆高", "高度", "height")),
            Field("status", choices=("online", "offline", "planned"), title_zh="状态",
                  headers=("在线", "在线状态", "是否在线", "设备状态", "运行状态"),
                  words=_words(online="在线 是", offline="离线 否",
                               planned="规划 在建 计划 拟建 待建")),
            _jurisdiction_field(),
        ),
        write_roles=("admin", "police"),
        style={"color": "#ff7f00", "radius": 3},
        left_out_headers=(*LEFT_OUT_HEADERS, "名称", "点位名称", "设备名称", "安装地址",
                          "安装位置"),
    ),
    Layer(
        "checkpoints", "检查站卡点", "Checkpoints", "Point",
        (
            Field("name", title_zh="名称", headers=("卡点名称",)),
            Field("kind", choices=("checkpoint", "security_post", "e_gate", "police_station"),
                  title_zh="类型", headers=("类别",), words=_words(
                      checkpoint="检查站", security_post="治安卡点 卡点",
                      e_gate="电子卡口 卡口", police_station="警务站")),
            _jurisdiction_field(),
        ),
        write_roles=("admin", "police"),
        style={"color": "#b15928", "radius": 5},
    ),
    Layer(
        "roads", "道路", "Roads", "LineString",
        (
            Field("name", title_zh="道路名称", headers=("名称", "路名")),
            Field("class", choices=("motorway", "arterial", "collector", "local", "path"),
                  title_zh="道路等级", headers=("等级",), words=_words(
                      motorway="高速公路 高速", arterial="主干路 主干道",
                      collector="次干路 次干道", local="支路", path="步行道 小路")),
            _jurisdiction_field(),
        ),
        style={"color": "#7f7f7f", "weight": 2},
    ),
    Layer(
        "buildings", "建筑", "Buildings", "Polygon",
        (
            Field("height_m", "float", required=False, minimum=0, maximum=1000,
                  title_zh="高度(米)", headers=("建筑高度", "楼高")),
            _jurisdiction_field(),
        ),
        style={"color": "#a6a6a6", "weight": 0.5, "fillOpacity": 0.4},
    ),
    Layer(
        "incidents", "警情事件", "Incidents", "Point",
        (
            Field("occurred_at", "datetime", title_zh="发生时间",
                  headers=("报警时间", "接警时间", "时间", "time", "datetime")),
            Field("occurred_until", "datetime", required=False, not_before="occurred_at",
                  title_zh="发生时间止",
                  headers=("发生时间至", "截止时间", "结束时间", "发案时间止", "until")),
            Field("category", choices=INCIDENT_CATEGORIES, title_zh="类别",
                  headers=("警情类别", "案件类别", "类型"), words=_words(
                      criminal="刑事 刑事案件", public_order="治安 治安案件",
                      dispute="纠纷 矛盾纠纷", fire="火灾 火警", fraud="诈骗 电信诈骗",
                      traffic="交通 交通事故", other="其他")),
            Field("severity", "int", required=False, default=1, minimum=1, maximum=5,
                  title_zh="严重程度", headers=("等级", "级别")),
            _jurisdiction_field(),
        ),
        time_field="occurred_at",
        partitioned=True,
        sensitive=True,
        read_roles=("admin", "police", "border_partner"),
        write_roles=("admin", "police"),
        style={"color": "#d7301f", "radius": 2},
    ),
    Layer(
        "patrol_routes", "联防巡逻路线", "Joint patrol routes", "LineString",
        (
            Field("name", title_zh="名称", headers=("路线名称",)),
            Field("border", title_zh="边界(两市编码)"),
            Field("team", "int", minimum=1, maximum=1000, title_zh="巡逻队"),
            Field("workload", "float", required=False, minimum=0, title_zh="工作量"),
            Field("hours", required=False, title_zh="建议巡逻时段"),
            _jurisdiction_field(required=True),  # the team's city
        ),
        write_roles=("admin", "police", "border_partner"),
        style={"color": "#6a3d9a", "weight": 3},
    ),
)

LAYERS: dict[str, Layer] = {layer.name: layer for layer in _LAYER_LIST}


def get_layer(name: str) -> Layer:
    """Return the declaration of layer ``name`` or raise :class:`UnknownLayer`."""
    try:
        return LAYERS[name]
    except KeyError:
        raise UnknownLayer(name) from None
