"""Page budget: every HTML page, for every demo role that may open it, in headless Chromium.

For each page and role it records the HTML's size, the bytes transferred (the page and
everything it fetched until the network is idle, as the browser's performance entries
count them: compressed, cached files free) and the time from the start of navigation
to the first features of the page's data drawn on its map. It fails above 300 KB of
HTML or when a map page never draws its features; the time to first features is
measured and written to the table against its 1 s goal, not asserted (the machine is
shared: speed is judged from the recorded figures, as benchmarks are).

"First features" are seen from inside the page: an init script catches every Leaflet
map as it is made and, on each animation frame, looks for a path (polygon, line,
circle) or marker of the page's data drawn on one (the basemap's vector tiles and the
grid labels do not count), or, on a page whose map is a drawing of its own (the
notice), an SVG shape of that map.

It runs on the small demo (the suite's shared server) and on the city demo (~100k
households, 200k incidents, 5k cameras: a database of its own, copied from the one the
test run loads once, with a server of its own). The table goes to
``test-output/page-budget-{small,city}.md`` (and ``.json``).

The first role opens the pages whose data the server keeps (the coverage page's camera
views, the border's answer) once before they are measured, so that they are warm, as
on a server that has been up a while; that cold opening is recorded ("cold ms") but not
held to the budget (the overview is warm too: the first role lands on it after logging
in). The browser's cache is emptied before each opening: the bytes are those of a
first visit (a page opened again revalidates its data by ETag and costs far less). A
page over the budget is opened once more and the better of the two counts: the machine
is shared, and a regression is slow both times.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest
from sqlalchemy import text

from ..conftest import demo_password
from .browser import OUTPUT, chromium

pytestmark = [pytest.mark.db, pytest.mark.browser, pytest.mark.slow]

HTML_BUDGET = 300 * 1024  # bytes
FIRST_FEATURES_BUDGET = 1000.0  # ms from navigation start
ROLES = ("admin", "planner", "police", "partner", "viewer")
# Pages whose data the server computes once and keeps (the cameras' views, the border's
# answer): the first role opens them once before they are measured.
COLD = {"/map/coverage", "/map/border"}

# Seen from the page: the time (performance.now(), ms since navigation start) the first
# feature of its data is drawn, in window.__sgFirstFeatures.
FIRST_FEATURES = """(() => {
  window.__sgFirstFeatures = null;
  const maps = [];
  let leaflet;
  Object.defineProperty(window, "L", {configurable: true, get: () => leaflet, set: value => {
    leaflet = value;
    try { value.Map.addInitHook(function () { maps.push(this); }); } catch (e) {}
  }});
  const isLabel = layer => layer.options && layer.options.icon &&
    /sg-grid-label/.test(layer.options.icon.options.className || "");
  const drawn = layer => {
    const L = leaflet;
    if (layer instanceof L.Path) {
      if (!layer._map || !layer._renderer) return false;
      return layer._parts ? layer._parts.length > 0 : !!layer._point;
    }
    return layer instanceof L.Marker && !!layer._icon && !isLabel(layer);
  };
  const look = () => {
    if (window.__sgFirstFeatures !== null) return;
    let found = !!document.querySelector(
      "svg.map path, svg.map polygon, svg.map polyline, svg.map circle");
    for (const map of maps) {
      if (found) break;
      map.eachLayer(layer => { found = found || drawn(layer); });
    }
    if (found) window.__sgFirstFeatures = performance.now();
    else requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
})();"""

TRANSFERRED = """() => {
  const entries = performance.getEntriesByType("navigation")
    .concat(performance.getEntriesByType("resource"));
  return entries.reduce((sum, e) => sum + (e.transferSize || 0), 0);
}"""


def _pages(db_engine) -> list[tuple[str, str, bool]]:
    """(name, path, has a map) of every HTML page of webmap/ a logged-in user opens.

    (``/`` sends a browser to ``/map``; ``/login`` is measured as anyone first sees it.)
    """
    with db_engine.connect() as conn:
        city, month = conn.execute(text("""
            SELECT c.code, to_char(max(i.occurred_at) AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')
            FROM jurisdictions c JOIN incidents i ON ST_Intersects(i.geom, c.geom)
            WHERE c.code = '430100' GROUP BY c.code""")).one()
    return [("/map", "/map", True), ("/map/plan", "/map/plan", True),
            ("/map/analysis", "/map/analysis", True),
            ("/map/coverage", "/map/coverage", True), ("/map/border", "/map/border", True),
            ("/reports/notice", f"/reports/notice?jurisdiction={city}&month={month}", True)]


def _measure(page, server: str, path: str, has_map: bool) -> dict:
    """One opening of ``path`` with an empty browser cache: status, HTML bytes, bytes
    transferred, ms to first features."""
    page.context.new_cdp_session(page).send("Network.clearBrowserCache")
    response = page.goto(f"{server}{path}", wait_until="load")
    status = response.status if response else None
    if status != 200 or not page.url.split("?")[0].endswith(path.split("?")[0]):
        return {"status": status, "refused": True}
    html = len(response.body())
    first = None
    if has_map:
        deadline = time.monotonic() + 30
        while first is None and time.monotonic() < deadline:
            first = page.evaluate("window.__sgFirstFeatures")
            if first is None:
                page.wait_for_timeout(50)
    try:
        page.wait_for_load_state("networkidle", timeout=30_000)
    except Exception:  # noqa: BLE001 - a page still fetching: count what it has so far
        pass
    return {"status": status, "refused": False, "html": html,
            "transferred": page.evaluate(TRANSFERRED),
            "first_ms": None if first is None else round(first)}


def _log_in(browser, server: str, role: str, landing: str):
    """A page of a new browser context logged in as ``role`` through the /login form,
    on ``landing``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(FIRST_FEATURES)
    page = context.new_page()
    page.goto(f"{server}/login?next={quote(landing)}")
    page.fill("input[name=name]", role)
    page.fill("input[name=password]", demo_password(role))
    page.click("button[type=submit]")
    page.wait_for_url(f"**{landing}")
    return page


def _run(server: str, pages: list[tuple[str, str, bool]]) -> list[dict]:
    rows = []
    browser = chromium()
    for n, role in enumerate(ROLES):
        # the first role lands on the overview, which the server then has opened once;
        # the others on a page of no weight, so that each measure starts from quiet
        page = _log_in(browser, server, role, "/map" if n == 0 else "/healthz")
        for name, path, has_map in pages:
            cold = _measure(page, server, path, has_map) if n == 0 and path in COLD else None
            row = {"page": name, "role": role, **_measure(page, server, path, has_map),
                   "cold_first_ms": cold and cold.get("first_ms"), "tries": 1}
            if _over(row, has_map):  # once more: the better of two openings counts
                again = {**row, **_measure(page, server, path, has_map)}
                tried = [row.get("first_ms"), again.get("first_ms")]
                row = {**min((row, again), key=_slowness), "tries": 2, "tried_ms": tried}
            rows.append(row)
        page.context.close()
    # not logged in: the login page as everyone first sees it
    context = browser.new_context()
    page = context.new_page()
    rows.append({"page": "/login", "role": "(anonymous)",
                 **_measure(page, server, "/login", False), "cold_first_ms": None, "tries": 1})
    context.close()
    return rows


def _slowness(row: dict) -> float:
    return float("inf") if row.get("first_ms") is None else row["first_ms"]


def _over(row: dict, has_map: bool) -> list[str]:
    if row["refused"]:
        return []
    out = []
    if row["html"] > HTML_BUDGET:
        out.append(f"{row['page']} as {row['role']}: {row['html'] / 1024:.0f} KB of HTML")
    if has_map and row["first_ms"] is None:
        out.append(f"{row['page']} as {row['role']}: its features were never drawn")
    return out


def _table(rows: list[dict], title: str) -> str:
    lines = [f"# Page budget: {title}", "",
             f"Budget: HTML <= {HTML_BUDGET // 1024} KB, first features <= "
             f"{FIRST_FEATURES_BUDGET:.0f} ms after navigation start (warm server, "
             "empty browser cache).", "",
             "| page | role | HTML KB | transferred KB | first features ms | cold ms |"
             " tries |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if r["refused"]:
            lines.append(f"| {r['page']} | {r['role']} | refused ({r['status']}) | | | | |")
            continue
        first = "—" if r["first_ms"] is None else r["first_ms"]
        cold = "" if r.get("cold_first_ms") is None else r["cold_first_ms"]
        lines.append(f"| {r['page']} | {r['role']} | {r['html'] / 1024:.1f} | "
                     f"{r['transferred'] / 1024:.1f} | {first} | {cold} | {r['tries']} |")
    return "\n".join(lines) + "\n"


def _check(server: str, db_engine, demo_name: str) -> None:
    pages = _pages(db_engine)
    rows = _run(server, pages)
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / f"page-budget-{demo_name}.md").write_text(
        _table(rows, f"{demo_name} demo"), encoding="utf-8")
    (OUTPUT / f"page-budget-{demo_name}.json").write_text(json.dumps(rows, indent=1),
                                                         encoding="utf-8")
    maps = {name: has_map for name, _, has_map in pages} | {"/login": False}
    opened = {r["page"] for r in rows if not r["refused"]}
    assert opened == set(maps), f"pages no role could open: {set(maps) - opened}"
    over = [problem for r in rows for problem in _over(r, maps.get(r["page"], False))]
    assert over == [], "over the page budget:\n" + "\n".join(over)


def test_small_demo_pages_are_within_budget(server, db):
    _check(server, db, "small")


def test_city_demo_pages_are_within_budget(city_server):
    url, city_engine = city_server
    _check(url, city_engine, "city")
