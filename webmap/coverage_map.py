"""The coverage map (``/map/coverage``): what cameras watch, what they miss, where to add.

A Folium map of one jurisdiction; ``static/coverage.js`` asks the coverage API and draws
the cameras' fields of view (offline greyed, planned dashed), the targets coloured by
their covered share, the gaps coloured by risk, and proposed cameras with their sectors
and an "add to plan" action that stores the camera with status ``planned``. A camera's
popup switches it off for a what-if.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from markupsafe import escape

from layers.registry import LAYERS

from .analysis import NOTICE_TEXT, choices_for, chosen_jurisdiction, latest_month, notice_link
from .auth import csrf_token, current_user
from .db import db_engine
from .mapview import PUNCTUATION, page_lang, tool_page

bp = Blueprint("coverage_map", __name__)

TARGET_TEXT = {
    "zh": {"key_areas": "重点区域", "school_zones": "学生安全区域", "grids": "网格",
           "roads": "道路"},
    "en": {"key_areas": "Key areas", "school_zones": "School safety zones", "grids": "Grids",
           "roads": "Roads"},
}
_CAMERA = LAYERS["cameras"]
WORDS = {
    "zh": {"legend_cameras": "摄像机状态", "legend_share": "对象覆盖率",
           "legend_risk": "盲区风险 (预计警情)", "legend_proposed": "建议点位",
           "proposed_view": "建议点位视域", "switched_off_cam": "已停用(推演)",
           "f_name": "名称", "f_covered_ratio": "覆盖率", "f_area_m2": "面积",
           "f_length_m": "长度", "f_covered_m2": "已覆盖面积", "f_covered_m": "已覆盖长度",
           "f_road_covered_ratio": "道路覆盖率", "f_rank": "排名", "f_risk": "风险",
           "f_incidents": "警情", "f_target_name": "所属对象", "f_gain": "新增风险覆盖",
           "f_gain_m2": "新增覆盖面积", "f_gain_m": "新增覆盖长度", "f_view_area": "视域面积",
           "m2": "平方米", "metres": "米", "expected": "起(预计)", "unit_incidents": "起",
           "gain_note": "按警情风险加权，预计新增看到的警情数",
           **{f"f_{f}": _CAMERA.get_field(f).title_zh
              for f in ("code", "status", "bearing", "fov", "range_m")}},
    "en": {"legend_cameras": "Camera status", "legend_share": "Share of target covered",
           "legend_risk": "Gap risk (expected incidents)", "legend_proposed": "Proposed",
           "proposed_view": "proposed camera's view", "switched_off_cam": "switched off (what-if)",
           "f_name": "name", "f_covered_ratio": "covered", "f_area_m2": "area",
           "f_length_m": "length", "f_covered_m2": "area covered", "f_covered_m": "length covered",
           "f_road_covered_ratio": "roads covered", "f_rank": "rank", "f_risk": "risk",
           "f_incidents": "incidents", "f_target_name": "target", "f_gain": "risk newly watched",
           "f_gain_m2": "area newly covered", "f_gain_m": "length newly covered",
           "f_view_area": "field of view", "m2": "m²", "metres": "m",
           "expected": "incidents (expected)", "unit_incidents": "incidents",
           "gain_note": "incidents expected to be newly seen, weighted by risk",
           "f_code": "code", "f_status": "status", "f_bearing": "bearing (°)",
           "f_fov": "field of view (°)", "f_range_m": "range (m)"},
}
TEXT = {
    "zh": {"title": "视频监控覆盖", "jurisdiction": "辖区", "target": "对象",
           "buffer": "学校周边(米)", "coverage": "覆盖", "gaps": "盲区", "siting": "选址",
           "k": "新增数量", "fov": "视场角", "range_m": "距离(米)", "planned": "计入规划点位",
           "map": "总图", "lang": "English", "running": "计算中…", "covered": "覆盖率",
           "targets": "个对象", "gap_count": "个盲区", "risk": "风险", "proposed": "建议点位",
           "before": "现状", "after": "新增后", "add_to_plan": "加入规划",
           "added": "已加入规划", "switch_off": "停用(推演)", "switched_off": "已停用",
           "reset": "恢复全部", "online": "在线", "offline": "离线", "planned_cam": "规划",
           "watching": "在看", "cameras": "摄像机", "gain": "新增风险覆盖",
           "refused": "未完成", "low": "低", "high": "高", "view": "视域",
           **TARGET_TEXT["zh"]},
    "en": {"title": "Camera coverage", "jurisdiction": "Jurisdiction", "target": "Target",
           "buffer": "School zone (m)", "coverage": "Coverage", "gaps": "Gaps",
           "siting": "Siting", "k": "New cameras", "fov": "FOV", "range_m": "Range (m)",
           "planned": "count planned cameras", "map": "Overview map", "lang": "中文",
           "running": "Working…", "covered": "covered", "targets": "targets",
           "gap_count": "gaps", "risk": "risk", "proposed": "proposed cameras",
           "before": "now", "after": "with them", "add_to_plan": "Add to plan",
           "added": "added to the plan", "switch_off": "Switch off (what-if)",
           "switched_off": "switched off", "reset": "All back on", "online": "online",
           "offline": "offline", "planned_cam": "planned", "watching": "watching",
           "cameras": "cameras", "gain": "risk newly watched", "refused": "Not done",
           "low": "low", "high": "high", "view": "field of view", **TARGET_TEXT["en"]},
}


def page_text(lang: str) -> dict[str, str]:
    """Every word of the coverage page in ``lang``: controls, legends and popups."""
    return {**TEXT[lang], **WORDS[lang], **NOTICE_TEXT[lang], **PUNCTUATION[lang]}


def _controls(code: str, lang: str, choices: list[tuple[str, str]], month: str | None
              ) -> str:
    t = page_text(lang)
    options = "".join(f'<option value="{escape(c)}"{" selected" if c == code else ""}>'
                      f"{escape(n)} ({escape(c)})</option>" for c, n in choices)
    targets = "".join(f'<option value="{k}">{escape(v)}</option>'
                      for k, v in TARGET_TEXT[lang].items())
    other = "en" if lang == "zh" else "zh"
    return f"""
    <div id="sg-panel">
      <div class="sg-row"><b>{escape(t['title'])}</b>
        <a href="/map?lang={lang}">{escape(t['map'])}</a>
        <a href="/map/coverage?jurisdiction={escape(code)}&lang={other}">{t['lang']}</a></div>
      <div class="sg-row"><label>{escape(t['jurisdiction'])}
        <select id="sg-jurisdiction">{options}</select></label></div>
      <div class="sg-row">{notice_link(code, month, lang)}</div>
      <div class="sg-row"><label>{escape(t['target'])}
        <select id="sg-target">{targets}</select></label>
        <label>{escape(t['buffer'])} <input id="sg-buffer" size="4" value="200"></label></div>
      <div class="sg-row"><label><input type="checkbox" id="sg-planned">
        {escape(t['planned'])}</label></div>
      <div class="sg-row"><button type="button" id="sg-coverage">{escape(t['coverage'])}</button>
        <button type="button" id="sg-gaps">{escape(t['gaps'])}</button>
        <button type="button" id="sg-reset" style="display:none">{escape(t['reset'])}</button>
      </div>
      <div class="sg-row"><label>{escape(t['k'])} <input id="sg-k" size="3" value="10"></label>
        <label>{escape(t['fov'])} <input id="sg-fov" size="3" value="90"></label>
        <label>{escape(t['range_m'])} <input id="sg-range" size="3" value="60"></label>
        <button type="button" id="sg-siting">{escape(t['siting'])}</button></div>
      <div id="sg-message" role="status" aria-live="polite"></div>
      <div id="sg-summary"></div>
      <div id="sg-legend"></div>
      <div id="sg-proposals"></div>
    </div>"""


@bp.get("/map/coverage")
def coverage_page():
    """The coverage map (``?jurisdiction=CODE``, default the user's; ``?lang=zh|en``)."""
    user = current_user()
    lang = page_lang()
    choices = choices_for(user)
    if not choices:
        return Response("<h1>safegrid</h1><p>No jurisdictions to show yet.</p>",
                        mimetype="text/html")
    code = chosen_jurisdiction(user, choices, "see")
    return Response(tool_page(
        db_engine(current_app), [code], TEXT[lang]["title"], "coverage.js",
        _controls(code, lang, choices, latest_month(user, code)), "safegridCoverage",
        {"text": page_text(lang), "jurisdiction": code, "csrf": csrf_token(),
         "canPlan": user.role in LAYERS["cameras"].write_roles}), mimetype="text/html")
