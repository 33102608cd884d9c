"""The monthly security notice as a printable page: ``/reports/notice`` and ``safegrid report``.

Two copies on separate pages, one to post (公示联) and one to archive (存档联): the
counts by category against the month before and the same month last year, the
disputes, and a map of the Gi* hot cells of the last three months. PDF is printed by
the system Chromium (headless), which the setup installs.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import shapely
from flask import Blueprint, Response, current_app, request
from markupsafe import escape

from layers.jurisdictions import jurisdiction_choices, latest_incident_month
from layers.report import MAX_PLACES, notice_figures

from .auth import current_user
from .db import db_engine
from .errorpage import wants_page
from .params import BadRequest, only_params

bp = Blueprint("reports", __name__)

LANGS = ("zh", "en")
CATEGORY = {
    "zh": {"criminal": "刑事案件", "public_order": "治安案件", "dispute": "矛盾纠纷",
           "fire": "火灾事故", "fraud": "电信网络诈骗", "traffic": "交通事故", "other": "其他"},
    "en": {"criminal": "Criminal cases", "public_order": "Public order cases",
           "dispute": "Disputes", "fire": "Fires", "fraud": "Telecom and online fraud",
           "traffic": "Traffic accidents", "other": "Other"},
}
LEVEL = {
    "zh": {"province": "省", "city": "市", "district": "区县", "street": "街道",
           "community": "社区", "village": "村"},
    "en": {"province": "Province", "city": "City", "district": "District",
           "street": "Street", "community": "Community", "village": "Village"},
}
TEXT = {
    "zh": {"post": "公示联", "archive": "存档联", "switch": "English",
           "title": "{name}{year}年{month}月治安状况告知", "code": "{level}代码 {code}",
           "people": "住户 {households} 户 · 人口 {population} 人",
           "summary": "本月共接报警情 <b>{now}</b> 起{changes}；"
                      "受理矛盾纠纷 <b>{disputes}</b> 起。",
           "vs_before": "，较上月{change}", "vs_last_year": "，较去年同月{change}",
           "no_data_now": "本月暂无警情数据（尚未录入），不作统计和比较。",
           "no_data_before": "上月无警情数据，不作环比。",
           "no_data_last_year": "去年同月无警情数据，不作同比。",
           "category": "类别", "now": "本月", "before": "上月", "mom": "环比",
           "last_year": "去年同月", "yoy": "同比", "total": "合计",
           "no_data": "无数据", "new": "新增", "same": "持平",
           "dash": "“—”：其中一个月无数据，不作比较；“新增”：比较月为 0 起。",
           "hot_title": "治安热点分布",
           "hot": "近三个月热点格网 {cells} 个（格网边长 {cell} 米，警情 {incidents} 起）。",
           "few": "近三个月警情过少，未作热点分析。",
           "legend": "红色越深，聚集越显著（Getis-Ord Gi*，FDR 校正）。",
           "sign": "平安建设工作办公室 · {date:%Y年%m月%d日}", "cases": "{n} 起"},
    "en": {"post": "To post", "archive": "To archive", "switch": "中文",
           "title": "Security notice of {name}, {month_name} {year}",
           "code": "{level} code {code}",
           "people": "{households} households · {population} residents",
           "summary": "<b>{now}</b> incidents were reported this month{changes}; "
                      "<b>{disputes}</b> disputes were taken up.",
           "vs_before": ", {change} on the month before",
           "vs_last_year": ", {change} on the same month last year",
           "no_data_now": "There are no incident data for this month yet (not yet "
                          "recorded): nothing is counted or compared.",
           "no_data_before": "The month before has no incident data: no comparison "
                             "with it.",
           "no_data_last_year": "The same month last year has no incident data: no "
                                "comparison with it.",
           "category": "Category", "now": "This month", "before": "Month before",
           "mom": "Change", "last_year": "Same month last year", "yoy": "Change",
           "total": "Total", "no_data": "no data", "new": "up from none", "same": "no change",
           "dash": "“—”: one of the two months has no data, no comparison; “up from none”: "
                   "none in the month compared with.",
           "hot_title": "Where incidents cluster",
           "hot": "{cells} hot cells in the last three months (cells of {cell} m, "
                  "{incidents} incidents). ",
           "few": "Too few incidents in the last three months for a hot-spot analysis. ",
           "legend": "The darker the red, the stronger the clustering (Getis-Ord Gi*, "
                     "FDR-corrected).",
           "sign": "Community Safety Office · {date:%d %B %Y}", "cases": "{n} incidents"},
}
HOT_FILL = {"hot_99": "#d7191c", "hot_95": "#f46d43", "hot_90": "#fdae61"}
SIZE = 360  # pixels of the map's longer side


def percent(now: int, then: int) -> str:
    """The change from ``then`` to ``now`` (``then`` > 0) in per cent, signed.

    Whole per cents, with more places only where rounding would say "no change" or
    "down to none" when that is not so (1000 to 1004: "+0.4%", 2000 to 1: "-99.95%").
    """
    pct = 100 * (now - then) / then
    for places in range(4):
        shown = round(pct, places)
        if (shown != 0 or now == then) and (shown != -100 or now == 0):
            break
    return f"{shown:+.{places}f}%"


def change(now: int, then: int, recorded: tuple[bool, bool], lang: str) -> str:
    """How ``now`` compares with ``then``: "—" when either month has no data.

    ``recorded`` says whether each month has data at all; "new" when ``then`` is 0.
    """
    t = TEXT[lang]
    if not all(recorded):
        return "—"
    if now == then:
        return t["same"]
    if then == 0:
        return t["new"]
    return percent(now, then)


ROAD_WIDTH = {"motorway": 2.6, "arterial": 1.8, "collector": 1.1}  # pixels
MAX_ROAD_NAMES = 8  # a map of one community names its longest streets, no more


def _svg(hot: dict, lang: str) -> str:
    """The hot cells on the jurisdiction's streets and places, as an inline SVG."""
    outline = hot["outline"]
    x0, y0, x1, y1 = outline.bounds
    scale = SIZE / max(x1 - x0, y1 - y0, 1.0)
    width, height = (x1 - x0) * scale, (y1 - y0) * scale

    def xy(coords: np.ndarray) -> np.ndarray:
        return np.column_stack([(coords[:, 0] - x0) * scale, (y1 - coords[:, 1]) * scale])

    def points(coords: np.ndarray) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in xy(coords))

    def path(geom: shapely.Geometry) -> str:
        return " ".join(f"M{points(np.asarray(ring.coords))}Z"
                        for polygon in shapely.get_parts(geom)
                        for ring in [polygon.exterior, *polygon.interiors])

    def label(point: shapely.Point, name: str, kind: str) -> str:
        (x, y), = xy(np.array([[point.x, point.y]]))
        return f'<text x="{x:.1f}" y="{y:.1f}" class="{kind}">{escape(name)}</text>'

    places = hot.get("places", [])
    roads = hot.get("roads", [])
    shapes = "".join(f'<path d="{path(g)}" class="place"/>' for g, _n in places)
    streets = "".join(f'<polyline points="{points(np.asarray(part.coords))}" class="road" '
                      f'stroke-width="{ROAD_WIDTH.get(kind, 1)}"/>'
                      for g, kind, _n in roads for part in shapely.get_parts(g)
                      if part.geom_type == "LineString" and not part.is_empty)
    cells = "".join(f'<path d="{path(g)}" fill="{HOT_FILL.get(c, "#fdae61")}" '
                    f'stroke="none"><title>{TEXT[lang]["cases"].format(n=n)}</title></path>'
                    for g, c, n in hot["hot"])
    if places and len(places) <= MAX_PLACES:
        names = "".join(label(shapely.point_on_surface(g), n, "place-name")
                        for g, n in places)
    else:
        names = "".join(label(g.interpolate(0.5, normalized=True), n, "road-name")
                        for g, n in _longest_streets(roads))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
            f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" class="map">'
            f'{shapes}{streets}{cells}'
            f'<path d="{path(outline)}" fill="none" stroke="#333" stroke-width="1.5"/>'
            f"{names}</svg>")


def _longest_streets(roads: list) -> list[tuple[shapely.Geometry, str]]:
    """The longest piece of each named street, the :data:`MAX_ROAD_NAMES` longest streets."""
    longest: dict[str, shapely.Geometry] = {}
    for geom, _kind, name in roads:
        for part in shapely.get_parts(geom):
            if name and part.geom_type == "LineString" and \
                    part.length > getattr(longest.get(name), "length", 0.0):
                longest[name] = part
    ranked = sorted(longest.items(), key=lambda item: -item[1].length)[:MAX_ROAD_NAMES]
    return [(g, n) for n, g in ranked]


def _count(figures: dict, month: str, category: str | None, lang: str) -> str:
    """A month's count (of ``category``, or all), or "no data"."""
    if not figures["recorded"][month]:
        return TEXT[lang]["no_data"]
    counts = figures[month]
    return str(sum(counts.values()) if category is None else counts[category])


def _row(figures: dict, category: str | None, lang: str) -> str:
    """One row of the table: a category (None: the total) in the three months."""
    counts = {k: (sum(figures[k].values()) if category is None else figures[k][category])
              for k in ("now", "before", "last_year")}
    rec = figures["recorded"]
    cells = [_count(figures, "now", category, lang),
             _count(figures, "before", category, lang),
             change(counts["now"], counts["before"], (rec["now"], rec["before"]), lang),
             _count(figures, "last_year", category, lang),
             change(counts["now"], counts["last_year"], (rec["now"], rec["last_year"]), lang)]
    label = TEXT[lang]["total"] if category is None else CATEGORY[lang][category]
    css = ' class="total"' if category is None else ""
    return f"<tr{css}><td>{label}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _summary(figures: dict, lang: str) -> str:
    """The sentence over the table, or what has no data."""
    t, rec = TEXT[lang], figures["recorded"]
    if not rec["now"]:
        return f'<p class="no-data">{t["no_data_now"]}</p>'
    total = {k: sum(figures[k].values()) for k in ("now", "before", "last_year")}
    changes = "".join(
        t["vs_" + k].format(change=change(total["now"], total[k], (True, True), lang))
        for k in ("before", "last_year") if rec[k])
    text = t["summary"].format(now=total["now"], disputes=figures["disputes"],
                               changes=changes)
    missing = "".join(f'<p class="no-data">{t["no_data_" + k]}</p>'
                      for k in ("before", "last_year") if not rec[k])
    return f"<p>{text}</p>{missing}"


def _title(f: dict, lang: str) -> str:
    year, month = f["month"].split("-")
    name = dt.date(int(year), int(month), 1).strftime("%B")
    return TEXT[lang]["title"].format(name=escape(f["name"]), year=year,
                                      month=int(month), month_name=name)


def _copy(f: dict, label: str, lang: str) -> str:
    t = TEXT[lang]
    rows = "".join(_row(f, c, lang) for c in CATEGORY[lang]) + _row(f, None, lang)
    hot = f["hot"]
    legend = t["hot"].format(cells=len(hot["hot"]), cell=f"{hot['cell']:.0f}",
                             incidents=hot["incidents"]) + t["legend"] if hot["cell"] \
        else t["few"]
    code = t["code"].format(level=LEVEL[lang].get(f["level"], ""), code=escape(f["code"]))
    people = t["people"].format(households=f["households"], population=f["population"])
    return f"""
<section class="copy">
  <div class="label">{label}</div>
  <h1>{_title(f, lang)}</h1>
  <p class="meta">{code} · {people}</p>
  {_summary(f, lang)}
  <table>
    <thead><tr><th>{t['category']}</th><th>{t['now']}</th><th>{t['before']}</th>
      <th>{t['mom']}</th><th>{t['last_year']}</th><th>{t['yoy']}</th></tr></thead>
    <tbody>{rows}</tbody></table>
  <p class="legend">{t['dash']}</p>
  <h2>{t['hot_title']}</h2>
  {_svg(hot, lang)}
  <p class="legend">{legend}</p>
  <p class="sign">{t['sign'].format(date=f['generated'])}</p>
</section>"""


def render_notice(figures: dict, lang: str = "zh") -> str:
    """The notice as one HTML page in ``lang``: the posting copy, then the archive copy.

    On the web the page links to itself in the other language (not printed).
    """
    t = TEXT[lang]
    other = "en" if lang == "zh" else "zh"
    switch = (f'<a class="switch" href="?jurisdiction={escape(figures["code"])}&amp;'
              f'month={escape(figures["month"])}&amp;lang={other}">{t["switch"]}</a>')
    return f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<title>{_title(figures, lang)}</title>
<style>
body {{ font: 14px "WenQuanYi Micro Hei", "Noto Sans CJK SC", sans-serif; margin: 0; }}
.copy {{ padding: 18mm 16mm; page-break-after: always; }}
.copy:last-child {{ page-break-after: auto; }}
.label {{ float: right; border: 1px solid #333; padding: 2px 8px; }}
h1 {{ font-size: 20px; text-align: center; }} h2 {{ font-size: 16px; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #666; padding: 3px 6px; text-align: center; }}
tr.total td {{ font-weight: bold; }} .meta, .legend {{ color: #444; }}
.no-data {{ font-weight: bold; border-left: 4px solid #b15928; padding-left: 8px; }}
.sign {{ text-align: right; margin-top: 12mm; }} svg.map {{ display: block; margin: auto; }}
svg.map .place {{ fill: none; stroke: #999; stroke-width: 0.8; stroke-dasharray: 3 2; }}
svg.map .road {{ fill: none; stroke: #b0b0b0; stroke-linecap: round; }}
svg.map text {{ font-size: 10px; fill: #333; text-anchor: middle; paint-order: stroke;
  stroke: #fff; stroke-width: 2.5px; }}
svg.map .road-name {{ fill: #666; font-size: 9px; }}
.switch {{ position: absolute; top: 4mm; left: 16mm; }}
@media print {{ .switch {{ display: none; }} }}
</style></head><body>
{switch}
{_copy(figures, t["post"], lang)}
{_copy(figures, t["archive"], lang)}
</body></html>"""


def write_pdf(html: str, out: Path) -> None:
    """Print ``html`` to ``out`` as PDF with the system Chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise BadRequest("PDF needs Chromium (apt-get install chromium); write .html instead")
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "notice.html"
        page.write_text(html, encoding="utf-8")
        done = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
             f"--user-data-dir={tmp}/profile", f"--print-to-pdf={out.resolve()}",
             page.as_uri()], capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not out.exists():
        raise BadRequest(f"Chromium could not print the PDF: {done.stderr.strip()[-300:]}")


CHOOSER_TEXT = {
    "zh": {"title": "治安状况告知", "place": "辖区", "month": "月份", "open": "生成告知",
           "intro": "选择辖区和月份，生成可张贴、可打印的治安状况告知。", "map": "总图",
           "switch": "English"},
    "en": {"title": "Security notice", "place": "Jurisdiction", "month": "Month",
           "open": "Make the notice", "map": "Overview map", "switch": "中文",
           "intro": "Choose a jurisdiction and a month for a notice to post and print."},
}


def render_chooser(choices: list[tuple[str, str]], month: str, lang: str) -> str:
    """The page choosing a notice in ``lang``: one of ``choices`` (code, name), a month.

    The month (``YYYY-MM``) is preset to ``month``.
    """
    t = CHOOSER_TEXT[lang]
    other = "en" if lang == "zh" else "zh"
    options = "".join(f'<option value="{escape(code)}">{escape(name)} · {escape(code)}</option>'
                      for code, name in choices)
    return f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t['title']}</title>
<style>body{{font:15px sans-serif;max-width:32em;margin:8vh auto;padding:0 1em}}
label{{display:block;margin:.8em 0}} select,input{{font:inherit;padding:.3em;width:100%}}
nav{{display:flex;justify-content:space-between}}</style></head><body>
<nav><a href="/map?lang={lang}">{t['map']}</a>
<a href="/reports/notice?lang={other}">{t['switch']}</a></nav>
<h1>{t['title']}</h1><p>{t['intro']}</p>
<form method="get" action="/reports/notice"><input type="hidden" name="lang" value="{lang}">
<label>{t['place']} <select name="jurisdiction" required>{options}</select></label>
<label>{t['month']} <input type="month" name="month" value="{escape(month)}" required></label>
<button type="submit">{t['open']}</button></form></body></html>"""


def _chooser(lang: str) -> Response:
    """The chooser for the user: their jurisdictions, the latest month with incidents."""
    user = current_user()
    with db_engine(current_app).connect() as conn:
        choices = jurisdiction_choices(conn, user)
        first = user.jurisdiction or (choices[0][0] if choices else None)
        month = (latest_incident_month(conn, user, first) if first else None) \
            or (dt.date.today().replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    if user.jurisdiction and user.jurisdiction not in {c for c, _ in choices}:
        choices.insert(0, (user.jurisdiction, user.jurisdiction))
    return Response(render_chooser(choices, month, lang), mimetype="text/html")


@bp.get("/reports/notice")
def notice():
    """The monthly notice of ``jurisdiction`` for ``month`` (YYYY-MM), printable HTML.

    In ``?lang=zh`` (default) or ``en``. A browser asking without both gets a page
    choosing them; a script gets 400.
    """
    only_params({"jurisdiction", "month", "lang"})
    code, month = request.args.get("jurisdiction"), request.args.get("month")
    lang = request.args.get("lang", "zh")
    if lang not in LANGS:
        raise BadRequest(f"lang must be one of {', '.join(LANGS)}, got {lang!r}")
    if not code or not month:
        if wants_page():
            return _chooser(lang)
        raise BadRequest("jurisdiction and month (YYYY-MM) are required")
    with db_engine(current_app).connect() as conn:
        figures = notice_figures(conn, current_user(), code, month)
    return Response(render_notice(figures, lang), mimetype="text/html")
