"""The Folium map of one city: every layer in a layer control; the pages' Folium parts.

Leaflet and its plugins are served from ``/static/vendor`` so the page works without
internet access. The default basemap is drawn from the project's own layers
(``/tiles/basemap``, :class:`OfflineBasemap`); remote tile sources named in
``SAFEGRID_BASEMAPS`` (:func:`configured_basemaps`) are further base layers, and one
that fails to load says so on the map (``/static/basemap.js``).

Every map page is a :class:`Map` on a :class:`Page`: its one inline script (the code
Folium's elements write) carries the response's CSP nonce, written by the page's
template, never found by searching the rendered HTML. Data reaches that script only as
JSON with ``<``, ``>``, ``&`` and ``'`` escaped (Folium's ``tojson``,
:func:`script_json`), and the page's markup only HTML-escaped, so no name can close
the script or open a tag of its own. Tooltips show values as text (:class:`TextTooltip`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

import folium
from branca.element import Figure, MacroElement
from flask import current_app, has_app_context, has_request_context, request
from folium.elements import JSCSSMixin
from folium.template import Template
from markupsafe import escape
from sqlalchemy import Connection, Engine

from layers.access import Forbidden, enter_scope, read_scope, require_within
from layers.border import neighbour_pairs
from layers.errors import SafegridError, UnknownJurisdiction
from layers.features import Scope
from layers.jurisdictions import jurisdiction_box, latest_incident_month
from layers.overview import (
    SOURCES,
    Source,
    cities,
    city_count,
    extent,
    feature_counts,
    incident_count,
    view_layer,
)
from layers.registry import KEY_AREA_CATEGORIES, LAYERS, Layer
from layers.users import User
from layers.validate import LOCAL_TZ
from layers.warnings import WATCH_ROLES

from .auth import csrf_token
from .headers import csp_nonce
from .mapcontrols import CONTROL_TEXT, LocalControls

LANGS = ("zh", "en")
_CATEGORY_ZH = {
    "school": "学校", "kindergarten": "幼儿园", "hospital": "医院", "park": "公园",
    "entertainment": "娱乐场所", "mall": "商场", "airport": "机场", "station": "车站",
    "port": "港口", "railway": "铁路", "border_port": "口岸", "government_hall": "政务大厅",
    "market": "市场",
}
_CATEGORY_COLOURS = dict(zip(KEY_AREA_CATEGORIES, (
    "#e31a1c", "#fb9a99", "#00a6a6", "#33a02c", "#6a3d9a", "#bcbd22", "#525fa8",
    "#cab2d6", "#a6cee3", "#666666", "#b2df8a", "#fdbf6f", "#e7298a"), strict=True))
_TEXT = {
    "zh": {"title": "平安网格 · 地图", "city": "城市", "borders": "市界", "communities": "社区边界",
           "heat": "警情热力图", "key": "重点区域", "lang": "English",
           "logout": "退出", "plan": "网格规划", "analysis": "热点分析",
           "coverage": "监控覆盖", "border": "边界联防",
           "notice": "治安状况告知（{year}年{month}月）", "grid_no": "第{n}网格",
           "households": "{n}户"},
    "en": {"title": "safegrid · map", "city": "City", "borders": "City borders",
           "communities": "Community boundaries", "heat": "Incidents (heat map)",
           "key": "Key areas", "lang": "中文",
           "logout": "Log out", "plan": "Grid planning", "analysis": "Hot spots",
           "coverage": "Camera coverage", "border": "Border",
           "notice": "Security notice ({month_name} {year})", "grid_no": "Grid {n}",
           "households": "{n} households"},
}


_BASEMAP_TEXT = {
    "zh": {"offline": "离线底图（本系统图层）",
           "attribution": "底图：本系统道路、建筑、行政区划图层",
           "failed": "底图“{name}”无法加载（网络不通或瓦片服务器无响应）。"
                     "请在图层控制中改选“离线底图”。",
           "offline_failed": "离线底图有部分瓦片未能从本系统取得，底图可能不完整；"
                             "地图上的图层不受影响。请稍后刷新页面。"},
    "en": {"offline": "Offline basemap (this server's layers)",
           "attribution": "Basemap: this server's roads, buildings and jurisdictions",
           "failed": "The basemap \u201c{name}\u201d cannot be loaded (no network, or its "
                     "tile server does not answer). Choose \u201cOffline basemap\u201d in "
                     "the layer control.",
           "offline_failed": "Some tiles of the offline basemap could not be had from this "
                             "server: the basemap may be incomplete; the map's layers are "
                             "not affected. Reload the page later."},
}
BASEMAP_CRS = ("wgs84", "gcj02")
# The risk warnings' button and panel (static/warnings.js), on the overview and analysis maps.
WARNING_TEXT = {
    "zh": {"button": "预警", "title": "风险预警（待确认）", "close": "关闭",
           "count_of": "{n} 条待确认", "none": "暂无待确认的预警", "loading": "正在读取预警…",
           "kind_emerging_hot_spot": "新出现或加强的热点", "kind_near_repeat_zone": "近重复风险区",
           "kind_risk_level": "场所风险等级上升", "raised": "发出", "until": "有效至",
           "go": "在地图上查看", "ack": "确认", "acked": "已确认（{who}，{when}）",
           "done": "已确认，还有 {n} 条待确认",
           "withheld": "另有 {n} 条预警只向公安和管理员显示", "refused": "未完成",
           "status_401": "登录已失效，请重新登录", "status_403": "您的角色不能确认预警",
           "status_404": "该预警不存在或不在您的辖区", "status_409": "该预警已被确认",
           "status_other": "服务器未能完成"},
    "en": {"button": "Warnings", "title": "Risk warnings (not acknowledged)",
           "close": "Close", "count_of": "{n} not acknowledged",
           "none": "No warnings wait for acknowledgement", "loading": "Reading warnings…",
           "kind_emerging_hot_spot": "New or intensifying hot spot",
           "kind_near_repeat_zone": "Near-repeat risk zone",
           "kind_risk_level": "A place's risk level rose", "raised": "raised",
           "until": "until", "go": "Show on the map", "ack": "Acknowledge",
           "acked": "Acknowledged ({who}, {when})",
           "done": "Acknowledged; {n} more wait", "withheld":
           "{n} more warnings are shown to police and administrators only",
           "refused": "Not done"},
}


class BadParameter(SafegridError):
    """A query parameter with a value a page cannot use (HTTP 400)."""

    http_status = 400


def script_json(value: object) -> str:
    """``value`` as JSON to write inside a ``<script>``: ``<``, ``>``, ``&``, ``'`` escaped.

    No string in it can end the script block or open a tag.
    """
    return (json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")
            .replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027"))


@dataclass(frozen=True)
class Basemap:
    """A remote raster basemap from ``SAFEGRID_BASEMAPS``.

    ``url`` is a Leaflet tile URL template (``{z}``, ``{x}``, ``{y}``, ``{s}``); ``crs``
    is ``wgs84`` or ``gcj02`` (the offset of Chinese web maps).
    """

    name: str
    url: str
    attribution: str
    crs: str


def _basemap(entry: object, i: int) -> Basemap:
    keys = {"name", "url", "attribution", "crs"}
    if not isinstance(entry, dict) or set(entry) != keys:
        raise ValueError(f"SAFEGRID_BASEMAPS[{i}] must be an object with exactly the keys "
                         f"{', '.join(sorted(keys))}, got {entry!r}")
    if not all(isinstance(entry[k], str) and entry[k].strip() for k in keys):
        raise ValueError(f"SAFEGRID_BASEMAPS[{i}]: name, url, attribution and crs must be "
                         "non-empty text")
    if entry["crs"] not in BASEMAP_CRS:
        raise ValueError(f"SAFEGRID_BASEMAPS[{i}].crs must be one of {', '.join(BASEMAP_CRS)}"
                         f", got {entry['crs']!r}")
    if not all(f"{{{part}}}" in entry["url"] for part in "zxy"):
        raise ValueError(f"SAFEGRID_BASEMAPS[{i}].url must contain {{z}}, {{x}} and {{y}}")
    return Basemap(**entry)


def configured_basemaps(config: dict) -> list[Basemap]:
    """The remote basemaps of ``config["BASEMAPS"]`` (``SAFEGRID_BASEMAPS``, JSON).

    Raises
    ------
    ValueError
        Naming the entry and what is wrong with it.
    """
    raw = config.get("BASEMAPS") or []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"SAFEGRID_BASEMAPS is not JSON: {exc}") from None
    if not isinstance(raw, list):
        raise ValueError("SAFEGRID_BASEMAPS must be a JSON list of "
                         '{"name", "url", "attribution", "crs"} objects')
    return [_basemap(entry, i) for i, entry in enumerate(raw)]


class Page(Figure):
    """The HTML page of a map in ``lang``; its inline script carries the response's nonce."""

    _template = Template(
        '<!DOCTYPE html>\n<html lang="{{ this.lang|e }}">\n<head>\n'
        "    {{ this.header.render(**kwargs) }}\n"
        "</head>\n<body>\n    {{ this.html.render(**kwargs) }}\n</body>\n"
        '<script nonce="{{ kwargs.nonce|e }}">\n    {{ this.script.render(**kwargs) }}\n'
        "</script>\n</html>\n")

    def __init__(self, lang: str = "zh"):
        super().__init__()
        self.lang = lang

    def render(self, nonce: str, **kwargs) -> str:
        """The page's HTML, its script under ``nonce``."""
        return super().render(nonce=nonce, **kwargs)


class Map(folium.Map):
    """A Folium map on its own :class:`Page`, Leaflet served from this server.

    Folium's map header also sets ``L_NO_TOUCH`` and ``L_DISABLE_3D`` in an inline
    script of its own; both are Leaflet's defaults, so this header has the styles only.
    It also lets the pointer through the heat map's canvas to the features under it.
    The page uses no jQuery, Bootstrap or icon fonts.
    """

    _template = Template("""
        {% macro header(this, kwargs) %}
        <meta name="viewport" content="width=device-width, initial-scale=1.0,
              maximum-scale=1.0, user-scalable=no">
        <style>
          html, body { width: 100%; height: 100%; margin: 0; padding: 0; }
          #{{ this.get_name() }} { position: relative; width: 100%; height: 100%;
                                   left: 0; top: 0; }
          .leaflet-container { font-size: 1rem; }
          .leaflet-heatmap-layer { pointer-events: none; }
        </style>
        {% endmacro %}
        {% macro html(this, kwargs) %}{{ folium_map.html(this, kwargs) }}{% endmacro %}
        {% macro script(this, kwargs) %}{{ folium_map.script(this, kwargs) }}{% endmacro %}
        """)
    _template.globals["folium_map"] = folium.Map._template.module
    default_js = [("leaflet", "/static/vendor/leaflet/leaflet.js")]
    default_css = [("leaflet_css", "/static/vendor/leaflet/leaflet.css")]

    def __init__(self, bounds: list[list[float]] | None = None, **kwargs):
        super().__init__(tiles=None, control_scale=False, zoom_control=False, **kwargs)
        lang = _request_lang()
        Page(lang).add_child(self)
        LocalControls(lang).add_to(self)  # zoom buttons and a metric scale in ``lang``
        if bounds:  # fitted before the basemap comes, which then loads only the view's tiles
            self.fit_bounds(bounds)
        add_basemaps(self, lang)


def _request_lang() -> str:
    lang = request.args.get("lang", "zh") if has_request_context() else "zh"
    return lang if lang in LANGS else "zh"


_VECTORGRID_JS = [("vectorgrid", "/static/vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js"),
                  ("safegrid_basemap", "/static/basemap.js")]


class OfflineBasemap(JSCSSMixin, folium.map.Layer):
    """The basemap drawn from this server's layers: ``/tiles/basemap`` as vector tiles.

    It is put on the map once the page's script has run, so the requests for the page's
    own data go out before the basemap's tiles and are not queued behind them.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = safegridBasemap.offline({{ this.config }});
        setTimeout(function () {
            {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        }, 0);
        {% endmacro %}""")
    default_js = _VECTORGRID_JS

    def __init__(self, name: str, attribution: str, failed: str):
        super().__init__(name=name, overlay=False, show=False)
        self._name = "OfflineBasemap"
        self.config = script_json({"url": "/tiles/basemap/{z}/{x}/{y}.mvt",
                                   "attribution": attribution, "failed": failed})


class BasemapWatch(JSCSSMixin, MacroElement):
    """Says on the map, in the page language, when a remote basemap fails to load."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        safegridBasemap.watch({{ this._parent.get_name() }},
            [{% for layer in this.layers %}{{ layer.get_name() }},{% endfor %}],
            {{ this.config }});
        {% endmacro %}""")
    default_js = _VECTORGRID_JS

    def __init__(self, layers: list[RemoteBasemap], remotes: list[Basemap], lang: str):
        super().__init__()
        self._name = "BasemapWatch"
        self.layers = layers
        self.config = script_json({"names": [b.name for b in remotes],
                                   "crs": [b.crs for b in remotes],
                                   "failed": _BASEMAP_TEXT[lang]["failed"]})


class RemoteBasemap(folium.TileLayer):
    """A basemap of ``SAFEGRID_BASEMAPS``: a GCJ-02 one is shown shifted onto WGS 84."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = safegridBasemap.remote({{ this.tiles|tojson }},
            {{ this.options|tojavascript }}, {{ this.crs|tojson }});
        {% endmacro %}""")

    def __init__(self, basemap: Basemap):
        super().__init__(basemap.url, attr=basemap.attribution, name=basemap.name,
                         overlay=False, show=False, max_zoom=22, max_native_zoom=18)
        self.crs = basemap.crs


def add_basemaps(m: folium.Map, lang: str) -> None:
    """The offline basemap (shown) and the configured remote ones (in the layer control)."""
    text_ = _BASEMAP_TEXT[lang]
    OfflineBasemap(text_["offline"], text_["attribution"], text_["offline_failed"]).add_to(m)
    remotes = configured_basemaps(current_app.config) if has_app_context() else []
    layers = [RemoteBasemap(b).add_to(m) for b in remotes]
    BasemapWatch(layers, remotes, lang).add_to(m)


def render_page(m: Map) -> str:
    """The HTML of ``m``'s page, its inline script under this response's nonce."""
    return m.get_root().render(nonce=csp_nonce())


class TextTooltip(folium.GeoJsonTooltip):
    """A feature's ``fields`` in a table of text: no value becomes markup."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.bindTooltip(function (layer) {
            const table = L.DomUtil.create("table");
            const aliases = {{ this.aliases|tojson }};
            {{ this.fields|tojson }}.forEach(function (field, i) {
                const row = L.DomUtil.create("tr", "", table);
                const value = layer.feature.properties[field];
                L.DomUtil.create("th", "", row).textContent = aliases[i];
                L.DomUtil.create("td", "", row).textContent = value == null ? ""
                    : typeof value === "object" ? JSON.stringify(value) : String(value);
            });
            return table;
        }, {{ this.tooltip_options|tojavascript }});
        {% endmacro %}""")


class StartScript(MacroElement):
    """Calls ``function(map, config)`` from a static script once the Folium map exists."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        {{ this.function }}({{ this._parent.get_name() }}, {{ this.config }});
        {% endmacro %}""")

    def __init__(self, function: str, config: dict):
        super().__init__()
        self._name = "SafegridStart"
        self.function = function
        self.config = script_json(config)


def page_lang() -> str:
    """The page language from ``?lang=`` (default zh); BadParameter when unknown."""
    lang = request.args.get("lang", "zh")
    if lang not in LANGS:
        raise BadParameter(f"lang must be one of {', '.join(LANGS)}, got {lang!r}")
    return lang


def layer_title(layer: Layer, lang: str) -> str:
    """The layer's title in ``lang``."""
    return layer.title_zh if lang == "zh" else layer.title_en


# Punctuation joining words in a page's messages: full-width in Chinese.
PUNCTUATION = {"zh": {"colon": "：", "comma": "，"}, "en": {"colon": ": ", "comma": ", "}}
# The city outlines' tooltip: name and code.
BORDER_FIELDS = {"zh": {"name": "名称", "code": "代码"}, "en": {"name": "Name", "code": "Code"}}
BORDER_STYLE = {"color": "#d95f02", "weight": 3, "dashArray": "6 4"}
HEAT_STYLE = {"heatLayer": {"radius": 12, "blur": 15, "minOpacity": 0.3}}  # leaflet-heat


def overview_layer(engine: Engine, user: User, city: str, source: str,
                   bbox: tuple[float, float, float, float], zoom: int,
                   lang: str = "zh") -> dict:
    """What the overview draws of ``source`` in ``city`` within ``bbox`` at ``zoom``.

    A GeoJSON FeatureCollection (``heat``: ``{"points": [[lat, lng, weight], ...]}``)
    in ``user``'s scope; grids carry their label (``_label``). Forbidden when the role
    may not see the layer.
    """
    with engine.connect() as conn:
        data = view_layer(conn, user, city, source, bbox, zoom)
    if source == "grids":
        for feature in data["features"]:
            p = feature["properties"]
            p["_label"] = grid_label(p.get("name"), p["code"], p.get("households"), lang)
    return data


def _tooltip_aliases(source: Source, lang: str) -> list[str]:
    layer = LAYERS[source.layer]
    return [layer.get_field(f).title(lang) for f in source.shown_fields()]


class _Scopes:
    """Each layer's scope for one user, worked out once per page."""

    def __init__(self, conn: Connection, user: User):
        self.conn, self.user, self.known = conn, user, {}

    def get(self, layer: Layer) -> Scope | None:
        """The scope, or None when the role may not see the layer at all."""
        if layer.name not in self.known:
            try:
                self.known[layer.name] = read_scope(self.conn, self.user, layer)
            except Forbidden:
                self.known[layer.name] = None
        return self.known[layer.name]


@dataclass(frozen=True)
class Overlay:
    """A layer of the overview's layer control, drawn from ``source`` once it is on.

    ``key`` names it in the browser's remembered choice (the same in every language
    and city); ``colour`` is its swatch (None: the heat map's gradient); ``show`` says
    whether a new user sees it on opening; ``category`` picks its key areas.
    """

    key: str
    source: str
    group: folium.FeatureGroup
    style: dict
    show: bool
    point: bool = False
    category: str | None = None

    @property
    def colour(self) -> str | None:
        """The swatch's colour."""
        return self.style.get("color")

    def config(self, lang: str) -> dict:
        """What ``overview.js`` needs to fetch and draw the overlay."""
        source = SOURCES.get(self.source)
        return {"key": self.key, "source": self.source, "colour": self.colour,
                "show": self.show, "style": self.style, "point": self.point,
                "category": self.category,
                "fields": source.shown_fields() if source else ["name", "code"],
                "aliases": _tooltip_aliases(source, lang) if source
                else [BORDER_FIELDS[lang]["name"], BORDER_FIELDS[lang]["code"]]}


def _overlay(m: folium.Map, key: str, source: str, name: str, n: int, style: dict,
             show: bool = True, category: str | None = None) -> Overlay | None:
    """An empty overlay named with its count; None when it has nothing to show."""
    if not n:
        return None  # an empty layer is not listed
    group = folium.FeatureGroup(name=f"{name} ({n})", show=False).add_to(m)
    point = source in SOURCES and LAYERS[SOURCES[source].layer].geometry in (
        "Point", "PointOrPolygon")
    return Overlay(key, source, group, style, show, point, category)


def _layer_overlays(m: folium.Map, conn: Connection, scopes: _Scopes, city: str,
                    lang: str, key: str, name: str | None = None, style: dict | None = None,
                    show: bool = True) -> list[Overlay]:
    """The overlay of source ``key`` (key areas: one per category), if the role sees it."""
    source = SOURCES[key]
    layer = LAYERS[source.layer]
    scope = scopes.get(layer)
    if scope is None:
        return []  # the role may not see this layer: it is not on the map at all
    counts = feature_counts(conn, source, city, scope)
    if key != "key_areas":
        added = _overlay(m, key, key, name or layer_title(layer, lang), counts.get("", 0),
                         style or layer.style, show)
        return [added] if added else []
    overlays = []
    for category in KEY_AREA_CATEGORIES:
        label = _CATEGORY_ZH[category] if lang == "zh" else category.replace("_", " ")
        added = _overlay(m, f"key_areas:{category}", key,
                         f"{_TEXT[lang]['key']} · {label}", counts.get(category, 0),
                         {"color": _CATEGORY_COLOURS[category], "radius": 5, "weight": 2,
                          "fillOpacity": 0.3}, category=category)
        overlays += [added] if added else []
    return overlays


def grid_label(name: str | None, code: str, households: int | None, lang: str) -> str:
    """A grid's short label: its number in the community (or its name) and households."""
    t = _TEXT[lang]
    number = re.search(r"第(\d+)网格$", name or "")
    short = t["grid_no"].format(n=number[1]) if number else (name or code)[-10:]
    return f"{short} · {t['households'].format(n=households or 0)}"


def _add_overlays(m: Map, conn: Connection, scopes: _Scopes, city: str,
                  lang: str) -> list[Overlay]:
    """Every overlay ``scopes`` allows, in control order, each with its count."""
    t = _TEXT[lang]
    overlays = _layer_overlays(m, conn, scopes, city, lang, "communities", t["communities"],
                               {"color": "#888888", "weight": 0.7, "fillOpacity": 0.0},
                               show=False)
    borders = _overlay(m, "borders", "borders", t["borders"], city_count(conn), BORDER_STYLE)
    if borders:  # the outlines of cities are named without a count
        borders.group.layer_name = t["borders"]
        overlays.append(borders)
    for key in ("roads", "grids", "key_areas"):
        overlays += _layer_overlays(m, conn, scopes, city, lang, key)
    overlays += _layer_overlays(m, conn, scopes, city, lang, "cameras", show=False)
    overlays += _layer_overlays(m, conn, scopes, city, lang, "checkpoints")
    scope = scopes.get(LAYERS["incidents"])
    if scope is not None:  # planners and viewers get aggregates from the analysis pages
        n = incident_count(conn, city, scope)
        heat = _overlay(m, "heat", "heat", t["heat"], n, HEAT_STYLE, show=False)
        overlays += [heat] if heat else []
    return overlays


class OverviewControl(JSCSSMixin, folium.LayerControl):
    """The overview's layer control: swatches, remembered choices, layers fetched for the view.

    Folium's control, then ``safegridOverview.start`` (``/static/overview.js``) shows
    each overlay as remembered in the browser (else as :class:`Overlay` says), fetches
    the features of the overlays that are on for the view (``/map/layers/{source}``)
    and again when the map is moved out of what it holds or zoomed in, draws the
    swatches and the grid labels, and collapses the control on a phone.
    """

    _template = Template("""
        {% macro script(this,kwargs) %}
            let {{ this.get_name() }} = L.control.layers(
                { {%- for key, val in this.base_layers.items() %}
                  {{ key|tojson }} : {{val}}, {%- endfor %} },
                { {%- for key, val in this.overlays.items() %}
                  {{ key|tojson }} : {{val}}, {%- endfor %} },
                safegridOverview.controlOptions({{ this.options|tojavascript }})
            ).addTo({{this._parent.get_name()}});
            {{ this.get_name() }}.getContainer().querySelector(
                ".leaflet-control-layers-toggle").title = {{ this.toggle_title|tojson }};
            safegridOverview.start({{ this._parent.get_name() }}, {{ this.get_name() }},
                [{% for o in this.entries %}{{ o.group.get_name() }},{% endfor %}],
                {{ this.config }});
        {% endmacro %}
        """)
    default_js = [("leaflet-heat.js", "/static/vendor/leaflet_heat.min.js"),
                  ("safegrid_overview", "/static/overview.js")]
    default_css = [("safegrid_overview_css", "/static/overview.css")]

    def __init__(self, entries: list[Overlay], city: str, bounds: list[list[float]],
                 lang: str):
        super().__init__(collapsed=False)
        self.entries = entries
        self.toggle_title = CONTROL_TEXT[lang]["layers"]
        self.config = script_json({
            "overlays": [o.config(lang) for o in entries], "city": city, "bounds": bounds,
            "lang": lang, "url": "/map/layers/", "gridsKey": "grids"})


def build_map(engine: Engine, user: User, city: str, lang: str = "zh") -> Map:
    """A Folium map of jurisdiction ``city``: every layer ``user`` may see, in scope.

    The page holds each layer's name and count; the features are fetched for the view
    once a layer is on. Grids, key areas, roads, checkpoints and city borders are on
    for a new user; community boundaries, cameras and the incident heat map are off
    until turned on.
    """
    with engine.connect() as conn:
        scopes = _Scopes(conn, user)
        enter_scope(conn, scopes.get(LAYERS["roads"]))  # RLS for the rest
        found = jurisdiction_box(conn, city)
        if found is None:
            raise UnknownJurisdiction(f"unknown jurisdiction {city!r}")
        box = found.bounds()
        m = Map(box, prefer_canvas=True)
        overlays = _add_overlays(m, conn, scopes, city, lang)
        notice = _notice_code(conn, user, city)
        warnings = warnings_config(user, _own_part(conn, user, city), lang)
    OverviewControl(overlays, city, box, lang).add_to(m)
    _add_header(m, engine, user, city, lang, notice, warnings is not None)
    if warnings is not None:
        m.get_root().header.add_child(folium.Element(
            '<link rel="stylesheet" href="/static/warnings.css">'
            '<script src="/static/tools.js"></script>'
            '<script src="/static/warnings.js"></script>'))
        StartScript("safegridWarnings", warnings).add_to(m)
    return m


def _own_part(conn: Connection, user: User, city: str) -> str:
    """The city when the user's scope holds all of it, else the user's jurisdiction."""
    try:
        require_within(conn, user, city)
    except Forbidden:
        return user.jurisdiction
    return city


def _notice_code(conn: Connection, user: User, city: str) -> tuple[str, str] | None:
    """The notice the header links to: (jurisdiction, month).

    The city, else the user's own jurisdiction; its latest month with incidents the
    user may see, else the last full month (whose notice then says it has no data).
    """
    if user.role == "border_partner":
        return None
    city = _own_part(conn, user, city)
    month = latest_incident_month(conn, user, city)
    return city, month or last_full_month(dt.datetime.now(LOCAL_TZ).date())


def warnings_config(user: User, code: str, lang: str) -> dict | None:
    """What ``static/warnings.js`` needs for the warnings of ``code``.

    None for a role that reads no warnings (border partners: their scope is the border
    zone, never a jurisdiction as a whole).
    """
    if user.role == "border_partner":
        return None
    return {"jurisdiction": code, "lang": lang, "csrf": csrf_token(), "tz": str(LOCAL_TZ),
            "canAck": user.role in WATCH_ROLES,
            "text": {**WARNING_TEXT[lang], **PUNCTUATION[lang]}}


def warnings_markup(lang: str) -> str:
    """The warnings' button (with its count) and their panel, hidden until opened."""
    t = WARNING_TEXT[lang]
    return f"""<span id="sg-warnings">
      <button type="button" id="sg-warnings-toggle" aria-expanded="false"
        aria-controls="sg-warnings-panel">{escape(t['button'])}
        <span id="sg-warnings-count" class="sg-none">0</span></button>
      <section id="sg-warnings-panel" aria-labelledby="sg-warnings-title" hidden>
        <div class="sg-warnings-head"><b id="sg-warnings-title">{escape(t['title'])}</b>
          <button type="button" id="sg-warnings-close" title="{escape(t['close'])}"
            aria-label="{escape(t['close'])}">×</button></div>
        <div id="sg-warnings-status" role="status" aria-live="polite">{
            escape(t['loading'])}</div>
        <ol id="sg-warnings-list"></ol>
      </section></span>"""


def tool_page(engine: Engine, codes: list[str], title: str, script: str, controls: str,
              start: str, config: dict, css: tuple[str, ...] = (),
              scripts: tuple[str, ...] = ()) -> str:
    """The HTML of a tool page (analysis, coverage, border).

    A map fitted to the jurisdictions ``codes``, its side panel (``controls``), and
    ``start(map, config)`` from ``/static/{script}`` run on load (after the static
    ``scripts`` it uses); with remote basemaps configured, a layer control (bottom right)
    to choose the basemap.
    """
    with engine.connect() as conn:
        bounds = extent(conn, codes)
    m = Map(bounds)
    root = m.get_root()
    links = "".join(f'<link rel="stylesheet" href="{href}">'
                    for href in ("/static/planner.css", *css))
    root.header.add_child(folium.Element(
        f'{links}<script src="/static/tools.js"></script>'
        + "".join(f'<script src="/static/{name}"></script>' for name in scripts)
        + f'<script src="/static/{script}"></script><title>{escape(title)}</title>'))
    root.html.add_child(folium.Element(controls))
    StartScript(start, config).add_to(m)
    if configured_basemaps(current_app.config):  # a choice of basemaps, out of the panel's way
        folium.LayerControl(position="bottomright", collapsed=False).add_to(m)
    return render_page(m)


def _border_link(engine: Engine, user: User, lang: str) -> str:
    """The header's link to the border page, when the user has neighbours to pair."""
    with engine.connect() as conn:
        if not neighbour_pairs(conn, user):
            return ""
    return (f'<a id="sg-border-link" href="/map/border?lang={lang}">'
            f"{_TEXT[lang]['border']}</a>")


def last_full_month(today: dt.date) -> str:
    """The month before ``today``'s, as ``YYYY-MM``."""
    return (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")


def _notice_link(notice: tuple[str, str] | None, lang: str) -> str:
    """The header's link to the monthly notice ``(jurisdiction, month)``."""
    if notice is None:
        return ""
    code, month = notice
    year, number = (int(part) for part in month.split("-"))
    label = _TEXT[lang]["notice"].format(
        year=year, month=number, month_name=dt.date(year, number, 1).strftime("%B"))
    return (f'<a id="sg-notice-link" href="/reports/notice?jurisdiction={escape(code)}'
            f'&amp;month={month}&amp;lang={lang}">{escape(label)}</a>')


def _add_header(m: Map, engine: Engine, user: User, city: str, lang: str,
                notice: tuple[str, str] | None, warnings: bool = False) -> None:
    t = _TEXT[lang]
    other = "en" if lang == "zh" else "zh"
    with engine.connect() as conn:
        known = cities(conn, user)
    options = "".join(
        f'<option value="{escape(c.code)}"{" selected" if c.code == city else ""}>'
        f"{escape(c.name)}</option>" for c in known)
    html = f"""
    <div id="sg-header">
      <b class="sg-title">{escape(t['title'])}</b>
      <form method="get" action="/map">
        <label>{escape(t['city'])}
          <select name="city" data-submit>{options}</select></label>
        <input type="hidden" name="lang" value="{lang}">
      </form>
      <a href="/map?city={escape(city)}&amp;lang={other}">{t['lang']}</a>
      {_notice_link(notice, lang)}
      <a id="sg-plan-link" href="/map/plan?lang={lang}">{t['plan']}</a>
      <a id="sg-analysis-link"
         href="/map/analysis?jurisdiction={escape(city)}&amp;lang={lang}">{t['analysis']}</a>
      <a id="sg-coverage-link"
         href="/map/coverage?jurisdiction={escape(city)}&amp;lang={lang}">{t['coverage']}</a>
      {_border_link(engine, user, lang)}
      {warnings_markup(lang) if warnings else ""}
      <span class="sg-user">{escape(user.name)}</span>
      <form method="post" action="/logout">
        <input type="hidden" name="csrf" value="{escape(csrf_token())}">
        <button type="submit">{t['logout']}</button></form>
    </div>"""
    m.get_root().html.add_child(folium.Element(html))
    m.get_root().header.add_child(folium.Element(
        f'<title>{escape(t["title"])}</title><meta name="safegrid-city" '
        f'content="{escape(city)}"><script src="/static/forms.js"></script>'))
