"""The border page (``/map/border``): a shared border and its joint patrol plan.

Both sides of the border zone, its crossings and the joint patrol plan, printable.

A Folium map; ``static/border.js`` asks ``/api/border`` and draws the zone (one colour
per side), the border line, the road crossings (green when a checkpoint or camera
covers them, red when not), the hot cells and key areas of both sides and the cameras
in the zone, then plans patrols with ``POST /api/border/patrols`` and draws each team's
sector and route. "Print" lays the plan out as a table under the map for the printer.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from markupsafe import escape
from sqlalchemy import text

from layers.access import subtree_codes
from layers.registry import LAYERS
from layers.users import User

from .app import db_engine
from .auth import csrf_token, current_user
from .mapview import BadParameter, page_lang, tool_page

bp = Blueprint("border_map", __name__)

TEXT = {
    "zh": {"title": "边界联防", "a": "甲方", "b": "乙方", "width": "每侧宽度(米)",
           "show": "显示边界", "teams": "巡逻队数", "plan": "规划巡逻", "print": "打印方案",
           "map": "总图", "lang": "English", "running": "计算中…", "refused": "未完成",
           "crossings": "道路过境点", "covered": "有监控或卡点", "uncovered": "无人看守",
           "incidents": "警情", "hot_cells": "热点格网", "key_areas": "重点区域",
           "length": "边界长度", "km": "公里", "team": "巡逻队", "sector": "责任段",
           "route": "巡逻路线", "workload": "工作量", "hours": "建议时段", "city": "所属市",
           "length_m": "长度(米)", "stops": "途经点", "balance": "最大/最小工作量",
           "plan_title": "边界联防巡逻方案", "side": "一侧", "cameras": "摄像机",
           "road": "道路", "covered_by": "看守",
           "unreached": "未到达的途经点", "unreached_stops": "个途经点未到达",
           "stops_reached": "已到达途经点",
           "no_route": "无路线", "stop_start": "责任段起点", "stop_end": "责任段终点",
           "stop_crossing": "道路过境点", "stop_hot_cell": "热点格网中心",
           "why_no_roads": "本方边界带及其外 {detour} 米内没有道路",
           "why_no_road": "最近的道路在 {distance} 米外,超过 {reach} 米",
           "why_not_joined": "所在道路在边界带外 {detour} 米内不与其他途经点的道路相连"},
    "en": {"title": "Border joint defence", "a": "City A", "b": "City B",
           "width": "Width each side (m)", "show": "Show border", "teams": "Teams",
           "plan": "Plan patrols", "print": "Print plan", "map": "Overview map",
           "lang": "中文", "running": "Working…", "refused": "Not done",
           "crossings": "road crossings", "covered": "watched", "uncovered": "unwatched",
           "incidents": "incidents", "hot_cells": "hot cells", "key_areas": "key areas",
           "length": "border length", "km": "km", "team": "team", "sector": "sector",
           "route": "route", "workload": "workload", "hours": "hours", "city": "city",
           "length_m": "length (m)", "stops": "stops", "balance": "max/min workload",
           "plan_title": "Joint border patrol plan", "side": "side", "cameras": "cameras",
           "road": "road", "covered_by": "covered by",
           "unreached": "Stops not reached", "unreached_stops": "stops not reached",
           "stops_reached": "stops reached",
           "no_route": "no route", "stop_start": "sector start", "stop_end": "sector end",
           "stop_crossing": "road crossing", "stop_hot_cell": "hot cell centre",
           "why_no_roads": "no road on this side within {detour} m beyond the zone",
           "why_no_road": "the nearest road is {distance} m away, more than {reach} m",
           "why_not_joined": "its road does not join the other stops' roads within "
                             "{detour} m beyond the zone"},
}


def _cities(user: User) -> list[tuple[str, str]]:
    """The cities the user may pair (a border partner: their own two)."""
    with db_engine(current_app).connect() as conn:
        if user.role == "border_partner":
            codes = [user.jurisdiction, user.partner]
        elif user.jurisdiction:
            codes = subtree_codes(conn, user.jurisdiction)
        else:
            codes = None
        rows = conn.execute(text(
            "SELECT code, name FROM jurisdictions WHERE level IN ('city', 'district') "
            "AND (CAST(:c AS text[]) IS NULL OR code = ANY(:c)) ORDER BY code"),
            {"c": codes}).all()
    return [(r[0], r[1]) for r in rows]


def _select(name: str, choices: list[tuple[str, str]], chosen: str) -> str:
    options = "".join(f'<option value="{escape(c)}"{" selected" if c == chosen else ""}>'
                      f"{escape(n)} ({escape(c)})</option>" for c, n in choices)
    return f'<select id="sg-{name}">{options}</select>'


def _controls(a: str, b: str, width: float, lang: str, choices: list[tuple[str, str]],
              can_plan: bool) -> str:
    t = TEXT[lang]
    other = "en" if lang == "zh" else "zh"
    plan = f"""
      <div class="sg-row">{escape(t['teams'])}
        <label>{escape(t['a'])} <input id="sg-teams-a" size="2" value="2"></label>
        <label>{escape(t['b'])} <input id="sg-teams-b" size="2" value="2"></label>
        <button type="button" id="sg-plan">{escape(t['plan'])}</button></div>""" \
        if can_plan else ""
    return f"""
    <div id="sg-panel">
      <div class="sg-row"><b>{escape(t['title'])}</b>
        <a href="/map?lang={lang}">{escape(t['map'])}</a>
        <a href="/map/border?a={escape(a)}&b={escape(b)}&lang={other}">{t['lang']}</a></div>
      <div class="sg-row"><label>{escape(t['a'])} {_select('a', choices, a)}</label></div>
      <div class="sg-row"><label>{escape(t['b'])} {_select('b', choices, b)}</label></div>
      <div class="sg-row"><label>{escape(t['width'])}
        <input id="sg-width" size="6" value="{width:g}"></label>
        <button type="button" id="sg-show">{escape(t['show'])}</button></div>
      {plan}
      <div id="sg-message" role="status" aria-live="polite"></div>
      <div id="sg-summary"></div>
      <div class="sg-row"><button type="button" id="sg-print" disabled>
        {escape(t['print'])}</button></div>
    </div>
    <section id="sg-plan-sheet"></section>"""


@bp.get("/map/border")
def border_page():
    """The border page (``?a=CODE&b=CODE&width=METRES&lang=zh|en``)."""
    user = current_user()
    lang = page_lang()
    choices = _cities(user)
    if len(choices) < 2:
        return Response("<h1>safegrid</h1><p>No two jurisdictions to pair.</p>",
                        mimetype="text/html")
    known = [c for c, _n in choices]
    a = request.args.get("a", known[0])
    b = request.args.get("b", known[1] if known[1] != a else known[0])
    for code in (a, b):
        if code not in known:
            raise BadParameter(f"jurisdiction {code!r} is not one you may pair")
    try:
        width = float(request.args.get("width", 2000))
    except ValueError:
        raise BadParameter(f"width={request.args['width']!r} is not a number") from None
    can_plan = user.role in LAYERS["patrol_routes"].write_roles
    return Response(tool_page(
        db_engine(current_app), [a, b], TEXT[lang]["title"], "border.js",
        _controls(a, b, width, lang, choices, can_plan), "safegridBorder",
        {"text": TEXT[lang], "csrf": csrf_token(), "canPlan": can_plan},
        css=("/static/border.css",)), mimetype="text/html")
