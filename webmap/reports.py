"""The monthly security notice as a printable page: ``/reports/notice`` and ``safegrid report``.

Two copies on separate pages, one to post (公示联) and one to archive (存档联): the
counts by category against the month before and the same month last year, the
disputes, and a map of the Gi* hot cells of the last three months. PDF is printed by
the system Chromium (headless), which the setup installs.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import shapely
from flask import Blueprint, Response, current_app, request
from markupsafe import escape

from layers.report import notice_figures

from .app import db_engine
from .auth import current_user
from .params import BadRequest, only_params

bp = Blueprint("reports", __name__)

CATEGORY_ZH = {"criminal": "刑事案件", "public_order": "治安案件", "dispute": "矛盾纠纷",
               "fire": "火灾事故", "fraud": "电信网络诈骗", "traffic": "交通事故", "other": "其他"}
LEVEL_ZH = {"province": "省", "city": "市", "district": "区县", "street": "街道",
            "community": "社区", "village": "村"}
HOT_FILL = {"hot_99": "#d7191c", "hot_95": "#f46d43", "hot_90": "#fdae61"}
SIZE = 360  # pixels of the map's longer side


def _change(now: int, then: int) -> str:
    if then == 0:
        return "—" if now == 0 else "新增"
    pct = 100 * (now - then) / then
    return f"{'+' if pct > 0 else ''}{pct:.0f}%"


def _svg(hot: dict) -> str:
    outline = hot["outline"]
    x0, y0, x1, y1 = outline.bounds
    scale = SIZE / max(x1 - x0, y1 - y0, 1.0)
    width, height = (x1 - x0) * scale, (y1 - y0) * scale

    def path(geom: shapely.Geometry) -> str:
        parts = []
        for polygon in shapely.get_parts(geom):
            for ring in [polygon.exterior, *polygon.interiors]:
                xy = np.asarray(ring.coords)
                pts = " ".join(f"{(x - x0) * scale:.1f},{(y1 - y) * scale:.1f}" for x, y in xy)
                parts.append(f"M{pts}Z")
        return " ".join(parts)

    cells = "".join(f'<path d="{path(g)}" fill="{HOT_FILL.get(c, "#fdae61")}" '
                    f'stroke="none"><title>{n} 起</title></path>' for g, c, n in hot["hot"])
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
            f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" class="map">'
            f'{cells}<path d="{path(outline)}" fill="none" stroke="#333" stroke-width="1.5"/>'
            "</svg>")


def _copy(f: dict, label: str) -> str:
    rows = "".join(
        f"<tr><td>{CATEGORY_ZH[c]}</td><td>{f['now'][c]}</td><td>{f['before'][c]}</td>"
        f"<td>{_change(f['now'][c], f['before'][c])}</td><td>{f['last_year'][c]}</td>"
        f"<td>{_change(f['now'][c], f['last_year'][c])}</td></tr>" for c in CATEGORY_ZH)
    total = {k: sum(f[k].values()) for k in ("now", "before", "last_year")}
    hot = f["hot"]
    legend = (f"近三个月热点格网 {len(hot['hot'])} 个（格网边长 {hot['cell']:.0f} 米，"
              f"警情 {hot['incidents']} 起）" if hot["cell"] else "近三个月警情过少，未作热点分析")
    year, month = f["month"].split("-")
    return f"""
<section class="copy">
  <div class="label">{label}</div>
  <h1>{escape(f['name'])}{year}年{int(month)}月治安状况告知</h1>
  <p class="meta">{LEVEL_ZH.get(f['level'], '')}代码 {escape(f['code'])} ·
     住户 {f['households']} 户 · 人口 {f['population']} 人</p>
  <p>本月共接报警情 <b>{total['now']}</b> 起，较上月 {_change(total['now'], total['before'])}，
     较去年同月 {_change(total['now'], total['last_year'])}；受理矛盾纠纷
     <b>{f['disputes']}</b> 起。</p>
  <table>
    <thead><tr><th>类别</th><th>本月</th><th>上月</th><th>环比</th><th>去年同月</th>
      <th>同比</th></tr></thead>
    <tbody>{rows}<tr class="total"><td>合计</td><td>{total['now']}</td>
      <td>{total['before']}</td><td>{_change(total['now'], total['before'])}</td>
      <td>{total['last_year']}</td><td>{_change(total['now'], total['last_year'])}</td></tr>
    </tbody></table>
  <h2>治安热点分布</h2>
  {_svg(hot)}
  <p class="legend">{legend}。红色越深，聚集越显著（Getis-Ord Gi*，FDR 校正）。</p>
  <p class="sign">平安建设工作办公室 · {f['generated']:%Y年%m月%d日}</p>
</section>"""


def render_notice(figures: dict) -> str:
    """The notice as one HTML page: the posting copy, then the archive copy."""
    return f"""<!doctype html><html lang="zh"><head><meta charset="utf-8">
<title>{escape(figures['name'])}{figures['month']} 治安状况告知</title>
<style>
body {{ font: 14px "WenQuanYi Micro Hei", "Noto Sans CJK SC", sans-serif; margin: 0; }}
.copy {{ padding: 18mm 16mm; page-break-after: always; }}
.copy:last-child {{ page-break-after: auto; }}
.label {{ float: right; border: 1px solid #333; padding: 2px 8px; }}
h1 {{ font-size: 20px; text-align: center; }} h2 {{ font-size: 16px; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #666; padding: 3px 6px; text-align: center; }}
tr.total td {{ font-weight: bold; }} .meta, .legend {{ color: #444; }}
.sign {{ text-align: right; margin-top: 12mm; }} svg.map {{ display: block; margin: auto; }}
</style></head><body>
{_copy(figures, "公示联")}
{_copy(figures, "存档联")}
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


@bp.get("/reports/notice")
def notice():
    """The monthly notice of ``jurisdiction`` for ``month`` (YYYY-MM), printable HTML."""
    only_params({"jurisdiction", "month"})
    code, month = request.args.get("jurisdiction"), request.args.get("month")
    if not code or not month:
        raise BadRequest("jurisdiction and month (YYYY-MM) are required")
    with db_engine(current_app).connect() as conn:
        figures = notice_figures(conn, current_user(), code, month)
    return Response(render_notice(figures), mimetype="text/html")
