"""The border page (``/map/border``): a shared border and its joint patrol plan.

Both sides of the border zone, its crossings and the joint patrol plan, printable.

A Folium map; ``static/border.js`` draws the two jurisdictions' rough outlines at once
(sent with the page), then asks ``/api/border`` and draws the zone (one colour
per side), the border line, the road crossings (green when a checkpoint or camera
covers them, red when not), the hot cells and key areas of both sides and the cameras
that see into the zone (from the same answer: a partner server's hollow, named in the
popup and the key), then plans patrols with ``POST /api/border/patrols`` and draws each team's
sector and route. "Print" lays the plan out as a table under the map for the printer.
"""

from __future__ import annotations

import math

from flask import Blueprint, Response, current_app, request
from markupsafe import escape

from layers.border import MAX_WIDTH, Neighbours, neighbour_pairs
from layers.jurisdictions import rough_outlines
from layers.registry import LAYERS
from layers.validate import LOCAL_TZ

from .auth import csrf_token, current_user
from .db import db_engine
from .mapview import PUNCTUATION, page_lang, tool_page

bp = Blueprint("border_map", __name__)

_CAMERA = LAYERS["cameras"]
WORDS = {
    "zh": {"legend_sides": "边界两侧", "side_of": "{name}一侧", "border_line": "边界线",
           "legend_crossings": "道路过境点", "legend_other": "其他图层",
           "hot_cell_key": "热点格网 (95% 以上置信)", "key_area": "重点区域",
           "camera": "摄像机", "hot_99": "热点 (99% 置信)", "hot_95": "热点 (95% 置信)",
           "online": "在线", "offline": "离线", "planned": "规划",
           "legend_teams": "巡逻队 (实线为责任段, 虚线为路线)",
           "f_side": "所属一侧", "f_name": "名称", "f_road": "道路", "f_covered": "看守情况",
           "f_covered_by": "看守设施", "f_count": "警情数", "f_z": "Z 得分", "f_class": "分类",
           "f_area": "面积", "f_team": "巡逻队", "f_workload": "工作量", "f_hours": "建议时段",
           "f_length": "长度", "f_stops": "已到达途经点", "unit_incidents": "起",
           "km2": "平方公里", "legend_title": "图例", "legend_sources": "数据来源",
           "source_local": "本地 (本服务器)", "source_peer": "对方服务器 {name} ({url})",
           "as_of": "截至 {time}", "both_local": "两侧数据均来自本服务器",
           "stale_cache": "对方数据暂不可用，显示 {time} 的缓存",
           "no_answer": "对方服务器未响应：{error}，仅显示本方",
           "peer_side": "对方服务器的数据 (虚线)",
           "incidents_cells": "对方警情仅按 250 米网格计数共享 (不含单起警情的位置)",
           "incidents_none": "对方未共享警情：警情统计与热点仅含本方",
           "camera_ours": "摄像机 (本服务器)", "camera_theirs": "对方服务器 {name} 的摄像机 (空心)",
           "camera_server": "对方服务器 {name}", "f_server": "数据来源",
           **{f"f_{f}": _CAMERA.get_field(f).title_zh
              for f in ("code", "status", "bearing", "fov", "range_m")}},
    "en": {"legend_sides": "The two sides", "side_of": "{name} side", "border_line": "border",
           "legend_crossings": "Road crossings", "legend_other": "Other layers",
           "hot_cell_key": "hot cell (95%+ confidence)", "key_area": "key area",
           "camera": "camera", "hot_99": "hot spot (99% confidence)",
           "hot_95": "hot spot (95% confidence)", "online": "online", "offline": "offline",
           "planned": "planned", "legend_teams": "Teams (solid: sector, dashed: route)",
           "f_side": "side", "f_name": "name", "f_road": "road", "f_covered": "watched",
           "f_covered_by": "watched by", "f_count": "incidents", "f_z": "z score",
           "f_class": "class", "f_area": "area", "f_team": "team", "f_workload": "workload",
           "f_hours": "hours", "f_length": "length", "f_stops": "stops reached",
           "unit_incidents": "incidents", "km2": "km²", "f_code": "code",
           "f_status": "status", "f_bearing": "bearing (°)", "f_fov": "field of view (°)",
           "f_range_m": "range (m)", "legend_title": "Legend",
           "legend_sources": "Where the data come from", "source_local": "local (this server)",
           "source_peer": "partner server {name} ({url})", "as_of": "as of {time}",
           "both_local": "both sides from this server",
           "stale_cache": "the partner's data are unavailable for now: showing the copy "
                          "of {time}",
           "no_answer": "the partner server did not answer: {error}; showing our side only",
           "peer_side": "data from the partner server (dashed)",
           "incidents_cells": "the partner shares its incidents only as counts per 250 m "
                              "cell (no single incident's place)",
           "incidents_none": "the partner does not share its incidents: the counts and hot "
                             "cells are of ours only",
           "camera_ours": "camera (this server)",
           "camera_theirs": "camera on partner server {name} (hollow)",
           "camera_server": "partner server {name}", "f_server": "from"},
}

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
           "why_no_road": "最近的道路在 {distance} 米外，超过 {reach} 米",
           "why_not_joined": "所在道路在边界带外 {detour} 米内不与其他途经点的道路相连",
           "no_pairs": "您的辖区内没有两个相邻的市或区县，无法进行边界联防。",
           "not_a_pair": "{a} 与 {b} 不是您可选的一对相邻辖区，现显示 {shown}。",
           "width_rule": "每侧宽度须为大于 0、不超过 {max} 的米数",
           "width_shown": "，现按 {width} 米显示。",
           "status_400": "请求参数有误，请检查每侧宽度和巡逻队数",
           "status_401": "登录已失效，请重新登录",
           "status_403": "您无权查看或规划这段边界",
           "status_413": "请求过大", "status_422": "无法按所给条件完成，请检查所选辖区和参数",
           "status_429": "请求过于频繁，请稍后再试",
           "status_409": "对方服务器上的巡逻路线已被修改，未予覆盖，方案未写入",
           "status_502": "对方市的服务器未能完成，方案未写入",
           "status_other": "服务器未能完成请求，请稍后再试"},
    "en": {"title": "Border joint defence", "a": "Side A", "b": "Side B",
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
                             "{detour} m beyond the zone",
           "no_pairs": "Your jurisdiction holds no two neighbouring cities or districts: "
                       "there is no border to work on.",
           "not_a_pair": "{a} and {b} are not a pair of neighbours you may open; showing "
                         "{shown}.",
           "width_rule": "The width each side must be more than 0 and at most {max} m",
           "width_shown": "; showing {width} m.",
           "status_400": "a parameter is wrong: check the width and the teams",
           "status_401": "your login has expired: log in again",
           "status_403": "you may not see or plan this border",
           "status_413": "the request is too large",
           "status_422": "this cannot be done as asked: check the jurisdictions and "
                         "parameters", "status_429": "too many requests: try again shortly",
           "status_409": "a patrol route on the partner's server was changed there and was "
                         "not overwritten; the plan was not written",
           "status_502": "the partner city's server could not do its part; the plan was "
                         "not written",
           "status_other": "the server could not answer: try again later"},
}


def _pair(pairs: list[Neighbours], a: str | None, b: str | None) -> tuple[str, str] | None:
    """(a, b) as asked when it is one of ``pairs`` (either way round), else None."""
    for p in pairs:
        if {a, b} == {p.a, p.b}:
            return a, b
    return None


def _choices(pairs: list[Neighbours]) -> dict[str, list[tuple[str, str]]]:
    """Each jurisdiction of ``pairs`` and its neighbours, as (code, name)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for p in pairs:
        out.setdefault(p.a, []).append((p.b, p.b_name))
        out.setdefault(p.b, []).append((p.a, p.a_name))
    return out


def _select(name: str, choices: list[tuple[str, str]], chosen: str) -> str:
    options = "".join(f'<option value="{escape(c)}"{" selected" if c == chosen else ""}>'
                      f"{escape(n)} ({escape(c)})</option>" for c, n in choices)
    return f'<select id="sg-{name}">{options}</select>'


def _controls(a: str, b: str, width: float, lang: str,
              neighbours: dict[str, list[tuple[str, str]]], can_plan: bool,
              notice: str) -> str:
    t = TEXT[lang]
    other = "en" if lang == "zh" else "zh"
    names = {c: n for options in neighbours.values() for c, n in options}
    plan = f"""
      <div class="sg-row">{escape(t['teams'])}
        <label>{escape(t['a'])} <input id="sg-teams-a" size="2" value="2"></label>
        <label>{escape(t['b'])} <input id="sg-teams-b" size="2" value="2"></label>
        <button type="button" id="sg-plan">{escape(t['plan'])}</button></div>""" \
        if can_plan else ""
    warning = f'<div id="sg-notice" role="alert" style="background:#fff3cd;' \
        f'color:#6b4a00;padding:4px;border-radius:3px">{escape(notice)}</div>' \
        if notice else ""
    return f"""
    <div id="sg-panel">
      <div class="sg-row"><b>{escape(t['title'])}</b>
        <a href="/map?lang={lang}">{escape(t['map'])}</a>
        <a href="/map/border?a={escape(a)}&b={escape(b)}&width={width:g}&lang={other}"
          >{t['lang']}</a></div>
      <div class="sg-row"><label>{escape(t['a'])}
        {_select('a', [(c, names[c]) for c in neighbours], a)}</label></div>
      <div class="sg-row"><label>{escape(t['b'])} {_select('b', neighbours[a], b)}</label></div>
      <div class="sg-row"><label>{escape(t['width'])}
        <input id="sg-width" size="6" value="{width:g}"></label>
        <button type="button" id="sg-show">{escape(t['show'])}</button></div>
      {warning}
      {plan}
      <div id="sg-message" role="status" aria-live="polite"></div>
      <div id="sg-summary"></div>
      <div id="sg-legend-box"><div class="sg-legend-title sg-legend-head">
        {escape(WORDS[lang]['legend_title'])}</div>
        <div id="sg-sources"></div>
        <div id="sg-legend"></div></div>
      <div class="sg-row"><button type="button" id="sg-print" disabled>
        {escape(t['print'])}</button></div>
    </div>
    <section id="sg-plan-sheet"></section>"""


def _no_pairs(lang: str) -> Response:
    """The page of a user with no two neighbouring jurisdictions, in ``lang``."""
    t = TEXT[lang]
    return Response(f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
                    f"<title>{escape(t['title'])}</title></head><body>"
                    f"<h1>{escape(t['title'])}</h1><p id=\"sg-no-pairs\">"
                    f"{escape(t['no_pairs'])}</p><p><a href=\"/map?lang={lang}\">"
                    f"{escape(t['map'])}</a></p></body></html>", mimetype="text/html")


def _chosen(pairs: list[Neighbours], lang: str) -> tuple[str, str, str]:
    """The pair asked for (``?a=&b=``) when the user may open it, else the first; a notice."""
    a, b = request.args.get("a"), request.args.get("b")
    chosen = _pair(pairs, a, b)
    if chosen is not None:
        return *chosen, ""
    first = pairs[0]
    if a is None and b is None:
        return first.a, first.b, ""
    if b is None:  # the first neighbour of a when a has one
        for p in pairs:
            if a in (p.a, p.b):
                return a, p.b if a == p.a else p.a, ""
    names = {p.a: p.a_name for p in pairs} | {p.b: p.b_name for p in pairs}
    notice = TEXT[lang]["not_a_pair"].format(
        a=names.get(a, a or "—"), b=names.get(b, b or "—"),
        shown=f"{first.a_name} / {first.b_name}")
    return first.a, first.b, notice


def _width(lang: str, notice: str) -> tuple[float, str]:
    """``?width=`` in metres (default 2000) and the notice, extended when it is unusable."""
    given = request.args.get("width", "2000")
    try:
        width = float(given)
    except ValueError:
        width = math.nan
    if math.isfinite(width) and 0 < width <= MAX_WIDTH:
        return width, notice
    t = TEXT[lang]
    text = (t["width_rule"].format(max=f"{MAX_WIDTH:g}")
            + t["width_shown"].format(width=2000))
    return 2000.0, f"{notice} {text}".strip()


@bp.get("/map/border")
def border_page():
    """The border page (``?a=CODE&b=CODE&width=METRES&lang=zh|en``).

    Opens on the pair asked for when the user may work on it, else on the first pair
    of neighbours in their scope (:func:`layers.border.neighbour_pairs`), saying so.
    """
    user = current_user()
    lang = page_lang()
    with db_engine(current_app).connect() as conn:
        pairs = neighbour_pairs(conn, user)
        if not pairs:
            return _no_pairs(lang)
        a, b, notice = _chosen(pairs, lang)
        outlines = rough_outlines(conn, [a, b])
    width, notice = _width(lang, notice)
    neighbours = _choices(pairs)
    can_plan = user.role in LAYERS["patrol_routes"].write_roles
    config = {"text": {**TEXT[lang], **WORDS[lang], **PUNCTUATION[lang]}, "csrf": csrf_token(),
              "canPlan": can_plan, "lang": lang, "neighbours": neighbours, "maxWidth": MAX_WIDTH,
              "outlines": outlines, "tz": str(LOCAL_TZ)}
    return Response(tool_page(
        db_engine(current_app), [a, b], TEXT[lang]["title"], "border.js",
        _controls(a, b, width, lang, neighbours, can_plan, notice), "safegridBorder",
        config, css=("/static/border.css",)), mimetype="text/html")
