"""The layer registry: one declaration per layer.

A :class:`Layer` names its table, titles, geometry type, fields, time field, who may
read and write it and its default map style. The ORM tables (:mod:`layers.models`),
import validation (:mod:`layers.io`), export and the map page are all derived from
these declarations; adding a layer is one entry here plus one migration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "LAYERS",
    "ROLES",
    "SYSTEM_COLUMNS",
    "Field",
    "Layer",
    "UnknownLayer",
    "get_layer",
]

FieldType = Literal["text", "int", "float", "datetime"]
ROLES = ("admin", "planner", "police", "border_partner", "viewer")
# Roles that may see personal fields (a household head's name and phone).
PERSONAL_READERS = ("admin", "police", "border_partner")

# Columns every layer table has besides its fields; accepted (and ignored) on import so
# that an export can be imported again.
SYSTEM_COLUMNS = ("id", "version", "updated_at", "updated_by")


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
    "class": "Road class",
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
    title_zh: str = ""

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

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of all declared fields, derived ones included."""
        return tuple(f.name for f in self.fields)

    @property
    def input_fields(self) -> tuple[Field, ...]:
        """Fields a writer supplies (not derived)."""
        return tuple(f for f in self.fields if not f.derived)

    def get_field(self, name: str) -> Field:
        """Return the declared field called ``name``."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


def _jurisdiction_field(required: bool = False) -> Field:
    return Field(
        "jurisdiction_code",
        required=required,
        ref="jurisdictions.code",
        title_zh="所属辖区",
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
            Field("code", unique=True, title_zh="代码"),
            Field("name", title_zh="名称"),
            Field(
                "level",
                choices=("province", "city", "district", "street", "community", "village"),
                title_zh="层级",
            ),
            Field("parent_code", required=False, ref="jurisdictions.code", title_zh="上级代码"),
        ),
        located=False,
        style={"color": "#444444", "weight": 2, "fillOpacity": 0.0},
    ),
    Layer(
        "grids", "网格", "Grids", "Polygon",
        (
            Field("code", unique=True, title_zh="网格编码"),
            Field("name", title_zh="网格名称"),
            Field("kind", choices=("comprehensive", "dedicated"), title_zh="网格类型"),
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
            Field("code", unique=True, title_zh="户编码"),
            Field("persons", "int", minimum=0, maximum=100, title_zh="人数"),
            Field("head_name", required=False, personal=True, title_zh="户主姓名"),
            Field("phone", required=False, personal=True, title_zh="联系电话"),
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
            Field("name", title_zh="名称"),
            Field("category", choices=KEY_AREA_CATEGORIES, title_zh="类别"),
            Field("security_staff", "int", required=False, default=0, minimum=0,
                  maximum=10000, title_zh="安保人数"),
            _jurisdiction_field(),
        ),
        write_roles=("admin", "planner"),
        style={"color": "#e31a1c", "weight": 2, "fillOpacity": 0.25},
    ),
    Layer(
        "cameras", "视频监控", "Cameras", "Point",
        (
            Field("code", unique=True, title_zh="设备编码"),
            Field("bearing", "float", minimum=0, maximum=360, exclusive_maximum=True,
                  title_zh="朝向(度)"),
            Field("fov", "float", minimum=0, maximum=360, exclusive_minimum=True,
                  title_zh="视场角(度)"),
            Field("range_m", "float", minimum=0, maximum=1000, exclusive_minimum=True,
                  title_zh="可视距离(米)"),
            Field("height_m", "float", required=False, minimum=0, maximum=300,
                  title_zh="安装高度(米)"),
            Field("status", choices=("online", "offline", "planned"), title_zh="状态"),
            _jurisdiction_field(),
        ),
        write_roles=("admin", "police"),
        style={"color": "#ff7f00", "radius": 3},
    ),
    Layer(
        "checkpoints", "检查站卡点", "Checkpoints", "Point",
        (
            Field("name", title_zh="名称"),
            Field("kind", choices=("checkpoint", "security_post", "e_gate", "police_station"),
                  title_zh="类型"),
            _jurisdiction_field(),
        ),
        write_roles=("admin", "police"),
        style={"color": "#b15928", "radius": 5},
    ),
    Layer(
        "roads", "道路", "Roads", "LineString",
        (
            Field("name", title_zh="道路名称"),
            Field("class", choices=("motorway", "arterial", "collector", "local", "path"),
                  title_zh="道路等级"),
            _jurisdiction_field(),
        ),
        style={"color": "#7f7f7f", "weight": 2},
    ),
    Layer(
        "buildings", "建筑", "Buildings", "Polygon",
        (
            Field("height_m", "float", required=False, minimum=0, maximum=1000,
                  title_zh="高度(米)"),
            _jurisdiction_field(),
        ),
        style={"color": "#a6a6a6", "weight": 0.5, "fillOpacity": 0.4},
    ),
    Layer(
        "incidents", "警情事件", "Incidents", "Point",
        (
            Field("occurred_at", "datetime", title_zh="发生时间"),
            Field("category", choices=INCIDENT_CATEGORIES, title_zh="类别"),
            Field("severity", "int", required=False, default=1, minimum=1, maximum=5,
                  title_zh="严重程度"),
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
            Field("name", title_zh="名称"),
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
