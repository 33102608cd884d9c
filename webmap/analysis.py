"""The analyst's map (``/map/analysis``).

Hot spots, densities, emerging hot spots and the safety index of the grids.

A Folium map of one jurisdiction with controls for the method, cell size, period and
category; ``static/analysis.js`` asks the hot-spot API and draws the cells (Gi*
classes in the red/blue palette, KDE and counts in a heat palette, emerging
categories), with a legend, a popup per cell (its figures and, for emerging hot spots,
its counts per step) and the saved runs to reopen.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, current_app, request
from markupsafe import escape
from sqlalchemy import text

from layers.access import subtree_codes
from layers.registry import INCIDENT_CATEGORIES
from layers.users import User

from .app import db_engine
from .auth import current_user
from .mapview import BadParameter, page_lang, tool_page

bp = Blueprint("analysis", __name__)

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
           "hot_99": "热点 99%", "hot_95": "热点 95%", "hot_90": "热点 90%",
           "cold_99": "冷点 99%", "cold_95": "冷点 95%", "cold_90": "冷点 90%",
           "not_significant": "不显著", "map": "总图", "lang": "English",
           "jurisdiction": "辖区", "safety": "平安指数(网格)", "level": "等级",
           "criminal": "刑事", "public_order": "治安", "dispute": "纠纷", "fire": "火灾",
           "fraud": "诈骗", "traffic": "交通", "other": "其他",
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
           "hot_99": "hot spot 99%", "hot_95": "hot spot 95%", "hot_90": "hot spot 90%",
           "cold_99": "cold spot 99%", "cold_95": "cold spot 95%", "cold_90": "cold spot 90%",
           "not_significant": "not significant", "map": "Overview map", "lang": "中文",
           "jurisdiction": "Jurisdiction", "safety": "Safety index (grids)",
           "level": "level", "grids": "grids", "compare_with": "Compare with a saved run…",
           "compared": "Compared", "hot_cells": "hot cells", "in_both": "hot in both",
           "categories_all": "drag to see each step's incidents",
           "partial_step": "a partial step", "step_to": "to",
           **{f"{k}_{side}_spot": f"{k} {side} spot" for side in ("hot", "cold")
              for k in _KINDS_ZH}, "no_pattern": "no pattern"},
}


def _controls(code: str, lang: str, choices: list[tuple[str, str]]) -> str:
    t = TEXT[lang]
    today = dt.date.today()
    options = "".join(f'<option value="{escape(c)}"{" selected" if c == code else ""}>'
                      f"{escape(n)} ({escape(c)})</option>" for c, n in choices)
    methods = "".join(f'<option value="{m}">{escape(t[m])}</option>'
                      for m in ("gi", "kde", "count", "emerging", "safety"))
    categories = f'<option value="">{escape(t["all"])}</option>' + "".join(
        f'<option value="{c}">{c}</option>' for c in INCIDENT_CATEGORIES)
    other = "en" if lang == "zh" else "zh"
    return f"""
    <div id="sg-panel">
      <div class="sg-row"><b>{escape(t['title'])}</b>
        <a href="/map?lang={lang}">{escape(t['map'])}</a>
        <a href="/map/analysis?jurisdiction={escape(code)}&lang={other}">{t['lang']}</a></div>
      <div class="sg-row"><label>{escape(t['jurisdiction'])}
        <select id="sg-jurisdiction">{options}</select></label></div>
      <div class="sg-row"><label>{escape(t['method'])}
        <select id="sg-method">{methods}</select></label>
        <label>{escape(t['cell'])} <input id="sg-cell" size="5" placeholder="{t['auto']}">
        </label></div>
      <div class="sg-row"><label>{escape(t['from'])}
        <input id="sg-from" type="date" value="{today.replace(year=today.year - 1)}"></label>
        <label>{escape(t['to'])} <input id="sg-to" type="date" value="{today}"></label></div>
      <div class="sg-row"><label>{escape(t['category'])}
        <select id="sg-category">{categories}</select></label>
        <span id="sg-step-row" style="display:none"><label>{escape(t['step'])}
        <select id="sg-step"><option value="month">{t['month']}</option>
        <option value="week">{t['week']}</option></select></label></span></div>
      <div class="sg-row"><button type="button" id="sg-run">{escape(t['run'])}</button>
        <select id="sg-runs"></select></div>
      <div class="sg-row"><select id="sg-compare"></select></div>
      <div class="sg-row" id="sg-time" style="display:none">
        <input type="range" id="sg-slider" min="0" max="0" step="1">
        <span id="sg-step-label"></span></div>
      <div id="sg-message" role="status" aria-live="polite"></div>
      <div id="sg-legend"></div>
    </div>"""


def jurisdiction_choices(user: User) -> list[tuple[str, str]]:
    """Cities, districts and streets the user may analyse (admins: all)."""
    with db_engine(current_app).connect() as conn:
        codes = subtree_codes(conn, user.jurisdiction) if user.jurisdiction else None
        rows = conn.execute(text(
            "SELECT code, name FROM jurisdictions WHERE level IN ('city', 'district', "
            "'street') AND (CAST(:c AS text[]) IS NULL OR code = ANY(:c)) ORDER BY code"),
            {"c": codes}).all()
    return [(r[0], r[1]) for r in rows]


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
    choices = jurisdiction_choices(user)
    if not choices:
        return Response("<h1>safegrid</h1><p>No jurisdictions to analyse yet.</p>",
                        mimetype="text/html")
    code = chosen_jurisdiction(user, choices, "analyse")
    return Response(tool_page(
        db_engine(current_app), [code], TEXT[lang]["title"], "analysis.js",
        _controls(code, lang, choices), "safegridAnalysis",
        {"text": TEXT[lang], "jurisdiction": code}), mimetype="text/html")
