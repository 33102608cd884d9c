"""The words of the analysis, coverage and border maps in headless Chromium (1440×900),
used by mouse as a new user would: every thematic layer has a legend that says what its
colours mean, and popups speak Chinese with rounded numbers and units, not raw codes,
English field names or six decimals. Screenshots go to test-output/."""

import re

import pytest

from .browser import OUTPUT, logged_in, wait_for

pytestmark = [pytest.mark.db, pytest.mark.browser]

ANALYSIS = "window.safegridAnalysisState"
COVERAGE = "window.safegridCoverageState"
BORDER = "window.safegridBorderState"
# Latin words a Chinese page may show: method names, units, statistics' letters.
ALLOWED = {"Gi", "KDE", "m", "km", "Z", "p", "FDR"}
RAW = re.compile(r"hot_\d\d|cold_\d\d|_spot|not_significant|\d\.\d{4,}")


def _english(page, selector: str) -> list[str]:
    """Latin words in the visible text of ``selector``, codes (.sg-code, digits) aside."""
    texts = page.evaluate("""selector => {
      const out = [];
      for (const box of document.querySelectorAll(selector)) {
        const walk = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
        while (walk.nextNode()) {
          const node = walk.currentNode;
          if (!node.parentElement.closest('.sg-code')) out.push(node.textContent);
        }
      }
      return out;
    }""", selector)
    words = re.findall(r"[A-Za-z][A-Za-z0-9_\-]*", " ".join(texts))
    return [w for w in words if w not in ALLOWED and not re.search(r"\d", w)]


def _words_only(page, selector: str) -> str:
    """The text of ``selector``, checked: no English words, no raw codes or long numbers."""
    text = " ".join(page.locator(selector).all_text_contents())
    assert text.strip(), selector
    assert _english(page, selector) == [], text
    assert not RAW.search(text), text
    return text


def _click(page, state: str, group: str, pick: str = "true") -> dict:
    """Click with the mouse on a drawn feature of ``state.group`` (``pick`` true of its
    properties ``p``) that is not hidden under the panel; its properties, popup open."""
    found = wait_for(page, f"""() => {{
      const map = {state}.map;
      const pick = p => {pick};
      const box = map.getContainer().getBoundingClientRect();
      const layers = [];
      const visit = l => l.eachLayer ? l.eachLayer(visit) : layers.push(l);
      {state}.{group}.eachLayer(visit);
      for (const l of layers) {{
        if (!l.feature || !l._path || !pick(l.feature.properties)) continue;
        const at = l.getLatLng ? l.getLatLng() : l.getCenter();
        const p = map.latLngToContainerPoint(at);
        const x = p.x + box.left, y = p.y + box.top;
        if (document.elementFromPoint(x, y) === l._path) return [x, y, l.feature.properties];
      }}
      return null;
    }}""", timeout=15)  # the map may still be moving to fit what it drew
    x, y, props = found
    page.mouse.click(x, y)
    page.wait_for_selector(".leaflet-popup-content")
    return props


def _shot(page, name: str):
    page.wait_for_timeout(400)  # the popup fades in
    page.screenshot(path=str(OUTPUT / name))


def _close(page):
    page.click(".leaflet-popup-close-button")
    page.wait_for_selector(".leaflet-popup-content", state="detached")


def _run(page, method: str):
    page.select_option("#sg-method", method)
    page.evaluate("document.getElementById('sg-message').className = ''")
    page.click("#sg-run")
    page.wait_for_selector("#sg-message.ok, #sg-message.error", timeout=60_000)
    assert "ok" in page.get_attribute("#sg-message", "class"), \
        (page.text_content("#sg-message"), page.errors)


@pytest.fixture
def analysis(server):
    with logged_in(server, "police", "/map/analysis?jurisdiction=430100") as page:
        page.set_viewport_size({"width": 1440, "height": 900})
        yield page


def test_analysis_legends_and_popups_speak_chinese(analysis):
    page = analysis
    options = page.locator("#sg-category option").all_text_contents()
    assert options[:3] == ["全部", "刑事案件", "治安案件"]
    page.fill("#sg-cell", "400")
    page.fill("#sg-from", "2025-11-01")
    page.fill("#sg-to", "2026-10-31")

    _run(page, "gi")
    legend = _words_only(page, "#sg-legend")
    assert "热点 (99% 置信)" in legend and "冷点 (90% 置信)" in legend and "不显著" in legend
    p = _click(page, ANALYSIS, "cells", "p.class !== 'not_significant'")
    popup = _words_only(page, ".leaflet-popup-content")
    assert f"Z 得分{p['z']:.2f}" in popup
    assert ("p 值< 0.001" if p["p"] < 0.001 else f"p 值{p['p']:.3f}") in popup
    assert f"警情数{p['count']} 起" in popup and "置信" in popup
    _shot(page, "words-gi.png")
    _close(page)

    _run(page, "kde")
    legend = _words_only(page, "#sg-legend")
    assert "核密度 (起/平方公里)" in legend and legend.count("起/平方公里") == 6
    p = _click(page, ANALYSIS, "cells")
    assert f"密度{round(p['density'])} 起/平方公里" in _words_only(
        page, ".leaflet-popup-content")
    _shot(page, "words-kde.png")
    _close(page)

    _run(page, "emerging")
    shown = page.evaluate(f"{ANALYSIS}.state.last.summary.categories")
    legend = page.locator("#sg-legend div").all_text_contents()
    assert legend[0] == "时空热点趋势类别" and len(legend) == 1 + len(shown)
    _words_only(page, "#sg-legend")
    _click(page, ANALYSIS, "cells")
    assert "趋势类别" in _words_only(page, ".leaflet-popup-content")
    _close(page)

    _run(page, "safety")
    legend = page.locator("#sg-legend div").all_text_contents()
    assert legend[0] == "平安指数等级" and "1 = 最安全" in legend[1] and len(legend) == 6
    p = _click(page, ANALYSIS, "cells")
    popup = _words_only(page, ".leaflet-popup-content")
    assert f"网格{p['name']} {p['code']}" in popup
    assert f"平安指数等级{p['level']} / 5 (1 = 最安全)" in popup
    assert page.text_content(".leaflet-popup-content .sg-code") == p["code"]
    _shot(page, "words-safety.png")
    assert page.errors == []


def test_the_english_page_says_the_same_in_english(server):
    with logged_in(server, "police", "/map/analysis?jurisdiction=430100") as page:
        page.click("text=English")
        page.wait_for_url("**lang=en**")
        assert "Criminal cases" in page.locator("#sg-category option").all_text_contents()
        page.fill("#sg-cell", "400")
        _run(page, "gi")
        assert "hot spot (99% confidence)" in page.text_content("#sg-legend")
        _click(page, ANALYSIS, "cells")
        assert "z score" in page.text_content(".leaflet-popup-content")
        page.goto(f"{server}/map/coverage?jurisdiction=430102&lang=en")
        page.wait_for_selector("#sg-message.ok")
        assert "Camera status" in page.text_content("#sg-legend")
        _click(page, COVERAGE, "views", "p.status === 'offline'")
        assert "statusoffline" in page.text_content(".leaflet-popup-content")


def test_coverage_says_camera_states_and_gains_in_words(server):
    with logged_in(server, "police", "/map/coverage?jurisdiction=430102") as page:
        page.set_viewport_size({"width": 1440, "height": 900})
        page.wait_for_selector("#sg-message.ok")
        legend = _words_only(page, "#sg-legend")
        for words in ("摄像机状态", "在线", "离线", "规划", "对象覆盖率", "< 20%"):
            assert words in legend
        p = _click(page, COVERAGE, "views", "p.status === 'offline'")
        popup = _words_only(page, ".leaflet-popup-content")
        assert f"设备编码{p['code']}" in popup and "状态离线" in popup
        assert f"朝向(度){round(p['bearing'])}" in popup
        _close(page)
        p = _click(page, COVERAGE, "targets")
        popup = _words_only(page, ".leaflet-popup-content")
        assert "覆盖率" in popup and "平方米" in popup
        _close(page)

        page.click("#sg-gaps")
        page.wait_for_selector("#sg-legend :text('盲区风险 (预计警情)')")
        p = _click(page, COVERAGE, "targets")
        popup = _words_only(page, ".leaflet-popup-content")
        assert f"风险{p['risk']:.2f} 起(预计)" in popup
        risk = page.evaluate(f"{COVERAGE}.state.last.summary.risk")
        assert f"风险 {risk:.1f} 起(预计)" in page.text_content("#sg-summary")
        _close(page)

        page.fill("#sg-k", "2")
        page.click("#sg-siting")
        page.wait_for_selector("#sg-proposals li")
        gains = page.evaluate(f"{COVERAGE}.state.proposed.map(f => f.properties.gain)")
        items = page.locator("#sg-proposals li").all_text_contents()
        assert f"新增风险覆盖 {gains[0]:.1f} 起(预计)" in items[0]
        assert "预计新增看到的警情数" in page.text_content("#sg-proposals")
        assert "建议点位视域" in _words_only(page, "#sg-legend")
        _words_only(page, "#sg-proposals")
        _shot(page, "words-coverage.png")
        assert page.errors == []


def test_border_legend_names_both_cities(server):
    with logged_in(server, "partner", "/map/border?a=430100&b=430300&width=1500") as page:
        page.set_viewport_size({"width": 1440, "height": 900})
        page.wait_for_selector("#sg-message.ok")
        names = page.evaluate(f"{BORDER}.state.border.zone.features"
                              ".map(f => [f.properties.side, f.properties.name])")
        legend = _words_only(page, "#sg-legend")
        for _code, name in names:
            assert f"{name}一侧" in legend
        for words in ("边界线", "有监控或卡点", "无人看守", "热点格网"):
            assert words in legend
        p = _click(page, BORDER, "marks", "'covered' in p")
        popup = _words_only(page, ".leaflet-popup-content")
        assert ("看守情况有监控或卡点" if p["covered"] else "看守情况无人看守") in popup
        assert dict(names)[p["side"]] in popup
        _close(page)
        p = _click(page, BORDER, "zone", "'count' in p")
        popup = _words_only(page, ".leaflet-popup-content")
        assert f"Z 得分{p['z']:.2f}" in popup and "置信" in popup
        _shot(page, "words-border.png")
        assert page.errors == []
