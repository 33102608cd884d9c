"""The analyst's map (``/map/analysis``).

Hot spots, densities, emerging hot spots, the safety index of the grids, near repeats
(the Knox table and risk zones), the data clock (weekday x hour) and the risk terrain.

A Folium map of one jurisdiction with controls for the method, cell size, period and
category; ``static/analysis.js`` asks the hot-spot API and draws the cells (Gi*
classes in the red/blue palette, KDE and counts in a heat palette, emerging
categories, risk terrain scores), with a legend, a popup per cell (its figures and, for
emerging hot spots, its counts per step) and the saved runs to reopen; the Knox table,
the data clock and the risk factors are shown in a results panel (Esc closes it). The
hours and weekdays filters apply to every run that takes them.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, current_app, request
from markupsafe import escape

from layers.jurisdictions import jurisdiction_choices, jurisdiction_outline, latest_incident_month
from layers.registry import INCIDENT_CATEGORIES, LAYERS
from layers.report import month_range
from layers.users import User
from layers.warnings import WATCH_KINDS, WATCH_ROLES

from .auth import csrf_token, current_user
from .db import db_engine
from .mapview import (
    PUNCTUATION,
    BadParameter,
    page_lang,
    tool_page,
    warnings_config,
    warnings_markup,
)
from .reports import CATEGORY

bp = Blueprint("analysis", __name__)

_GRID = LAYERS["grids"]
WORDS = {
    "zh": {"legend_gi": "Gi* 热点分析 (置信度)", "legend_kde": "核密度 (起/平方公里)",
           "legend_count": "警情数 (起/格网)", "legend_emerging": "时空热点趋势类别",
           "legend_safety": "平安指数等级", "level_1": "1 = 最安全", "level_5": "5 = 最需关注",
           "level_of": "{level} / 5 (1 = 最安全)", "trend_monthly": "逐月警情",
           "trend_steps": "各期警情",
           "f_count": "警情数", "f_class": "分类", "f_z": "Z 得分", "f_p": "p 值",
           "f_p_fdr": "p 值 (FDR 校正)", "f_density": "密度", "f_category": "趋势类别",
           "f_trend_z": "趋势 Z 得分", "f_trend_p": "趋势 p 值", "f_grid": "网格",
           "f_score": "平安指数得分", "f_level": "平安指数等级",
           "f_incidents_12m": "近12个月警情", "f_rate_per_1000": "每千人警情",
           "f_hot_share": "热点面积占比", "f_key_areas_per_km2": "重点区域密度",
           "f_coverage": "监控覆盖率", "f_weighted_incidents": "加权警情",
           "f_by_category": "按类别", "unit_incidents": "起", "per_km2": "起/平方公里",
           "per_1000": "起/千人", "per_km2_areas": "处/平方公里", "unit_households": "户",
           "unit_people": "人", "unit_areas": "处", "comprehensive": "综合网格",
           "dedicated": "专属网格", "safety_run": "平安指数",
           **{f"f_{f}": _GRID.get_field(f).title_zh
              for f in ("kind", "households", "population", "key_areas")}},
    "en": {"legend_gi": "Gi* hot spots (confidence)",
           "legend_kde": "Kernel density (incidents/km²)",
           "legend_count": "Incidents (per cell)", "legend_emerging": "Emerging hot spot trends",
           "legend_safety": "Safety index level", "level_1": "1 = safest",
           "level_5": "5 = needs most attention", "level_of": "{level} / 5 (1 = safest)",
           "trend_monthly": "incidents by month", "trend_steps": "incidents by step",
           "f_count": "incidents",
           "f_class": "class", "f_z": "z score", "f_p": "p value",
           "f_p_fdr": "p value (FDR corrected)", "f_density": "density",
           "f_category": "trend", "f_trend_z": "trend z score", "f_trend_p": "trend p value",
           "f_grid": "grid", "f_score": "safety score", "f_level": "safety level",
           "f_incidents_12m": "incidents, last 12 months",
           "f_rate_per_1000": "incidents per 1000 people", "f_hot_share": "share in hot spots",
           "f_key_areas_per_km2": "key areas density", "f_coverage": "camera coverage",
           "f_weighted_incidents": "weighted incidents", "f_by_category": "by category",
           "unit_incidents": "incidents", "per_km2": "incidents/km²", "per_1000": "per 1000",
           "per_km2_areas": "per km²", "unit_households": "households",
           "unit_people": "people", "unit_areas": "", "comprehensive": "comprehensive grid",
           "dedicated": "dedicated grid", "safety_run": "safety index", "f_kind": "grid type",
           "f_households": "households", "f_population": "population",
           "f_key_areas": "key areas"},
}

_KINDS_ZH = {"new": "新出现", "consecutive": "连续", "intensifying": "加剧", "persistent": "持续",
             "diminishing": "减弱", "sporadic": "零星", "oscillating": "振荡",
             "historical": "历史"}
TEXT = {
    "zh": {"title": "警情热点分析", "method": "方法", "gi": "热点分析 Gi*", "kde": "核密度",
           "count": "计数", "emerging": "时空热点趋势", "cell": "格网(米)", "auto": "自动",
           "from": "起", "to": "止", "category": "类别", "all": "全部", "step": "步长",
           "week": "周", "month": "月", "run": "分析", "running": "分析中…", "done": "完成",
           "cells": "个格网", "chosen": "按数据自动选择", "incidents": "起警情",
           "refused": "未完成", "saved_runs": "已保存的分析…", "low": "低", "high": "高",
           "hot_99": "热点 (99% 置信)", "hot_95": "热点 (95% 置信)",
           "hot_90": "热点 (90% 置信)", "cold_99": "冷点 (99% 置信)",
           "cold_95": "冷点 (95% 置信)", "cold_90": "冷点 (90% 置信)",
           "not_significant": "不显著", "map": "总图", "lang": "English",
           "jurisdiction": "辖区", "safety": "平安指数(网格)", "level": "等级",
           "grids": "个网格", "compare_with": "与已保存的分析对比…", "compared": "对比",
           "hot_cells": "个热点格网", "in_both": "个两次都是热点",
           "categories_all": "拖动查看各期警情", "no_pattern": "无明显模式",
           "partial_step": "不完整的一期", "step_to": "至",
           **{f"{k}_{side}_spot": f"{v}{'热点' if side == 'hot' else '冷点'}"
              for side in ("hot", "cold") for k, v in _KINDS_ZH.items()}},
    "en": {"title": "Incident hot spots", "method": "Method", "gi": "Hot spots (Gi*)",
           "kde": "Kernel density", "count": "Counts", "emerging": "Emerging hot spots",
           "cell": "Cell (m)", "auto": "auto", "from": "From", "to": "To",
           "category": "Category", "all": "all", "step": "Step", "week": "week",
           "month": "month", "run": "Run", "running": "Running…", "done": "Done",
           "cells": "cells", "chosen": "chosen from the data", "incidents": "incidents",
           "refused": "Not done", "saved_runs": "Saved runs…", "low": "low", "high": "high",
           "hot_99": "hot spot (99% confidence)", "hot_95": "hot spot (95% confidence)",
           "hot_90": "hot spot (90% confidence)", "cold_99": "cold spot (99% confidence)",
           "cold_95": "cold spot (95% confidence)", "cold_90": "cold spot (90% confidence)",
           "not_significant": "not significant", "map": "Overview map", "lang": "中文",
           "jurisdiction": "Jurisdiction", "safety": "Safety index (grids)",
           "level": "level", "grids": "grids", "compare_with": "Compare with a saved run…",
           "compared": "Compared", "hot_cells": "hot cells", "in_both": "hot in both",
           "categories_all": "drag to see each step's incidents",
           "partial_step": "a partial step", "step_to": "to",
           **{f"{k}_{side}_spot": f"{k} {side} spot" for side in ("hot", "cold")
              for k in _KINDS_ZH}, "no_pattern": "no pattern"},
}


_KEY_AREAS = {
    "zh": {"school": "学校", "kindergarten": "幼儿园", "hospital": "医院", "park": "公园",
           "entertainment": "娱乐场所", "mall": "商场", "airport": "机场", "station": "车站",
           "port": "港口", "railway": "铁路", "border_port": "口岸",
           "government_hall": "政务大厅", "market": "市场"},
    "en": {"school": "schools", "kindergarten": "kindergartens", "hospital": "hospitals",
           "park": "parks", "entertainment": "entertainment venues", "mall": "malls",
           "airport": "airports", "station": "stations", "port": "ports",
           "railway": "railways", "border_port": "border ports",
           "government_hall": "government halls", "market": "markets"},
}
# Near repeat, the data clock and the risk terrain: controls, the results panel, legends.
MORE_TEXT = {
    "zh": {"near_repeat": "近重复", "clock": "时段分布", "terrain": "风险地形",
           "hours": "时段", "hours_hint": "如 22-6", "weekdays": "星期",
           "weekdays_hint": "如 1-5", "space_bands": "距离分段(米)",
           "time_bands": "时间分段(天)", "permutations": "置换次数",
           "clock_grid": "网格", "clock_grid_all": "整个辖区 (或点击网格)",
           "results": "分析结果", "close": "关闭", "knox_title": "Knox 近重复表",
           "knox_corner": "距离 ↓ 时间 →", "metres": "米", "days": "天",
           "knox_note": "格内：Knox 比值 (观察到的警情对数)",
           "knox_p01": "比值 > 1，p ≤ 0.01 (显著偏多)", "knox_p05": "比值 > 1，p ≤ 0.05",
           "knox_warm": "比值 > 1，不显著", "knox_cool": "比值 ≤ 1",
           "knox_none": "— 无法计算 (期望为 0)", "knox_ratio": "Knox 比值",
           "observed": "观察对数", "expected": "期望对数",
           "classes_title": "按 {m} 米、{d} 天内相连", "originator": "始发",
           "near_repeat_class": "近重复", "isolated": "孤立",
           "zones": "个近重复风险区", "zone_title": "近重复风险区",
           "zone_until": "风险持续至", "zone_list": "风险区 (按结束时间)",
           "zone_incidents": "涉及警情",
           "zones_withheld": "你的角色只能看到汇总，不显示风险区 (风险区围绕警情点绘制)",
           "legend_zone": "近重复分析", "clock_title": "时段分布 (星期 × 小时)",
           "clock_grid_title": "网格 {code} 的时段分布", "hour_unit": "时",
           "total": "合计", "mon": "周一", "tue": "周二", "wed": "周三", "thu": "周四",
           "fri": "周五", "sat": "周六", "sun": "周日", "clock_of": "{day} {hour} 时",
           "legend_rrs": "相对风险得分", "rrs_1": "低于均值", "rrs_2": "均值至 +1 标准差",
           "rrs_3": "+1 至 +2 标准差", "rrs_4": "高于 +2 标准差", "f_rrs": "相对风险得分",
           "factors_title": "风险因素", "factor": "因素", "operationalisation": "处理方式",
           "distance": "距离", "relative_risk": "相对风险", "proximity": "邻近",
           "density": "高密度", "absence": "缺失", "no_factors": "没有选出风险因素",
           "roads:arterial": "主干道", "roads:motorway": "高速公路",
           "checkpoints": "检查站", "cameras:offline": "离线摄像头",
           "validation_title": "检验：下一时段的 PAI", "share_of_area": "面积前",
           "method_rtm": "风险地形", "method_gi": "热点分析 Gi*", "method_kde": "核密度 KDE",
           "no_validation": "下一时段没有警情，无法检验", "model": "模型",
           "poisson": "泊松回归", "negbin": "负二项回归",
           "filters_ignored": "时段和星期筛选不适用于此方法", "bad_param": "{name}填写有误"},
    "en": {"near_repeat": "Near repeat", "clock": "Data clock", "terrain": "Risk terrain (RTM)",
           "hours": "Hours", "hours_hint": "e.g. 22-6", "weekdays": "Weekdays",
           "weekdays_hint": "e.g. 1-5", "space_bands": "Distance bands (m)",
           "time_bands": "Time bands (days)", "permutations": "Permutations",
           "clock_grid": "Grid", "clock_grid_all": "whole jurisdiction (or click a grid)",
           "results": "Results", "close": "Close", "knox_title": "Knox near-repeat table",
           "knox_corner": "distance ↓ time →", "metres": "m", "days": "days",
           "knox_note": "in each cell: Knox ratio (observed pairs)",
           "knox_p01": "ratio > 1, p ≤ 0.01 (significantly more)",
           "knox_p05": "ratio > 1, p ≤ 0.05", "knox_warm": "ratio > 1, not significant",
           "knox_cool": "ratio ≤ 1", "knox_none": "— undefined (none expected)",
           "knox_ratio": "Knox ratio", "observed": "observed pairs",
           "expected": "expected pairs", "classes_title": "linked within {m} m and {d} days",
           "originator": "originators", "near_repeat_class": "near repeats",
           "isolated": "isolated", "zones": "near-repeat risk zones",
           "zone_title": "Near-repeat risk zone", "zone_until": "at risk until",
           "zone_list": "Risk zones (latest end first)",
           "zone_incidents": "incidents", "zones_withheld":
           "Your role sees aggregates only: no risk zones (they are drawn around incidents)",
           "legend_zone": "Near repeat", "clock_title": "Data clock (weekday × hour)",
           "clock_grid_title": "Data clock of grid {code}", "hour_unit": "h",
           "total": "total", "mon": "Mon", "tue": "Tue", "wed": "Wed", "thu": "Thu",
           "fri": "Fri", "sat": "Sat", "sun": "Sun", "clock_of": "{day} {hour} h",
           "legend_rrs": "Relative risk score (RRS)", "rrs_1": "below the mean",
           "rrs_2": "mean to +1 SD", "rrs_3": "+1 to +2 SD", "rrs_4": "above +2 SD",
           "f_rrs": "relative risk score", "factors_title": "Risk factors",
           "factor": "factor", "operationalisation": "as", "distance": "distance",
           "relative_risk": "relative risk", "proximity": "proximity",
           "density": "high density", "absence": "absence",
           "no_factors": "no risk factor was selected", "roads:arterial": "arterial roads",
           "roads:motorway": "motorways", "checkpoints": "checkpoints",
           "cameras:offline": "offline cameras",
           "validation_title": "Check: PAI on the following period",
           "share_of_area": "top", "method_rtm": "Risk terrain (RTM)",
           "method_gi": "Hot spots (Gi*)", "method_kde": "Kernel density (KDE)",
           "no_validation": "No incidents in the following period to check on",
           "model": "model", "poisson": "Poisson regression",
           "negbin": "negative binomial regression",
           "filters_ignored": "the hours and weekdays filters do not apply to this method",
           "bad_param": "{name} is wrong"},
}


# The risk levels of places (风险分级) and keeping a run as a standing watch.
PLACES_TEXT = {
    "zh": {"places": "场所风险分级", "risk_places": "场所风险分级",
           "legend_places": "场所风险等级", "score_range": "得分",
           "f_risk_level": "风险等级", "f_risk_score": "风险得分", "f_place_category": "类别",
           "place_grid": "网格", "place_key_area": "重点区域", "reasons": "依据",
           "points": "分", "no_reasons": "没有加分因素",
           "places_done": "{k} 个重点区域，{g} 个网格",
           "watch": "关注此分析", "watching": "已关注",
           "watch_title": "把这次分析设为常设关注：每次检查都按同样的条件重新分析，"
                          "出现新情况即发出预警",
           "watched": "已关注（关注 #{id}）：每次检查都按同样的条件重新分析，"
                      "出现新情况即发出预警",
           "already_watched": "这次分析已在关注中（关注 #{id}）",
           "watch_400": "这次分析不能设为关注", "watch_401": "登录已失效，请重新登录",
           "watch_403": "您的角色不能设置关注"},
    "en": {"places": "Risk levels of places", "risk_places": "risk levels of places",
           "legend_places": "Risk level of places", "score_range": "score",
           "f_risk_level": "risk level", "f_risk_score": "risk score",
           "f_place_category": "category", "place_grid": "grid",
           "place_key_area": "key area", "reasons": "reasons", "points": "points",
           "no_reasons": "nothing raised the score",
           "places_done": "{k} key areas, {g} grids",
           "watch": "Watch this run", "watching": "Watched",
           "watch_title": "Keep this run as a standing watch: each check repeats it with the "
                          "same settings and raises a warning when something new appears",
           "watched": "Watched (watch #{id}): each check repeats this run with the same "
                      "settings and raises a warning when something new appears",
           "already_watched": "This run is already watched (watch #{id})"},
}


NOTICE_TEXT = {
    "zh": {"notice": "本月治安告知", "no_data": "该辖区还没有警情数据，暂不能分析"},
    "en": {"notice": "Monthly notice",
           "no_data": "No incidents are recorded in this jurisdiction yet: nothing to analyse"},
}


def page_text(lang: str) -> dict[str, str]:
    """Every word of the analysis page in ``lang``: controls, legends, popups, categories."""
    return {**TEXT[lang], **WORDS[lang], **CATEGORY[lang], **NOTICE_TEXT[lang],
            **MORE_TEXT[lang], **PLACES_TEXT[lang],
            **{f"key_areas:{k}": v for k, v in _KEY_AREAS[lang].items()},
            **PUNCTUATION[lang]}


def _controls(code: str, lang: str, choices: list[tuple[str, str]], month: str | None,
              warnings: bool = False) -> str:
    t = page_text(lang)
    start, end = default_period(month)
    options = "".join(f'<option value="{escape(c)}"{" selected" if c == code else ""}>'
                      f"{escape(n)} ({escape(c)})</option>" for c, n in choices)
    methods = "".join(f'<option value="{m}">{escape(t[m])}</option>'
                      for m in METHODS)
    categories = f'<option value="">{escape(t["all"])}</option>' + "".join(
        f'<option value="{c}">{escape(t[c])}</option>' for c in INCIDENT_CATEGORIES)
    other = "en" if lang == "zh" else "zh"
    return f"""
    <div id="sg-panel">
      <div class="sg-row"><b>{escape(t['title'])}</b>
        <a href="/map?lang={lang}">{escape(t['map'])}</a>
        <a href="/map/analysis?jurisdiction={escape(code)}&lang={other}">{t['lang']}</a>
        {warnings_markup(lang) if warnings else ""}</div>
      <div class="sg-row"><label>{escape(t['jurisdiction'])}
        <select id="sg-jurisdiction">{options}</select></label></div>
      <div class="sg-row">{notice_link(code, month, lang)}</div>
      <div class="sg-row"><label>{escape(t['method'])}
        <select id="sg-method">{methods}</select></label>
        <label>{escape(t['cell'])} <input id="sg-cell" size="5" placeholder="{t['auto']}">
        </label></div>
      <div class="sg-row"><label>{escape(t['from'])}
        <input id="sg-from" type="date" value="{start}"></label>
        <label>{escape(t['to'])} <input id="sg-to" type="date" value="{end}"></label></div>
      <div class="sg-row"><label>{escape(t['category'])}
        <select id="sg-category">{categories}</select></label>
        <span id="sg-step-row" style="display:none"><label>{escape(t['step'])}
        <select id="sg-step"><option value="month">{t['month']}</option>
        <option value="week">{t['week']}</option></select></label></span></div>
      {_more_controls(t)}
      <div class="sg-row"><button type="button" id="sg-run">{escape(t['run'])}</button>
        <select id="sg-runs"></select>
        <button type="button" id="sg-watch" title="{escape(t['watch_title'])}" hidden>{
            escape(t['watch'])}</button></div>
      <div class="sg-row"><select id="sg-compare"></select></div>
      <div class="sg-row" id="sg-time" style="display:none">
        <input type="range" id="sg-slider" min="0" max="0" step="1">
        <span id="sg-step-label"></span></div>
      <div id="sg-message" role="status" aria-live="polite"></div>
      <div id="sg-legend"></div>
    </div>
    <section id="sg-results" aria-labelledby="sg-results-title" hidden>
      <div class="sg-results-head"><b id="sg-results-title">{escape(t['results'])}</b>
        <button type="button" id="sg-results-close" title="{escape(t['close'])}"
          aria-label="{escape(t['close'])}">×</button></div>
      <div id="sg-results-body"></div>
    </section>"""


METHODS = ("gi", "kde", "count", "emerging", "safety", "near_repeat", "clock", "terrain",
           "places")


def _more_controls(t: dict[str, str]) -> str:
    """The hours and weekdays filters, the near-repeat bands and the data clock's grid."""
    def field(key: str, id_: str, size: int, value: str = "", hint: str = "") -> str:
        hint_attr = f' placeholder="{escape(t[hint])}"' if hint else ""
        return (f'<label>{escape(t[key])} <input id="{id_}" size="{size}" '
                f'value="{escape(value)}"{hint_attr}></label>')
    return f"""
      <div class="sg-row">{field("hours", "sg-hours", 6, hint="hours_hint")}
        {field("weekdays", "sg-weekdays", 6, hint="weekdays_hint")}</div>
      <div class="sg-row" id="sg-nr-row" hidden>
        {field("space_bands", "sg-space-bands", 10, "100,200,300")}
        {field("time_bands", "sg-time-bands", 10, "7,14,21,28")}
        {field("permutations", "sg-permutations", 4, "99")}</div>
      <div class="sg-row" id="sg-clock-row" hidden><label>{escape(t['clock_grid'])}
        <select id="sg-clock-grid"><option value="">{escape(t['clock_grid_all'])}</option>
        </select></label></div>"""


def choices_for(user: User) -> list[tuple[str, str]]:
    """Cities, districts and streets the user may analyse (admins: all)."""
    with db_engine(current_app).connect() as conn:
        return jurisdiction_choices(conn, user)


def default_period(month: str | None) -> tuple[str, str]:
    """First and last day of the 12 calendar months ending with ``month`` (``YYYY-MM``).

    Without a month (no incidents), the year up to today.
    """
    if month is None:
        today = dt.date.today()
        return str(today - dt.timedelta(days=365)), str(today)
    last = month_range(month)[1].date() - dt.timedelta(days=1)
    return str(month_range(month, -11)[0].date()), str(last)


def latest_month(user: User, code: str) -> str | None:
    """The last month (``YYYY-MM``) with an incident in ``code``; None if there is none."""
    with db_engine(current_app).connect() as conn:
        return latest_incident_month(conn, user, code)


def outline(code: str) -> dict:
    """GeoJSON of jurisdiction ``code`` and its communities, drawn before any run."""
    with db_engine(current_app).connect() as conn:
        return jurisdiction_outline(conn, code)


def notice_link(code: str, month: str | None, lang: str) -> str:
    """The link to the monthly notice of ``code`` for ``month``; or why there is none."""
    t = NOTICE_TEXT[lang]
    if month is None:
        return f'<span id="sg-no-data">{escape(t["no_data"])}</span>'
    href = f"/reports/notice?jurisdiction={code}&month={month}&lang={lang}"
    return (f'<a id="sg-notice-link" href="{escape(href)}">{escape(t["notice"])}</a> '
            f'<small>{escape(month)}</small>')


def chosen_jurisdiction(user: User, choices: list[tuple[str, str]], doing: str) -> str:
    """``?jurisdiction=`` if the user may ``doing`` it; by default their own, or the first."""
    known = {c for c, _n in choices}
    code = request.args.get("jurisdiction", user.jurisdiction if user.jurisdiction in known
                            else choices[0][0])
    if code not in known:
        raise BadParameter(f"jurisdiction {code!r} is not one you may {doing}")
    return code


@bp.get("/map/analysis")
def analysis_page():
    """The hot-spot map (``?jurisdiction=CODE``, default the user's; ``?lang=zh|en``)."""
    user = current_user()
    lang = page_lang()
    choices = choices_for(user)
    if not choices:
        return Response("<h1>safegrid</h1><p>No jurisdictions to analyse yet.</p>",
                        mimetype="text/html")
    code = chosen_jurisdiction(user, choices, "analyse")
    month = latest_month(user, code)
    warnings = warnings_config(user, code, lang)
    return Response(tool_page(
        db_engine(current_app), [code], TEXT[lang]["title"], "analysis.js",
        _controls(code, lang, choices, month, warnings is not None), "safegridAnalysis",
        {"text": page_text(lang), "jurisdiction": code, "lang": lang,
         "outline": outline(code), "month": month, "warnings": warnings,
         "csrf": csrf_token(), "canWatch": user.role in WATCH_ROLES,
         "watchKinds": sorted(WATCH_KINDS.values())},
        css=("/static/analysis.css", "/static/warnings.css"), scripts=("warnings.js",)),
        mimetype="text/html")
