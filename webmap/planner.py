"""The planner's map (``/map/plan``): draw, resize, split and merge grids of a jurisdiction.

A Folium map with Folium's GeoMan plugin (served locally) for vertex editing with
snapping and no self-intersection, and ``static/planner.js`` for the rest: grids are
fetched from the items API for the area in view (never inlined in the page), styled
by kind with labels, selected with a click; saves go to the API with ``If-Match``
and neighbours are redrawn from the answer; conflicts and refusals are shown as
messages. Writes carry the session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import folium
import folium.plugins
from flask import Blueprint, Response, current_app, request
from markupsafe import escape
from sqlalchemy import Engine, text

from layers.access import read_scope, subtree_codes
from layers.registry import LAYERS
from layers.users import User

from .app import db_engine
from .auth import csrf_token, current_user
from .mapview import BadParameter, Map, StartScript, page_lang, render_page

bp = Blueprint("planner", __name__)

TEXT = {
    "zh": {
        "title": "网格规划", "jurisdiction": "辖区", "select": "点击网格查看属性",
        "edit": "调整边界", "save": "保存", "cancel": "取消", "split": "画线切分",
        "merge": "与相邻网格合并", "history": "历史版本", "restore": "恢复此版本",
        "units": "重新生成联户", "validate": "检查覆盖",
        "valid": "网格完整覆盖辖区，无缝隙无重叠", "problems": "发现问题",
        "saved": "已保存，共调整网格", "conflict": "该网格已被他人修改，已载入最新版本",
        "refused": "未保存", "pick_merge": "请点击要合并进来的相邻网格",
        "draw_split": "请画一条穿过网格的线，双击结束",
        "merged": "已合并", "split_done": "已切分", "restored": "已恢复",
        "units_done": "联户单元已生成",
        "zoom": "放大后显示网格", "map": "总图", "loading": "加载中…", "version": "版本",
        "code": "网格编码", "name": "名称", "kind": "类型", "households": "户数",
        "population": "人口", "area_m2": "面积(平方米)", "key_areas": "重点区域数",
        "incidents_30d": "近30天警情", "comprehensive": "综合网格", "dedicated": "专属网格",
        "lang": "English",
    },
    "en": {
        "title": "Grid planning", "jurisdiction": "Jurisdiction",
        "select": "Click a grid to see its attributes", "edit": "Edit shape", "save": "Save",
        "cancel": "Cancel", "split": "Split with a line", "merge": "Merge with a neighbour",
        "history": "History", "restore": "Restore this version", "units": "Regenerate units",
        "validate": "Check coverage", "valid": "The grids cover the jurisdiction: no gap, "
        "no overlap", "problems": "Problems found", "saved": "Saved; grids changed",
        "conflict": "Someone else changed this grid; its current version is loaded",
        "refused": "Not saved", "pick_merge": "Click the neighbouring grid to merge in",
        "draw_split": "Draw a line across the grid; double-click to finish",
        "merged": "Merged", "split_done": "Split", "restored": "Restored",
        "units_done": "Joint-household units regenerated", "zoom": "Zoom in to see grids",
        "map": "Overview map", "loading": "Loading…", "version": "version", "code": "Code",
        "name": "Name", "kind": "Kind", "households": "Households",
        "population": "Population", "area_m2": "Area (m²)", "key_areas": "Key areas",
        "incidents_30d": "Incidents, last 30 days", "comprehensive": "Comprehensive",
        "dedicated": "Dedicated", "lang": "中文",
    },
}


def _jurisdictions(engine: Engine, user: User) -> list[tuple[str, str, int]]:
    """Communities (and villages) the user may see: code, name, number of grids."""
    with engine.connect() as conn:
        read_scope(conn, user, LAYERS["grids"])
        codes = None if user.role == "admin" else subtree_codes(conn, user.jurisdiction)
        rows = conn.execute(text(
            "SELECT j.code, j.name, (SELECT count(*) FROM grids g "
            "WHERE g.jurisdiction_code = j.code) FROM jurisdictions j "
            "WHERE j.level IN ('community', 'village') "
            "AND (CAST(:codes AS text[]) IS NULL OR j.code = ANY(:codes)) ORDER BY j.code"),
            {"codes": codes}).all()
    return [(r[0], r[1], r[2]) for r in rows]


def build_planner(engine: Engine, user: User, code: str, lang: str) -> Map:
    """The planning map of jurisdiction ``code``."""
    with engine.connect() as conn:
        box = conn.execute(text(
            "SELECT ST_YMin(geom), ST_XMin(geom), ST_YMax(geom), ST_XMax(geom), id "
            "FROM (SELECT ST_Envelope(geom) AS geom, id FROM jurisdictions "
            "WHERE code = :c) e"), {"c": code}).one()
    m = Map(max_zoom=21)
    m.fit_bounds([[box[0], box[1]], [box[2], box[3]]])
    geoman = folium.plugins.GeoMan(
        position="topleft", drawMarker=False, drawCircleMarker=False, drawPolyline=False,
        drawRectangle=False, drawPolygon=False, drawCircle=False, drawText=False,
        editMode=False, dragMode=False, cutPolygon=False, removalMode=False,
        rotateMode=False)
    geoman.default_js = [("leaflet_geoman_js", "/static/vendor/geoman/leaflet-geoman.js")]
    geoman.default_css = [("leaflet_geoman_css", "/static/vendor/geoman/leaflet-geoman.css")]
    geoman.add_to(m)
    root = m.get_root()
    root.header.add_child(folium.Element(
        '<link rel="stylesheet" href="/static/planner.css">'
        '<script src="/static/forms.js"></script><script src="/static/planner.js"></script>'
        f"<title>{escape(TEXT[lang]['title'])}</title>"))
    root.html.add_child(folium.Element(_panel(engine, user, code, lang)))
    StartScript("safegridPlanner", {
        "jurisdiction": code, "jurisdictionId": box[4], "lang": lang,
        "text": TEXT[lang], "csrf": csrf_token(), "canWrite":
            user.role in LAYERS["grids"].write_roles,
    }).add_to(m)
    return m


def _panel(engine: Engine, user: User, code: str, lang: str) -> str:
    t = TEXT[lang]
    options = "".join(
        f'<option value="{escape(c)}"{" selected" if c == code else ""}>'
        f"{escape(n)} ({escape(c)}, {g})</option>" for c, n, g in _jurisdictions(engine, user))
    other = "en" if lang == "zh" else "zh"
    return f"""
    <div id="sg-panel">
      <div class="sg-row"><b>{escape(t['title'])}</b>
        <a href="/map?lang={lang}">{escape(t['map'])}</a>
        <a href="/map/plan?jurisdiction={escape(code)}&lang={other}">{t['lang']}</a>
        <span class="sg-user">{escape(user.name)}</span></div>
      <form method="get" action="/map/plan" class="sg-row">
        <label>{escape(t['jurisdiction'])}
          <select name="jurisdiction" data-submit>{options}</select></label>
        <input type="hidden" name="lang" value="{lang}"></form>
      <div id="sg-message" role="status" aria-live="polite"></div>
      <div id="sg-attributes">{escape(t['select'])}</div>
      <div id="sg-actions" class="sg-row"></div>
      <div id="sg-history"></div>
      <div class="sg-row"><button type="button" id="sg-validate">{escape(t['validate'])}</button>
      </div>
    </div>"""


@bp.get("/map/plan")
def plan_page():
    """The planning map (``?jurisdiction=CODE`` of a community, ``?lang=zh|en``)."""
    engine = db_engine(current_app)
    lang = page_lang()
    known = _jurisdictions(engine, current_user())
    if not known:
        return Response("<h1>safegrid</h1><p>No communities to plan in your jurisdiction.</p>",
                        mimetype="text/html")
    with_grids = [c for c, _n, g in known if g]
    code = request.args.get("jurisdiction", (with_grids or [known[0][0]])[0])
    if code not in {c for c, _n, _g in known}:
        raise BadParameter(f"jurisdiction {code!r} is not a community you may plan")
    return Response(render_page(build_planner(engine, current_user(), code, lang)),
                    mimetype="text/html")
