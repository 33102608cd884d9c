"""Near repeat, the data clock, the hours and weekdays filters and the risk terrain on the
analyst's map, used by mouse and keyboard in headless Chromium: what the page shows is
checked against the API's answer fetched here on its own, in Chinese and in English.
Screenshots go to test-output/toolkit-*.png."""

import re
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

import pytest

from .browser import OUTPUT, logged_in, wait_for

pytestmark = [pytest.mark.db, pytest.mark.browser]

STATE = "window.safegridAnalysisState"
AREA = "430102"  # a district of the police user's city
NEAR = {"from": "2026-08-01", "to": "2026-08-31"}  # a month: few pairs, a quick run
TERRAIN = {"from": "2026-05-01", "to": "2026-07-31", "cell": "400"}
# Latin words a Chinese page may show: method and statistic names, units.
ALLOWED = {"Gi", "KDE", "PAI", "Knox", "Z", "p", "m", "km"}
CJK = re.compile(r"[\u3400-\u9fff\uff08\uff09\u3001\u3002\uff0c\uff1a\uff1b]")
WEEKDAYS = {"zh": ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
            "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]}


def _fixed(value: float, digits: int) -> str:
    """``value`` as JavaScript's toFixed writes it (halves of the exact binary value up)."""
    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def _visible_texts(page, selector: str) -> list[str]:
    """Visible text, titles and aria-labels under ``selector``, codes (.sg-code) aside."""
    return page.evaluate("""selector => {
      const out = [];
      for (const box of document.querySelectorAll(selector)) {
        const walk = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
        while (walk.nextNode()) {
          const n = walk.currentNode;
          if (n.textContent.trim() && !n.parentElement.closest('.sg-code'))
            out.push(n.textContent.trim());
        }
        for (const el of box.querySelectorAll('[title],[aria-label]'))
          for (const a of ['title', 'aria-label'])
            if (el.getAttribute(a)) out.push(el.getAttribute(a));
      }
      return out;
    }""", selector)


def _speaks(page, lang: str, *selectors: str) -> None:
    """No word of the other language in ``selectors`` (Chinese: Latin words outside
    ALLOWED; English: Chinese characters or punctuation)."""
    for selector in selectors:
        texts = _visible_texts(page, selector)
        assert texts, selector
        for text in texts:
            if lang == "zh":
                words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9_]*", text)
                         if w not in ALLOWED and not re.search(r"\d", w)]
                assert words == [], (selector, text)
            else:
                assert not CJK.search(text), (selector, text)


def _choose(page, method: str) -> None:
    """Pick ``method`` with the keyboard: focus the list, then the option."""
    page.focus("#sg-method")
    page.select_option("#sg-method", method)


def _enter(page, selector: str, text: str) -> None:
    """Type ``text`` into ``selector`` (cleared first) and press Enter, which runs."""
    page.evaluate("document.getElementById('sg-message').className = ''")
    page.fill(selector, "")
    page.type(selector, text)
    page.press(selector, "Enter")
    page.wait_for_selector("#sg-message.ok, #sg-message.error", timeout=90_000)


def _click_feature(page, group: str) -> dict:
    """Click with the mouse on a feature of ``STATE.group`` that nothing covers."""
    x, y, props = wait_for(page, f"""() => {{
      const s = {STATE}, box = s.map.getContainer().getBoundingClientRect();
      const layers = [];
      const visit = l => l.eachLayer ? l.eachLayer(visit) : layers.push(l);
      s.{group}.eachLayer(visit);
      for (const l of layers) {{
        if (!l._path) continue;
        const p = s.map.latLngToContainerPoint(l.getCenter());
        const x = p.x + box.left, y = p.y + box.top;
        if (document.elementFromPoint(x, y) === l._path)
          return [x, y, Object.assign({{id: l.feature.id}}, l.feature.properties)];
      }}
      return null;
    }}""", timeout=15)
    page.mouse.click(x, y)
    return props


def _period(page, period: dict) -> None:
    page.fill("#sg-from", period["from"])
    page.fill("#sg-to", period["to"])
    if "cell" in period:
        page.fill("#sg-cell", period["cell"])


def _knox_rows(page) -> list[list[str]]:
    return page.evaluate("""() => [...document.querySelectorAll('#sg-knox tr')].slice(1)
      .map(r => [...r.querySelectorAll('td')].map(c => [c.textContent, c.className]))""")


def _check_knox(page, knox: dict) -> None:
    """The table's cells: the API's ratio (2 decimals) and observed pairs, coloured by p."""
    shown = _knox_rows(page)
    assert len(shown) == len(knox["space_bands"])
    for i, row in enumerate(shown):
        assert len(row) == len(knox["time_bands"])
        for j, (text, colour) in enumerate(row):
            ratio, p = knox["knox_ratio"][i][j], knox["p_value"][i][j]
            if ratio is None:
                assert (text, colour) == ("—", "sg-k-none")
                continue
            assert text == f"{_fixed(ratio, 2)} ({knox['observed'][i][j]})"
            expected = ("sg-k-cool" if ratio <= 1 else "sg-k-p01" if p is not None and p <= 0.01
                        else "sg-k-p05" if p is not None and p <= 0.05 else "sg-k-warm")
            assert colour == expected, (i, j, ratio, p)


@pytest.fixture
def analyst(server):
    with logged_in(server, "police", f"/map/analysis?jurisdiction={AREA}") as page:
        yield page


def test_near_repeat_table_classes_and_zones_by_mouse_and_keyboard(analyst, api):
    page = analyst
    _choose(page, "near_repeat")
    assert page.locator("#sg-nr-row").is_visible()
    _period(page, NEAR)
    page.fill("#sg-time-bands", "7,14,21")
    _enter(page, "#sg-permutations", "99")
    assert "ok" in page.get_attribute("#sg-message", "class"), page.text_content("#sg-message")
    query = {"jurisdiction": AREA, **NEAR, "space_bands": "100,200,300",
             "time_bands": "7,14,21", "permutations": "99"}
    r = api("police", "/api/hotspots/near-repeat?" + urlencode(query))
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    knox = body["knox"]
    # the familiar layout: space bands down, time bands across, with their units
    heads = page.locator("#sg-knox tr").first.locator("th").all_text_contents()
    assert heads[1:] == ["0–7 天", "7–14 天", "14–21 天", "> 21 天"]
    rows = page.locator("#sg-knox tr th[scope=row]").all_text_contents()
    assert rows == ["0–100 米", "100–200 米", "200–300 米", "> 300 米"]
    _check_knox(page, knox)
    assert sum(map(sum, knox["observed"])) > 0
    colours = {c for row in _knox_rows(page) for _t, c in row}
    assert colours & {"sg-k-p01", "sg-k-p05"}, colours  # this month has near repeats
    legend = page.locator("#sg-knox-legend div").all_text_contents()
    assert [s.strip() for s in legend][:2] == ["比值 > 1，p ≤ 0.01 (显著偏多)",
                                               "比值 > 1，p ≤ 0.05"]
    counts = body["classification"]["counts"]
    for name, count in counts.items():
        assert page.text_content(f".sg-nr-class[data-class={name}] b") == str(count)
    # the zones: as many on the map as the API gives, each saying until when
    zones = body["features"]
    assert zones and page.evaluate(f"{STATE}.cells.getLayers()[0].getLayers().length") \
        == len(zones)
    assert page.locator("#sg-zones-withheld").count() == 0
    props = _click_feature(page, "cells")
    page.wait_for_selector(".leaflet-popup-content")
    popup = page.text_content(".leaflet-popup-content")
    until = props["until"][:16].replace("T", " ")
    assert until in popup and f"{props['incidents']} 起" in popup
    assert props["until"].endswith("+08:00")  # local time
    assert any(z["properties"]["until"] == props["until"] for z in zones)
    _speaks(page, "zh", "#sg-results", "#sg-legend", ".leaflet-popup-content", "#sg-message")
    page.wait_for_timeout(300)
    page.screenshot(path=str(OUTPUT / "toolkit-near-repeat.png"))
    # by keyboard: the zones are listed as buttons, Enter opens one on the map
    page.keyboard.press("Escape")  # the popup
    listed = page.locator("#sg-zone-list button").all_text_contents()
    assert len(listed) == len(zones)
    assert listed[0] == (f"风险持续至 {zones[0]['properties']['until'][:16].replace('T', ' ')}"
                         f" · {zones[0]['properties']['incidents']} 起")
    page.focus("#sg-zone-list button >> nth=0")
    page.keyboard.press("Enter")
    page.wait_for_timeout(500)
    assert zones[0]["properties"]["until"][:16].replace("T", " ") in page.text_content(
        ".leaflet-popup-content")
    # Esc closes the results panel, focus back on the run button
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    assert page.locator("#sg-results").is_hidden()
    assert page.evaluate("document.activeElement.id") == "sg-run"
    # the run was saved: reopened, it shows the same table and zones again
    saved = page.locator("#sg-runs option", has_text=re.compile(r"^#\d+ 近重复 ")).first
    saved.wait_for(state="attached")
    page.select_option("#sg-runs", saved.get_attribute("value"))
    page.wait_for_selector("#sg-knox")
    _check_knox(page, knox)
    assert page.evaluate(f"{STATE}.cells.getLayers()[0].getLayers().length") == len(zones)
    assert page.errors == []


def test_data_clock_with_hours_and_weekdays_then_a_clicked_grid(analyst, api):
    page = analyst
    _choose(page, "clock")
    _period(page, NEAR)
    page.fill("#sg-hours", "22-6")
    _enter(page, "#sg-weekdays", "1-5")
    assert "ok" in page.get_attribute("#sg-message", "class"), page.text_content("#sg-message")
    query = {"jurisdiction": AREA, **NEAR, "hours": "22-6", "weekdays": "1-5"}
    body = api("police", "/api/hotspots/clock?" + urlencode(query)).json()
    assert body["total"] > 0

    def shown(table: str) -> list[list[tuple[str, str]]]:
        return page.evaluate(f"""() => [...document.querySelectorAll('#{table} tr')].slice(1)
          .map(r => [...r.querySelectorAll('td:not(.sg-total)')]
          .map(c => [c.textContent, c.title]))""")

    def check(table: str, clock: dict) -> None:
        cells = shown(table)
        assert len(cells) == 7 and all(len(r) == 24 for r in cells)
        for d, row in enumerate(cells):
            for h, (text, title) in enumerate(row):
                count = clock["counts"][d][h]
                assert text == (str(count) if count else "")
                assert title == f"{WEEKDAYS['zh'][d]} {h} 时：{count} 起"
        days = page.locator(f"#{table} th[scope=row]").all_text_contents()
        assert days == WEEKDAYS["zh"]
        totals = page.locator(f"#{table} td.sg-total").all_text_contents()
        assert totals == [str(n) for n in clock["by_weekday"]]

    check("sg-clock", body)
    # the filters hold: no count outside 22:00-06:00 on Monday to Friday
    assert all(body["counts"][d][h] == 0 for d in range(7) for h in range(24)
               if d >= 5 or 6 <= h < 22)
    page.screenshot(path=str(OUTPUT / "toolkit-clock.png"))

    # a grid clicked on the map: its own clock under the jurisdiction's
    wait_for(page, f"{STATE}.grids.getLayers().length && "
                   f"{STATE}.grids.getLayers()[0].getLayers().length")
    page.evaluate("document.getElementById('sg-message').className = ''")
    grid = _click_feature(page, "grids")
    page.wait_for_selector("#sg-clock-grid-table")
    page.wait_for_selector("#sg-message.ok")
    assert page.input_value("#sg-clock-grid") == str(grid["id"])
    of_grid = api("police", "/api/hotspots/clock?" + urlencode({**query, "grid": grid["id"]}))
    assert of_grid.status_code == 200, of_grid.text[:300]
    check("sg-clock-grid-table", of_grid.json()["grid"])
    assert grid["code"] in page.text_content("#sg-clock-grid-title")
    _speaks(page, "zh", "#sg-results", "#sg-message")
    page.screenshot(path=str(OUTPUT / "toolkit-clock-grid.png"))
    assert page.errors == []


def test_a_bad_hours_filter_is_refused_with_the_servers_reason(analyst, api):
    page = analyst
    _period(page, NEAR)
    _enter(page, "#sg-hours", "24")
    said = page.text_content("#sg-message")
    reason = api("police", "/api/hotspots?" + urlencode(
        {"jurisdiction": AREA, **NEAR, "hours": "24", "method": "gi"})).json()["error"]
    assert "error" in page.get_attribute("#sg-message", "class")
    assert said.startswith("未完成 (400)：时段填写有误")
    assert page.text_content("#sg-message .sg-code") == reason and "hours '24'" in reason
    assert page.evaluate(f"{STATE}.cells.getLayers().length") == 0  # nothing drawn
    _speaks(page, "zh", "#sg-message")
    page.screenshot(path=str(OUTPUT / "toolkit-refused.png"))
    # weekdays are checked too, for the near-repeat run as well
    _choose(page, "near_repeat")
    page.fill("#sg-hours", "")
    _enter(page, "#sg-weekdays", "1-8")
    assert page.text_content("#sg-message").startswith("未完成 (400)：星期填写有误")
    assert "weekdays '1-8'" in page.text_content("#sg-message .sg-code")


def test_risk_terrain_cells_factors_and_validation(analyst, api):
    page = analyst
    _choose(page, "terrain")
    _period(page, TERRAIN)
    page.fill("#sg-hours", "22-6")  # the terrain of the night's incidents
    page.click("#sg-run")
    page.wait_for_selector("#sg-message.ok, #sg-message.error", timeout=120_000)
    assert "ok" in page.get_attribute("#sg-message", "class"), page.text_content("#sg-message")
    assert "不适用" not in page.text_content("#sg-message")
    r = api("police", "/api/risk/terrain?" + urlencode({"jurisdiction": AREA, **TERRAIN,
                                                          "hours": "22-6"}))
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    drawn = page.evaluate(f"{STATE}.cells.getLayers()[0].getLayers().length")
    assert drawn == len(body["features"]) > 0
    # the legend's breaks: the mean and one and two standard deviations above it
    rrs = [f["properties"]["rrs"] for f in body["features"]]
    mean = sum(rrs) / len(rrs)
    sd = (sum((v - mean) ** 2 for v in rrs) / len(rrs)) ** 0.5
    legend = [s.strip() for s in page.locator("#sg-legend div").all_text_contents()]
    assert legend[0] == "相对风险得分" and len(legend) == 5
    assert legend[1] == f"< {_fixed(mean, 2)} (低于均值)"
    assert legend[4] == f"≥ {_fixed(mean + 2 * sd, 2)} (高于 +2 标准差)"
    # the factor table, row by row as the API ranks them
    rows = page.evaluate("""() => [...document.querySelectorAll('#sg-factors tr')].slice(1)
      .map(r => [...r.querySelectorAll('td')].map(c => c.textContent))""")
    assert len(rows) == len(body["factors"]) > 0
    for row, f in zip(rows, body["factors"], strict=True):
        assert row[2] == f"{round(f['distance'])} 米"
        assert row[3] == _fixed(f["relative_risk"], 2)
        p = f["p_value"]
        assert row[4] == ("< 0.001" if p < 0.001 else _fixed(p, 3))
    # the check on the following period: PAI of the terrain, Gi* and KDE
    methods = body["validation"]["methods"]
    for method, by_share in methods.items():
        cells = page.locator(f"#sg-validation tr[data-method={method}] td").all_text_contents()
        assert cells == [_fixed(v["pai"], 2) for v in by_share.values()]
    assert page.locator("#sg-validation th[scope=row]").all_text_contents() == \
        ["风险地形", "热点分析 Gi*", "核密度 KDE"][:len(methods)]
    # a cell's popup by mouse
    props = _click_feature(page, "cells")
    page.wait_for_selector(".leaflet-popup-content")
    assert f"相对风险得分{_fixed(props['rrs'], 2)}" in page.text_content(
        ".leaflet-popup-content")
    _speaks(page, "zh", "#sg-results", "#sg-legend", ".leaflet-popup-content", "#sg-message")
    page.wait_for_timeout(300)
    page.screenshot(path=str(OUTPUT / "toolkit-terrain.png"))
    # the close button by keyboard
    page.focus("#sg-results-close")
    page.keyboard.press("Enter")
    assert page.locator("#sg-results").is_hidden()
    assert page.errors == []


def test_in_english_and_for_a_viewer_the_zones_are_withheld(server, api):
    path = f"/map/analysis?jurisdiction={AREA}&lang=en"
    with logged_in(server, "viewer", path) as page:
        _choose(page, "near_repeat")
        _period(page, NEAR)
        _enter(page, "#sg-permutations", "9")
        assert "ok" in page.get_attribute("#sg-message", "class"), \
            page.text_content("#sg-message")
        body = api("viewer", "/api/hotspots/near-repeat?" + urlencode(
            {"jurisdiction": AREA, **NEAR, "permutations": "9"})).json()
        assert body["zones_withheld"] is True and body["features"] == []
        assert page.text_content("#sg-zones-withheld").startswith("Your role sees aggregates")
        assert page.evaluate(f"{STATE}.cells.getLayers()[0].getLayers().length") == 0
        heads = page.locator("#sg-knox tr").first.locator("th").all_text_contents()
        assert heads[1] == "0–7 days"
        assert page.locator("#sg-knox th[scope=row]").first.text_content() == "0–100 m"
        _check_knox(page, body["knox"])
        _speaks(page, "en", "#sg-results", "#sg-legend", "#sg-message", "#sg-nr-row",
                "#sg-method")
        page.screenshot(path=str(OUTPUT / "toolkit-near-repeat-en.png"))

        _choose(page, "clock")
        _enter(page, "#sg-hours", "8-18")
        clock = api("viewer", "/api/hotspots/clock?" + urlencode(
            {"jurisdiction": AREA, **NEAR, "hours": "8-18"})).json()
        titles = page.evaluate("""() => [...document.querySelectorAll('#sg-clock tr')][1]
          .querySelectorAll('td')[9].title""")
        assert titles == f"Mon 9 h: {clock['counts'][0][9]} incidents"
        _speaks(page, "en", "#sg-results", "#sg-message")
        page.screenshot(path=str(OUTPUT / "toolkit-clock-en.png"))

        _enter(page, "#sg-hours", "6-6")
        said = page.text_content("#sg-message")
        assert said.startswith("Not done (400): hours '6-6'"), said
        assert page.errors == []
