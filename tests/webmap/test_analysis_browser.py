"""The analyst's hot-spot map in headless Chromium: run Gi* and emerging hot spots from
the controls, see the cells and the legend, reopen a saved run. Screenshots go to
test-output/."""

import datetime as dt
import re

import pytest
from sqlalchemy import text

from .browser import OUTPUT, logged_in, wait_for

pytestmark = [pytest.mark.db, pytest.mark.browser]

DRAWN = "window.safegridAnalysisState.cells.getLayers()[0].getLayers().length"
DRAWN_CELLS = "window.safegridAnalysisState.cells.getLayers().length"


@pytest.fixture
def analyst(server):
    with logged_in(server, "police", "/map/analysis?jurisdiction=430100") as page:
        yield page


def test_gi_then_emerging_then_a_saved_run(analyst):
    page = analyst
    page.fill("#sg-cell", "400")
    page.fill("#sg-from", "2025-11-01")
    page.fill("#sg-to", "2026-10-31")
    page.click("#sg-run")
    page.wait_for_selector("#sg-message.ok")
    drawn = page.evaluate(DRAWN)
    shown = page.evaluate("window.safegridAnalysisState.state.last.features.length")
    assert drawn == shown > 0
    legend = page.locator("#sg-legend div").all_text_contents()
    assert legend[0] == "Gi* 热点分析 (置信度)"
    assert len(legend) == 8 and "热点 (99% 置信)" in legend[1]
    # a click on the busiest cell shows its counts by category and its monthly trend
    x, y = page.evaluate("""() => {
      const s = window.safegridAnalysisState;
      let best = null;
      s.cells.eachLayer(g => g.eachLayer(l => {
        if (!best || l.feature.properties.count > best.feature.properties.count) best = l;
      }));
      const p = s.map.latLngToContainerPoint(best.getBounds().getCenter());
      const r = s.map.getContainer().getBoundingClientRect();
      return [p.x + r.left, p.y + r.top];
    }""")
    page.mouse.click(x, y)
    page.wait_for_selector(".leaflet-popup-content svg.sg-trend")
    assert page.locator(".leaflet-popup-content th", has_text="·").count() >= 2
    page.screenshot(path=str(OUTPUT / "analysis-gi.png"))
    page.keyboard.press("Escape")

    page.select_option("#sg-method", "emerging")
    page.click("#sg-run")
    wait_for(page, "window.safegridAnalysisState.state.last.steps !== undefined")
    page.wait_for_selector("#sg-message.ok")
    assert page.evaluate(DRAWN) > 0
    # the time slider recolours the cells by each step's counts
    assert page.locator("#sg-time").is_visible()
    page.locator("#sg-slider").focus()
    page.keyboard.press("Home")  # the first step, by keyboard
    edges = page.evaluate("window.safegridAnalysisState.state.last.step_edges")
    label = page.text_content("#sg-step-label")
    # the step's first and last day (its end is the next step's start, exclusive)
    assert label.startswith(edges[0]["from"][:10] + " 至 ")
    assert label.split(" 至 ")[1][:10] < edges[0]["to"][:10]
    page.keyboard.press("End")  # the last step: a whole month, ending with the period
    last = page.text_content("#sg-step-label")
    assert last.startswith(edges[-1]["from"][:10]) and "不完整" not in last
    page.screenshot(path=str(OUTPUT / "analysis-emerging.png"))

    # the first (Gi*) run is among the saved ones and reopens
    page.wait_for_selector("#sg-runs option:has-text(' 时空热点趋势 ')", state="attached")
    gi_run = page.locator("#sg-runs option", has_text=re.compile(r"^#\d+ 热点分析 Gi\* ")) \
        .first \
        .get_attribute("value")
    page.select_option("#sg-runs", gi_run)
    wait_for(page, "window.safegridAnalysisState.state.last.steps === undefined")
    assert page.locator("#sg-legend div").count() == 8
    assert not page.locator("#sg-time").is_visible()

    # compared with itself: every hot cell is hot in both
    page.select_option("#sg-compare", gi_run)
    wait_for(page, "document.getElementById('sg-message').textContent"
                           ".startsWith('对比')")
    hot = page.evaluate("window.safegridAnalysisState.state.last.features"
                        ".filter(f => f.properties.class.startsWith('hot')).length")
    assert f"对比：{hot} / {hot}" in page.text_content("#sg-message")
    assert f"{hot} 个两次都是热点" in page.text_content("#sg-message")

    # the safety index of the grids, coloured by level
    page.select_option("#sg-method", "safety")
    page.click("#sg-run")
    wait_for(page, "window.safegridAnalysisState.state.last.parameters.weights")
    assert page.evaluate(DRAWN) == page.evaluate(
        "window.safegridAnalysisState.state.last.features.length") > 0
    levels = page.locator("#sg-legend div").all_text_contents()
    assert levels[:2] == ["平安指数等级", " 1 = 最安全"] and len(levels) == 6
    page.screenshot(path=str(OUTPUT / "analysis-safety.png"))
    assert page.errors == []


def test_a_refused_run_is_shown(analyst):
    page = analyst
    page.fill("#sg-cell", "0.5")
    page.click("#sg-run")
    page.wait_for_selector("#sg-message.error")
    assert "400" in page.text_content("#sg-message")
    # the Chinese page names the parameter in Chinese, the server's reason as a code
    assert page.text_content("#sg-message").startswith("未完成 (400)：格网(米)填写有误")
    assert "1 metre" in page.text_content("#sg-message .sg-code")
    methods = page.locator("#sg-method option").all_text_contents()
    assert methods[-4:] == ["近重复", "时段分布", "风险地形", "场所风险分级"]


def _latest_month(db, code):
    """The last local month with an incident in ``code``, straight from the database."""
    with db.connect() as conn:
        return conn.execute(text(
            "SELECT max(to_char(i.occurred_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')) "
            "FROM incidents i, jurisdictions j WHERE j.code = :c "
            "AND ST_Intersects(i.geom, j.geom)"), {"c": code}).scalar()


def test_opens_on_the_outline_with_a_period_that_holds_data_and_the_notice(server, db):
    with db.connect() as conn:
        box = conn.execute(text(
            "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom), name "
            "FROM jurisdictions WHERE code = '430100'")).one()
        communities = conn.execute(text(
            "SELECT count(*) FROM jurisdictions j WHERE j.code LIKE '4301%' "
            "AND j.level IN ('community', 'village')")).scalar()
    month = _latest_month(db, "430100")
    year, number = int(month[:4]), int(month[5:])
    first = dt.date(year - (number < 12), (number % 12) + 1, 1)  # 11 months before
    last = dt.date(year + number // 12, number % 12 + 1, 1) - dt.timedelta(days=1)
    with logged_in(server, "police", "/map/analysis?jurisdiction=430100") as page:
        # before any run: the outline (bold) and the communities (thin) in their own pane
        page.wait_for_selector(".leaflet-sg-outline-pane path", state="attached")
        assert page.evaluate(DRAWN_CELLS) == 0
        bold = page.locator(".leaflet-sg-outline-pane path[stroke-width='3']").count()
        thin = page.locator(".leaflet-sg-outline-pane path[stroke-width='0.8']").count()
        assert bold == 1 and thin == communities > 0
        fitted = page.evaluate(f"""() => {{
          const b = window.safegridAnalysisState.map.getBounds();
          return b.contains(L.latLngBounds([{box[1]}, {box[0]}], [{box[3]}, {box[2]}]));
        }}""")
        assert fitted
        # the period: the 12 whole months ending with the last one that holds data
        assert page.input_value("#sg-to") == str(last)
        assert page.input_value("#sg-from") == str(first)
        page.screenshot(path=str(OUTPUT / "analysis-opened.png"))

        page.fill("#sg-cell", "400")
        page.click("#sg-run")
        page.wait_for_selector("#sg-message.ok")
        assert page.evaluate(DRAWN) > 0
        assert page.locator(".leaflet-sg-outline-pane path").count() == 1 + communities
        page.screenshot(path=str(OUTPUT / "analysis-outlined-run.png"))
        assert page.errors == []

        assert page.text_content("#sg-notice-link") == "本月治安告知"
        with page.expect_navigation() as shown:
            page.click("#sg-notice-link")
        assert shown.value.status == 200
        assert f"jurisdiction=430100&month={month}" in page.url
        assert f"{box[4]}{year}年{number}月治安状况告知" in page.content()
        page.screenshot(path=str(OUTPUT / "analysis-notice.png"))


def test_a_jurisdiction_without_incidents_says_so_instead_of_running(server, db):
    empty = "430103001"  # a street of the demo with no incident in it
    assert _latest_month(db, empty) is None
    with logged_in(server, "police", "/map/analysis?jurisdiction=430100&lang=en") as page:
        page.wait_for_selector("#sg-notice-link")
        with page.expect_navigation():
            page.select_option("#sg-jurisdiction", empty)  # reopens the page on it
        assert f"jurisdiction={empty}" in page.url and "lang=en" in page.url
        page.wait_for_selector(".leaflet-sg-outline-pane path", state="attached")
        said = "No incidents are recorded in this jurisdiction yet: nothing to analyse"
        assert page.text_content("#sg-message") == said
        assert page.text_content("#sg-no-data") == said
        assert page.locator("#sg-notice-link").count() == 0
        asked = []  # a run would ask the API at once, in the click's handler
        page.on("request", lambda r: asked.append(r.url)
                if "/api/hotspots" in r.url and "/runs" not in r.url else None)
        page.click("#sg-run")
        page.wait_for_timeout(500)
        assert asked == [] and page.text_content("#sg-message") == said
        assert page.evaluate(DRAWN_CELLS) == 0
        page.screenshot(path=str(OUTPUT / "analysis-no-data.png"))
        assert page.errors == []


def test_saved_runs_list_only_what_the_map_can_draw(server, api):
    """An evaluation (PAI of one period against the next, asked of the API) has no cells:
    it is not offered among the saved runs, whose labels are all in the page's words."""
    r = api("police", "/api/hotspots/evaluate?jurisdiction=430100&method=gi&cell=800"
                      "&train_from=2026-05-01&train_to=2026-07-31"
                      "&test_from=2026-08-01&test_to=2026-10-31")
    assert r.status_code == 200, r.text[:300]
    runs = api("police", "/api/hotspots/runs?jurisdiction=430100").json()["runs"]
    assert "evaluate" in {run["kind"] for run in runs}
    with logged_in(server, "police", "/map/analysis?jurisdiction=430100") as page:
        wait_for(page, "document.querySelectorAll('#sg-runs option').length > 1")
        labels = [o.text_content() for o in page.query_selector_all("#sg-runs option")][1:]
        ids = [o.get_attribute("value") for o in page.query_selector_all("#sg-runs option")][1:]
    drawable = [run for run in runs if run["kind"] != "evaluate"]
    assert ids == [str(run["id"]) for run in drawable]
    assert not any(re.search(r"\b(evaluate|gi|kde|emerging|near_repeat|terrain)\b", label)
                   for label in labels), labels


def test_a_saved_emerging_run_is_kept_as_a_watch(server, api):
    """Police load a saved emerging run and keep it ("关注此分析"): the watch exists; a
    planner, who may not keep watches, is offered no button."""
    r = api("police", "/api/hotspots/emerging?jurisdiction=430100&cell=800&step=month"
                      "&from=2026-05-01&to=2026-10-31")
    assert r.status_code == 200, r.text[:300]
    run = r.json()["run"]
    with logged_in(server, "police", "/map/analysis?jurisdiction=430100") as page:
        page.wait_for_selector(f"#sg-runs option[value='{run}']", state="attached")
        assert not page.locator("#sg-watch").is_visible()
        page.select_option("#sg-runs", str(run))
        wait_for(page, "window.safegridAnalysisState.state.last.steps !== undefined")
        watch = page.locator("#sg-watch")
        watch.wait_for(state="visible")
        assert watch.text_content().strip() == "关注此分析"
        watch.focus()
        page.keyboard.press("Enter")
        page.wait_for_selector("#sg-watch:disabled")
        assert watch.text_content().strip() == "已关注"
        said = page.text_content("#sg-message")
        watches = api("police", "/api/warnings/watches").json()["watches"]
        mine = [w for w in watches if w["run"] == run]
        assert len(mine) == 1 and mine[0]["kind"] == "emerging"
        assert said.startswith(f"已关注（关注 #{mine[0]['id']}）")
        page.screenshot(path=str(OUTPUT / "analysis-watch.png"))
        # a Gi* run cannot be watched: no button
        page.select_option("#sg-method", "gi")
        page.fill("#sg-cell", "800")
        page.click("#sg-run")
        wait_for(page, "window.safegridAnalysisState.state.last.steps === undefined")
        page.wait_for_selector("#sg-message.ok")
        assert not watch.is_visible()
        assert page.errors == []
    with logged_in(server, "planner", "/map/analysis?jurisdiction=430100") as page:
        page.wait_for_selector(f"#sg-runs option[value='{run}']", state="attached")
        page.select_option("#sg-runs", str(run))
        wait_for(page, "window.safegridAnalysisState.state.last.steps !== undefined")
        page.wait_for_timeout(300)
        assert not page.locator("#sg-watch").is_visible()
        assert page.errors == []


def _click_place(page, feature: dict) -> None:
    """A mouse click on a place of the risk-levels answer (its point on the surface)."""
    p = feature["properties"]
    x, y = page.evaluate(f"""() => {{
      const m = window.safegridAnalysisState.map;
      const at = m.latLngToContainerPoint([{p['lat']}, {p['lon']}]);
      const r = m.getContainer().getBoundingClientRect();
      return [at.x + r.left, at.y + r.top];
    }}""")
    page.mouse.click(x, y)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_risk_levels_of_places_with_a_legend_and_reasons(server, api, lang):
    """Key areas and grids coloured by level with the four levels in the legend (named
    as the API names them); a click on a key area shows its level, score and reasons; the
    run is kept as a watch."""
    from layers.warnings import WATCH_KINDS

    with logged_in(server, "police", f"/map/analysis?jurisdiction=430100&lang={lang}") as page:
        page.select_option("#sg-method", "places")
        page.click("#sg-run")
        wait_for(page, "window.safegridAnalysisState.state.last &&"
                       " window.safegridAnalysisState.state.last.levels", timeout=120)
        page.wait_for_selector("#sg-message.ok")
        body = page.evaluate("window.safegridAnalysisState.state.last")
        levels = body["levels"]
        assert [lv["level"] for lv in levels] == [1, 2, 3, 4]
        legend = page.locator("#sg-legend div").all_text_contents()
        assert len(legend) == 5
        name = "name_zh" if lang == "zh" else "name_en"
        assert legend[0] == ("场所风险等级" if lang == "zh" else "Risk level of places")
        for row, lv in zip(legend[1:], levels, strict=True):
            assert row.strip().startswith(f"{lv[name]} ({lv['level']})")
        if lang == "zh":
            assert [row.strip().split(" ")[0] for row in legend[1:]] == \
                ["低", "一般", "较大", "重大"]
        colours = page.locator("#sg-legend .sg-swatch").evaluate_all(
            "l => l.map(e => getComputedStyle(e).backgroundColor)")
        assert len(set(colours)) == 4
        # every place drawn, in its level's colour
        drawn = page.evaluate("""() => {
          const out = [];
          window.safegridAnalysisState.cells.eachLayer(g => g.eachLayer(l =>
            out.push([l.feature.properties.risk_level, l.options.fillColor])));
          return out;
        }""")
        assert len(drawn) == len(body["key_areas"]["features"]) + len(body["grids"]["features"])
        by_level = {}
        for level, colour in drawn:
            by_level.setdefault(level, set()).add(colour)
        assert all(len(c) == 1 for c in by_level.values())
        assert len({next(iter(c)) for c in by_level.values()}) == len(by_level)
        # the key area of the highest level: its popup
        place = max(body["key_areas"]["features"], key=lambda f: f["properties"]["score"])
        _click_place(page, place)
        page.wait_for_selector(".leaflet-popup-content .sg-reasons")
        popup = page.text_content(".leaflet-popup-content")
        p = place["properties"]
        level = next(lv for lv in levels if lv["level"] == p["risk_level"])
        assert f"{level[name]} ({p['risk_level']})" in popup
        assert f"{p['score']:.1f}" in popup
        reasons = page.locator(".leaflet-popup-content .sg-reasons li").all_text_contents()
        text = "text_zh" if lang == "zh" else "text_en"
        assert len(reasons) == len(p["reasons"]) > 0
        assert all(shown.startswith(r[text]) for r, shown in zip(p["reasons"], reasons,
                                                                 strict=True))
        page.wait_for_timeout(300)  # the popup's fade
        page.screenshot(path=str(OUTPUT / f"analysis-risk-places-{lang}.png"))
        page.keyboard.press("Escape")
        page.wait_for_selector(".leaflet-popup-content", state="detached")
        # saved as a run, which a watch can repeat
        run = body["run_id"]
        page.wait_for_selector(f"#sg-runs option[value='{run}']", state="attached")
        watch = page.locator("#sg-watch")
        assert "risk_places" in WATCH_KINDS.values()
        assert watch.is_visible()
        if lang == "zh":  # kept: a rise of a place's level is warned
            watch.click()
            page.wait_for_selector("#sg-watch:disabled")
            kept = [w for w in api("police", "/api/warnings/watches").json()["watches"]
                    if w["run"] == run]
            assert len(kept) == 1 and kept[0]["kind"] == "risk_level"
            assert page.text_content("#sg-message").startswith(f"已关注（关注 #{kept[0]['id']}）")
        assert page.errors == []
