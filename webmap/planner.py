"""The planner's map (``/map/plan``): draw, resize, split and merge grids of a jurisdiction.

A Folium map with Folium's GeoMan plugin (served locally) for vertex editing with
snapping and no self-intersection, and ``static/planner.js`` for the rest: grids are
fetched from the items API for the area in view (never inlined in the page), styled
by kind with labels, selected with a click; saves go to the API with ``If-Match``
and neighbours are redrawn from the answer; conflicts and refusals are shown as
messages. Writes carry the session's CSRF token in ``X-CSRF-Token``.

While a split line or a new grid is drawn the grids take no clicks; Esc or Cancel
leaves any mode, Enter or a double-click ends a split line or a new grid (so does a
click on its first point), a new grid asks for its kind and name, and a merge is
confirmed in a dialog naming the grids. An earlier version from the history is shown
on the map (dashed) before 恢复 restores it, after a confirmation. Labels are short
(the grid's number or name and households) and thinned where they would collide; a
legend shows the grid kinds and the colours of the coverage problems. The API's
refusals (English) are matched by :data:`REFUSALS` to texts of :data:`TEXT` saying
what to do instead.
"""

from __future__ import annotations

import folium
import folium.plugins
from flask import Blueprint, Response, current_app, request
from markupsafe import escape
from sqlalchemy import Engine

from layers.jurisdictions import community_choices, jurisdiction_box
from layers.registry import LAYERS
from layers.users import User

from .auth import csrf_token, current_user
from .db import db_engine
from .mapview import PUNCTUATION, BadParameter, Map, StartScript, page_lang, render_page

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
        "draw_split": "在地图上依次点击，画一条穿过网格的线；"
        "双击或按回车结束，按 Esc 或“取消”退出",
        "split_done": "已切分为 {1}", "list_sep": "、", "restored": "已恢复",
        "units_done": "联户单元已生成",
        "zoom": "放大后显示网格", "map": "总图", "loading": "加载中…", "version": "版本",
        "code": "网格编码", "name": "名称", "kind": "类型", "households": "户数",
        "population": "人口", "area_m2": "面积(平方米)", "key_areas": "重点区域数",
        "incidents_30d": "近30天警情", "comprehensive": "综合网格", "dedicated": "专属网格",
        "lang": "English", "ok": "确定", "refused_because": "未保存：{1}",
        "merged_into": "已合并为“{1}”",
        "confirm_merge": "将下列网格合并为“{1}”？", "n_households": "{1} 户",
        "merge_total": "合并后共 {1} 户",
        "pm_first": "单击放置切分线的起点（Esc 取消）",
        "pm_continue": "单击放置下一个点（Esc 取消）",
        "pm_finish": "继续单击加点；双击或按回车结束（Esc 取消）",
        "why_cut_parts": "这条线把网格 {1} 切成了 {2} 块："
        "请画一条从网格一边穿到另一边、只穿过一次的线",
        "why_line": "切分线至少要有两个点：在地图上点击两处以上，再双击或按回车结束",
        "why_swallow": "这次修改会把网格 {1} 整个吞掉：如要合并，请用“与相邻网格合并”",
        "why_pieces": "网格 {1} 会被分成互不相连的几块：请调整边界，让每个网格保持为一整块",
        "why_gap": "网格 {1} 让出的区域不与其他网格相邻，会成为空隙："
        "请保留这块区域，或先调整周围的网格",
        "why_unclean": "周围的网格有缝隙或重叠，无法安全修改：请先点“检查覆盖”查看并处理问题",
        "why_no_overlap": "新形状与网格原来的位置不重叠：请在网格所在处调整边界",
        "why_bad_shape": "新形状不是有效的多边形（边线不能交叉）：请重新调整顶点",
        "why_outside": "新形状有 {1}% 在辖区之外：请把边界画在辖区以内",
        "why_not_adjacent": "这些网格没有公共边：只能合并相邻的网格，请点击与所选网格相邻的网格",
        "why_not_one": "这些网格合并后不是一整块：请只合并相邻的网格",
        "why_merge_two": "合并需要两个不同的网格：请点击另一个相邻的网格",
        "why_other_jurisdiction": "这些网格属于不同辖区，不能合并",
        "why_other_kind": "综合网格与专属网格不能合并：专属网格是重点区域自己的网格；"
                          "如需合并，请先修改其中一个网格的类型",
        "why_move": "网格不能移到另一个辖区：请在那里新画一个网格",
        "why_no_jurisdiction": "新网格不在任何辖区内：请画在辖区以内",
        "why_stale": "该网格已被他人修改（现为第 {1} 版）：已重新载入，请再操作一次",
        "why_no_version": "该网格没有这个版本：请在历史版本中重新选择",
        "why_same_version": "该网格已经是第 {1} 版，无需恢复",
        "why_grids_exist": "该社区已有 {1} 个网格：如要重新划分，请选择替换",
        "new": "新建网格",
        "draw_new": "在地图上依次点击，画出新网格的边界；单击第一个点、双击或按回车结束，"
        "按 Esc 或“取消”退出",
        "pm_finish_poly": "单击第一个点、双击或按回车结束（Esc 取消）",
        "new_title": "新建网格：请选择类型并填写名称", "name_auto": "留空则自动编号",
        "new_hint": "新网格从它覆盖的网格中划出；户数按新边界重新统计，"
        "这些网格的联户单元需重新生成",
        "carved": "已新建网格“{1}”，从 {2} 个网格中划出",
        "preview": "在地图上查看", "previewing": "地图上的虚线是第 {1} 版的边界（{2}）",
        "confirm_restore": "将网格“{1}”恢复为第 {2} 版？", "restore_now": "当前为第 {1} 版",
        "restore_hint": "相邻网格的边界将随之调整", "current": "当前",
        "legend": "图例", "selected": "选中的网格", "drawn": "正在画的新网格",
        "old_version": "历史版本（预览）", "problem_gap": "缝隙", "problem_overlap": "重叠",
        "problem_sliver": "细长碎片", "problem_outside": "超出辖区",
        "problem_invalid": "无效形状", "problem_unmatched_edge": "边线不吻合",
        "grid_no": "第{1}网格", "n_hh": "{1}户", "m2": "{1} 平方米", "grid_named": "“{1}”（{2}）",
        "problems_list": "发现问题：{1}",
        "why_carve_cover": "新网格会把网格 {1} 整个盖住：请画小一些；如要合并网格，"
        "请用“与相邻网格合并”",
        "why_carve_small": "新网格太小（辖区内只有 {1} 平方米，至少要 {2} 平方米）：请画大一些",
        "why_carve_holes": "新网格不能带洞：请画一个没有洞的多边形",
        "why_carve_one": "新网格必须是一整块多边形：请在地图上依次点击画出它的边界",
        "why_carve_pieces": "新网格会被分成几块（例如跨过了社区边界）：请画在社区内的一整块区域",
        "why_not_community": "只能在社区（村）里新建网格：请先在“辖区”中选择一个社区",
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
        "draw_split": "Click on the map to draw a line across the grid; "
        "double-click or press Enter to finish, Esc or Cancel to stop",
        "split_done": "Split into {1}", "list_sep": " and ", "restored": "Restored",
        "units_done": "Joint-household units regenerated", "zoom": "Zoom in to see grids",
        "map": "Overview map", "loading": "Loading…", "version": "version", "code": "Code",
        "name": "Name", "kind": "Kind", "households": "Households",
        "population": "Population", "area_m2": "Area (m²)", "key_areas": "Key areas",
        "incidents_30d": "Incidents, last 30 days", "comprehensive": "Comprehensive",
        "dedicated": "Dedicated", "lang": "中文", "ok": "OK",
        "refused_because": "Not saved: {1}", "merged_into": "Merged into “{1}”",
        "confirm_merge": "Merge these grids into “{1}”?",
        "n_households": "{1} households", "grid_named": "“{1}” ({2})",
        "problems_list": "Problems found: {1}",
        "merge_total": "{1} households in all",
        "pm_first": "Click to place the line's first point (Esc cancels)",
        "pm_continue": "Click to place the next point (Esc cancels)",
        "pm_finish": "Click to add points; double-click or press Enter to finish (Esc cancels)",
        "why_cut_parts": "The line cuts grid {1} into {2} part(s): draw a line that crosses it "
        "from one edge to another, once",
        "why_line": "A split line needs two points or more: click twice or more on the map, "
        "then double-click or press Enter",
        "why_swallow": "This would swallow grid {1} whole: to join grids, use “Merge with a "
        "neighbour”",
        "why_pieces": "Grid {1} would fall apart into pieces: move the edge so that every grid "
        "stays in one piece",
        "why_gap": "The area grid {1} gives up touches no other grid and would become a gap: "
        "keep it, or move the grids around it first",
        "why_unclean": "The grids around this edit have gaps or overlaps and cannot be edited "
        "safely: use “Check coverage” to see them first",
        "why_no_overlap": "The new shape does not overlap the grid's current one: edit the "
        "grid where it is",
        "why_bad_shape": "The new shape is not a valid polygon (its edges must not cross): move "
        "the vertices again",
        "why_outside": "{1}% of the new shape lies outside the jurisdiction: keep the edge "
        "inside it",
        "why_not_adjacent": "These grids share no edge: only neighbouring grids can be merged; "
        "click a grid next to the selected one",
        "why_not_one": "These grids do not join into one piece: merge neighbouring grids only",
        "why_merge_two": "A merge needs two different grids: click another neighbouring grid",
        "why_other_jurisdiction": "These grids belong to different jurisdictions and cannot "
        "be merged",
        "why_other_kind": "A comprehensive and a dedicated grid cannot be merged: a dedicated "
        "grid is a key area's own; change one grid's kind first if they should be one",
        "why_move": "A grid cannot move to another jurisdiction: draw a new grid there instead",
        "why_no_jurisdiction": "The new grid lies in no jurisdiction: draw it inside one",
        "why_stale": "Someone else changed this grid (now version {1}): it is reloaded; do "
        "your change again",
        "why_no_version": "This grid has no such version: pick one from its history again",
        "why_same_version": "This grid is at version {1} already",
        "why_grids_exist": "This community already has {1} grids: choose to replace them to "
        "plan again",
        "new": "New grid",
        "draw_new": "Click on the map to draw the new grid's outline; click its first point, "
        "double-click or press Enter to finish, Esc or Cancel to stop",
        "pm_finish_poly": "Click the first point, double-click or press Enter to finish "
        "(Esc cancels)",
        "new_title": "New grid: choose its kind and name", "name_auto": "Leave empty to number it",
        "new_hint": "The new grid is carved out of the grids it covers; households are counted "
        "anew and those grids' joint-household units need regenerating",
        "carved": "New grid “{1}” made, carved out of {2} grid(s)",
        "preview": "Show on map", "previewing": "The dashed outline is version {1} ({2})",
        "confirm_restore": "Restore grid “{1}” to version {2}?",
        "restore_now": "It is at version {1} now",
        "restore_hint": "The edges of neighbouring grids adjust to it", "current": "current",
        "legend": "Legend", "selected": "Selected grid", "drawn": "New grid being drawn",
        "old_version": "Earlier version (preview)", "problem_gap": "Gap",
        "problem_overlap": "Overlap", "problem_sliver": "Sliver",
        "problem_outside": "Outside the jurisdiction", "problem_invalid": "Invalid shape",
        "problem_unmatched_edge": "Edges that do not match", "grid_no": "Grid {1}",
        "n_hh": "{1} households", "m2": "{1} m²",
        "why_carve_cover": "The new grid would cover grid {1} entirely: draw it smaller; to "
        "join grids, use “Merge with a neighbour”",
        "why_carve_small": "The new grid is too small ({1} m² inside the jurisdiction, at least "
        "{2} m² needed): draw it larger",
        "why_carve_holes": "A new grid cannot have holes: draw a polygon without any",
        "why_carve_one": "A new grid is one polygon: click on the map to draw its outline",
        "why_carve_pieces": "The new grid would fall into pieces (it crosses the community's "
        "edge, say): draw it as one area inside the community",
        "why_not_community": "New grids are drawn in a community (or village): choose one "
        "under Jurisdiction first",
    },
}


# The API's refusal messages (English, stable) and the text key saying what to do
# instead; groups ({1}, {2} in the texts) are grid codes and numbers. Patterns are
# written so that Python's ``re`` and JavaScript's ``RegExp`` read them alike.
REFUSALS = [
    ("why_carve_cover", r"the new grid would cover grid (\S+) entirely"),
    ("why_carve_small", r"the new grid is too small \((\d+) m² .*at least (\d+) m²"),
    ("why_carve_holes", r"the new grid must be a polygon without holes"),
    ("why_carve_one", r"the new grid must be one polygon|is not a GeoJSON Polygon"),
    ("why_carve_pieces", r"the new grid would fall apart into pieces"),
    ("why_not_community", r"is not a community: draw the new grid"),
    ("why_cut_parts", r"the line cuts grid (\S+) into (\d+) part"),
    ("why_line", r"split line must be a LineString|'line' is not a GeoJSON LineString"),
    ("why_swallow", r"would swallow grid (\S+) whole"),
    ("why_pieces", r"grid (\S+) would fall apart into pieces"),
    ("why_gap", r"the area grid (\S+) would give up touches no other grid"),
    ("why_unclean", r"do not form a clean coverage"),
    ("why_no_overlap", r"the new shape does not overlap"),
    ("why_bad_shape", r"must be a polygon, not|is not a valid polygon"),
    ("why_outside", r"(\d+)% of the new shape of .* lies outside"),
    ("why_not_adjacent", r"share\(s\) no edge with"),
    ("why_not_one", r"do not dissolve into one polygon"),
    ("why_merge_two", r"merge needs two or more different grid"),
    ("why_other_jurisdiction", r"the grids belong to different jurisdictions"),
    ("why_other_kind", r"grids of different kinds .* cannot be merged"),
    ("why_move", r"a grid cannot move from jurisdiction"),
    ("why_no_jurisdiction", r"the new grid lies in no jurisdiction"),
    ("why_stale", r"is at version (\d+), "),
    ("why_no_version", r"has no version \d+; it has"),
    ("why_same_version", r"is at version (\d+) already"),
    ("why_grids_exist", r"already has (\d+) grids"),
]


# How the page draws grids and problems (Leaflet path options); the legend shows the same.
STYLES = {
    "comprehensive": {"color": "#1f78b4", "weight": 2, "fillOpacity": 0.08},
    "dedicated": {"color": "#6a3d9a", "weight": 2, "fillOpacity": 0.2, "dashArray": "5 3"},
    "selected": {"color": "#ff7f00", "weight": 4, "fillOpacity": 0.15},
    "drawn": {"color": "#33a02c", "weight": 3, "fillOpacity": 0.25},
    "old_version": {"color": "#b2182b", "weight": 3, "fillOpacity": 0.05, "dashArray": "8 6"},
}
PROBLEM_COLOURS = {"gap": "#ff00ff", "overlap": "#e31a1c", "sliver": "#ffd700",
                   "outside": "#8c510a", "invalid": "#000000", "unmatched_edge": "#00bcd4"}


def _jurisdictions(engine: Engine, user: User) -> list[tuple[str, str, int]]:
    """Communities (and villages) the user may see: code, name, number of grids."""
    with engine.connect() as conn:
        return community_choices(conn, user)


def build_planner(engine: Engine, user: User, code: str, lang: str) -> Map:
    """The planning map of jurisdiction ``code``."""
    with engine.connect() as conn:
        box = jurisdiction_box(conn, code)
    m = Map(max_zoom=21)
    m.fit_bounds(box.bounds())
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
        '<script src="/static/forms.js"></script><script src="/static/tools.js"></script>'
        '<script src="/static/planner.js"></script>'
        f"<title>{escape(TEXT[lang]['title'])}</title>"))
    root.html.add_child(folium.Element(_panel(engine, user, code, lang)))
    StartScript("safegridPlanner", {
        "jurisdiction": code, "jurisdictionId": box.id, "lang": lang,
        "text": {**TEXT[lang], **PUNCTUATION[lang]}, "csrf": csrf_token(), "canWrite":
            user.role in LAYERS["grids"].write_roles,
        "refusals": [[key, pattern] for key, pattern in REFUSALS],
        "styles": STYLES, "problemColours": PROBLEM_COLOURS,
    }).add_to(m)
    return m


def _panel(engine: Engine, user: User, code: str, lang: str) -> str:
    t = TEXT[lang]
    options = "".join(
        f'<option value="{escape(c)}"{" selected" if c == code else ""}>'
        f"{escape(n)} ({escape(c)}, {g})</option>" for c, n, g in _jurisdictions(engine, user))
    other = "en" if lang == "zh" else "zh"
    new = (f'<button type="button" id="sg-new">{escape(t["new"])}</button>'
           if user.role in LAYERS["grids"].write_roles else "")
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
      <div class="sg-row">{new}
        <button type="button" id="sg-validate">{escape(t['validate'])}</button></div>
      {_legend(t)}
    </div>"""


def _swatch(style: dict) -> str:
    dashed = "dashed" if style.get("dashArray") else "solid"
    fill = min(1.0, 2 * style.get("fillOpacity", 0.3) + 0.1)
    return (f'<span class="sg-swatch" style="border: 2px {dashed} {style["color"]}; '
            f'background: color-mix(in srgb, {style["color"]} {fill * 100:.0f}%, white)"'
            f' data-colour="{style["color"]}"></span>')


def _legend(t: dict) -> str:
    """Swatches of the grid kinds and states, then of the coverage problems."""
    rows = [f"<li>{_swatch(style)} {escape(t[key])}</li>" for key, style in STYLES.items()]
    rows += [f'<li>{_swatch({"color": colour, "fillOpacity": 0.45})} '
             f'{escape(t["problem_" + kind])}</li>' for kind, colour in PROBLEM_COLOURS.items()]
    return (f'<div id="sg-legend"><b>{escape(t["legend"])}</b>'
            f'<ul>{"".join(rows[:len(STYLES)])}</ul>'
            f'<div class="sg-legend-head">{escape(t["validate"])}</div>'
            f'<ul>{"".join(rows[len(STYLES):])}</ul></div>')


NO_COMMUNITIES = {
    "zh": ("网格规划", "您的辖区内没有可规划的社区或村。", "返回总图"),
    "en": ("Grid planning", "There is no community or village to plan in your jurisdiction.",
           "Back to the overview map"),
}


@bp.get("/map/plan")
def plan_page():
    """The planning map (``?jurisdiction=CODE`` of a community, ``?lang=zh|en``)."""
    engine = db_engine(current_app)
    lang = page_lang()
    known = _jurisdictions(engine, current_user())
    if not known:
        words = NO_COMMUNITIES[lang]
        return Response(f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
                        f"<title>{escape(words[0])}</title></head><body>"
                        f"<h1>{escape(words[0])}</h1><p>{escape(words[1])}</p>"
                        f'<p><a href="/map?lang={lang}">{escape(words[2])}</a></p></body></html>',
                        mimetype="text/html")
    with_grids = [c for c, _n, g in known if g]
    code = request.args.get("jurisdiction", (with_grids or [known[0][0]])[0])
    if code not in {c for c, _n, _g in known}:
        raise BadParameter(f"jurisdiction {code!r} is not a community you may plan")
    return Response(render_page(build_planner(engine, current_user(), code, lang)),
                    mimetype="text/html")
