"""Markup and script in the text a page shows never run, in headless Chromium.

A database of its own holds the small demo with every name the pages show (grids and
their codes, jurisdictions, key areas, cameras, checkpoints, roads) ending in PAYLOAD.
Each page is visited as a role that sees it, its features' tooltips and popups opened
with the mouse: the payload is shown as text and nothing of it runs. Script put straight
into the page, as a slip in escaping would, is refused by its Content-Security-Policy.
Screenshots go to test-output/.
"""

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from layers.db import engine
from layers.store import refresh_derived

from ..conftest import Server, demo_database
from .browser import OUTPUT, logged_in, wait_for

pytestmark = [pytest.mark.db, pytest.mark.browser]

PAYLOAD = ('</script><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
           '"><svg onload=window.__pwned=3>')
COMMUNITY = "430102001001"
FOLIUM_MAP = "window[Object.keys(window).find(k => k.startsWith('map_') && window[k].eachLayer)]"

# A screen point (whole pixels) on the first feature layer of `layers` whose properties
# pass `wanted`, where the pointer reaches that feature and nothing drawn over it; null
# if none. Lines are tried at the middle of their segments, areas inside their bounds.
POINT_ON = """([map, layers, wanted]) => {
  const rect = map.getContainer().getBoundingClientRect();
  const found = [];
  const candidates = l => {
    if (l instanceof L.Polyline && !(l instanceof L.Polygon)) {
      const line = L.LineUtil.isFlat(l.getLatLngs()) ? l.getLatLngs() : l.getLatLngs().flat();
      return line.slice(1).map((b, i) => map.latLngToContainerPoint(
        L.latLng((line[i].lat + b.lat) / 2, (line[i].lng + b.lng) / 2)));
    }
    const b = l.getBounds ? l.getBounds() : L.latLngBounds([l.getLatLng(), l.getLatLng()]);
    const a = map.latLngToContainerPoint(b.getNorthWest());
    const z = map.latLngToContainerPoint(b.getSouthEast());
    const out = [];
    for (let i = 1; i < 16; i++) {
      for (let j = 1; j < 16; j++) {
        out.push(L.point(a.x + (z.x - a.x) * i / 16, a.y + (z.y - a.y) * j / 16));
      }
    }
    return out;
  };
  const visit = l => {
    if (found.length) return;
    if (l.eachLayer && !l.feature) { l.eachLayer(visit); return; }
    if (!l.feature || !wanted(l.feature.properties)) return;
    for (const c of candidates(l)) {
      const p = c.round();
      const x = p.x + rect.left, y = p.y + rect.top;
      const hit = document.elementFromPoint(x, y);
      const mine = l._path ? hit === l._path  // SVG: the feature's own element
        : hit && hit.tagName === "CANVAS" && l._containsPoint(map.containerPointToLayerPoint(p));
      if (mine) {
        found.push(x, y);
        return;
      }
    }
  };
  visit(layers);
  return found.length ? found : null;
}"""

INJECT = """(payload) => {
  document.body.insertAdjacentHTML("beforeend", payload);
  const script = document.createElement("script");
  script.textContent = "window.__pwned = 4";
  document.body.append(script);
}"""


def _make_hostile(url: str) -> None:
    """End every shown name (and grid and camera code) in PAYLOAD."""
    with engine(url).begin() as conn:
        p = {"p": PAYLOAD}
        conn.execute(text("UPDATE jurisdictions SET name = name || :p"), p)
        conn.execute(text("UPDATE household_units SET grid_code = grid_code || :p"), p)
        conn.execute(text("UPDATE grids SET name = name || :p, code = code || :p"), p)
        conn.execute(text("UPDATE key_areas SET name = name || :p"), p)
        conn.execute(text("UPDATE checkpoints SET name = name || :p"), p)
        conn.execute(text("UPDATE roads SET name = name || :p"), p)
        conn.execute(text("UPDATE cameras SET code = code || :p"), p)
        refresh_derived(conn, "grids")


@pytest.fixture(scope="module")
def hostile(db_url, tmp_path_factory):
    """A server on the demo whose names all carry PAYLOAD; its URL."""
    url = demo_database(f"{make_url(db_url).database}_hostile")
    _make_hostile(url)
    server = Server(url, tmp_path_factory.mktemp("hostile") / "serve.log")
    yield server.url
    server.stop()


def _nothing_ran(page) -> None:
    page.wait_for_timeout(300)  # a broken image's onerror fires after its request
    assert page.evaluate("window.__pwned") is None
    assert page.errors == []  # no violation either: the payload never became markup


def _shown(page, selector: str) -> str:
    """The text of ``selector`` once it shows the payload as text."""
    page.wait_for_selector(selector)
    wait_for(page, f"document.querySelector({selector!r}).textContent"
                   f".includes({PAYLOAD!r})", timeout=10)
    return page.text_content(selector)


def _point(page, map_js: str, layers_js: str, keep: str = "true") -> tuple[float, float]:
    """Where to point at a feature, once the map has stopped moving."""
    found, before = None, ()
    for _ in range(20):
        found = page.evaluate(f"({POINT_ON})([{map_js}, {layers_js}, p => {keep}])")
        if found and found == before:
            return found[0], found[1]
        before = found
        page.wait_for_timeout(200)
    raise AssertionError(f"no feature of {layers_js} with {keep} to point at: {found}")


def _hover_tooltip(page, map_js: str, layers_js: str, keep: str = "true",
                   shot: str = "") -> str:
    """Point at a feature; the text of the tooltip it opens (screenshot ``shot``)."""
    x, y = _point(page, map_js, layers_js, keep)
    page.mouse.move(x - 2, y - 2)
    page.wait_for_timeout(100)  # two moves in one frame would reach the map as one
    page.mouse.move(x, y)
    shown = _shown(page, ".leaflet-tooltip")
    if shot:
        page.screenshot(path=str(OUTPUT / shot))
    page.hover(".leaflet-control-zoom-in")  # off the features: the tooltip closes
    page.wait_for_selector(".leaflet-tooltip", state="detached")
    return shown


def _click_popup(page, map_js: str, layers_js: str, keep: str = "true",
                 shot: str = "") -> str:
    """Click a feature; the text of the popup it opens (screenshot ``shot``)."""
    page.mouse.click(*_point(page, map_js, layers_js, keep))
    shown = _shown(page, ".leaflet-popup-content")
    if shot:
        page.screenshot(path=str(OUTPUT / shot))
    page.keyboard.press("Escape")
    page.wait_for_selector(".leaflet-popup", state="detached")
    return shown


def _csp_refuses_injected_script(page) -> None:
    """Script written straight into the page does not run: the policy refuses it."""
    page.evaluate(INJECT, PAYLOAD)
    page.wait_for_timeout(500)
    assert page.evaluate("window.__pwned") is None
    refused = "\n".join(page.errors)
    assert "Executing inline script violates" in refused, refused
    assert "Executing inline event handler violates" in refused, refused


def _only_overlay(page, title: str) -> None:
    """Tick only the overlay ``title`` in the layer control."""
    labels = page.locator(".leaflet-control-layers-overlays label")
    for i in range(labels.count()):
        label = labels.nth(i)
        label.locator("input").set_checked(label.text_content().strip().startswith(title))


MAP_OVERLAYS = {"社区边界": "名称", "市界": "名称", "道路": "道路名称", "网格": "网格名称",
                "重点区域 · 学校": "名称", "视频监控": "设备编码", "检查站卡点": "名称"}


def test_the_map_shows_hostile_names_as_text(hostile):
    with logged_in(hostile, "admin", "/map") as page:
        _nothing_ran(page)
        assert PAYLOAD in page.locator("#sg-header select option:checked").text_content()
        for overlay, field in MAP_OVERLAYS.items():
            _only_overlay(page, overlay)
            shot = "csp-map-tooltip.png" if overlay == "检查站卡点" else ""
            shown = _hover_tooltip(page, FOLIUM_MAP, FOLIUM_MAP, shot=shot)
            assert field in shown, (overlay, shown)
            _nothing_ran(page)
        _csp_refuses_injected_script(page)


def test_the_planner_shows_hostile_grid_names_as_text(hostile):
    state = "window.safegridPlannerState"
    with logged_in(hostile, "planner", f"/map/plan?jurisdiction={COMMUNITY}") as page:
        wait_for(page, f"{state} && {state}.byId.size > 0")
        assert PAYLOAD in page.locator("select[name=jurisdiction] option:checked").text_content()
        assert PAYLOAD in _shown(page, ".leaflet-tooltip.sg-label")  # the grids' labels
        layers = f"L.featureGroup(Array.from({state}.byId.values()))"
        page.mouse.click(*_point(page, f"{state}.map", layers))
        assert PAYLOAD in _shown(page, "#sg-attributes td[data-field=name]")
        assert PAYLOAD in _shown(page, "#sg-attributes td[data-field=code]")
        page.screenshot(path=str(OUTPUT / "csp-planner.png"))
        _nothing_ran(page)
        other = page.locator("select[name=jurisdiction] option:not(:checked)").first \
            .get_attribute("value")
        page.select_option("select[name=jurisdiction]", other)  # sends the form
        page.wait_for_url(f"**jurisdiction={other}**")
        _nothing_ran(page)
        _csp_refuses_injected_script(page)


def test_the_analysis_shows_hostile_grid_names_as_text(hostile):
    state = "window.safegridAnalysisState"
    with logged_in(hostile, "police", "/map/analysis?jurisdiction=430102") as page:
        page.select_option("#sg-method", "safety")
        page.click("#sg-run")
        page.wait_for_selector("#sg-message.ok")
        shown = _click_popup(page, f"{state}.map", f"{state}.cells", shot="csp-analysis.png")
        assert PAYLOAD in shown
        _nothing_ran(page)
        _csp_refuses_injected_script(page)


def test_the_coverage_map_shows_hostile_names_as_text(hostile):
    state = "window.safegridCoverageState"
    with logged_in(hostile, "police", "/map/coverage?jurisdiction=430102") as page:
        page.wait_for_selector("#sg-message.ok")
        target = _click_popup(page, f"{state}.map", f"{state}.targets")
        assert PAYLOAD in target
        camera = _click_popup(page, f"{state}.map", f"{state}.views", "'fov' in p",
                              shot="csp-coverage.png")
        assert PAYLOAD in camera
        _nothing_ran(page)
        _csp_refuses_injected_script(page)


def test_the_border_page_shows_hostile_names_as_text(hostile):
    state = "window.safegridBorderState"
    with logged_in(hostile, "partner", "/map/border?a=430100&b=430300&width=1500") as page:
        page.wait_for_selector("#sg-message.ok")
        assert PAYLOAD in page.locator("#sg-a option:checked").text_content()
        key_area = _click_popup(page, f"{state}.map", f"{state}.marks", "'category' in p",
                                shot="csp-border.png")
        assert PAYLOAD in key_area
        crossing = _click_popup(page, f"{state}.map", f"{state}.marks",
                                "p.covered && 'covered_by' in p")
        assert PAYLOAD in crossing
        side = _click_popup(page, f"{state}.map", f"{state}.zone", "'side' in p")
        assert PAYLOAD in side
        _nothing_ran(page)
        _csp_refuses_injected_script(page)


def test_the_notice_shows_a_hostile_name_as_text(hostile):
    path = f"/reports/notice?jurisdiction={COMMUNITY}&month=2026-09"
    with logged_in(hostile, "police", path) as page:
        assert PAYLOAD in _shown(page, "h1")
        assert PAYLOAD in page.title()
        page.screenshot(path=str(OUTPUT / "csp-notice.png"))
        _nothing_ran(page)
        _csp_refuses_injected_script(page)
