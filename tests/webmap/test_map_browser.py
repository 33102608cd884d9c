"""The map in a real headless Chromium (Debian's), driven by Playwright."""

import pytest
from playwright.sync_api import sync_playwright

from .browser import ARGS, CHROMIUM, wait_for

pytestmark = [pytest.mark.db, pytest.mark.browser]



# Features drawn on the Leaflet map (folium names its map variable map_<id>).
FEATURES_DRAWN = """() => {
  const key = Object.keys(window).find(k => k.startsWith('map_') && window[k].eachLayer);
  let n = 0;
  window[key].eachLayer(layer => { if (layer.feature) n += 1; });
  return n;
}"""


def _drawn(page) -> int:
    return page.evaluate(FEATURES_DRAWN)


@pytest.fixture(scope="module")
def page(server):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 800})
        # Basemap tiles are the network's business: the map must work without them.
        pg.route("**/tile.openstreetmap.org/**", lambda route: route.abort())
        pg.goto(f"{server}/map", wait_until="load")  # sent to the login form
        pg.fill("input[name=name]", "admin")
        pg.fill("input[name=password]", "admin-demo-2026")
        pg.click("button[type=submit]")
        pg.wait_for_url("**/map**")
        yield pg
        browser.close()


def test_map_draws_every_layer_with_a_layer_control(server, page):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server}/map", wait_until="load")
    wait_for(page, f"({FEATURES_DRAWN})() > 50")
    labels = page.eval_on_selector_all(
        ".leaflet-control-layers-overlays label", "els => els.map(e => e.textContent.trim())")
    for title in ("网格", "视频监控", "检查站卡点", "道路", "市界", "警情热力图"):
        assert any(label.startswith(title) for label in labels), (title, labels)
    assert sum(label.startswith("重点区域") for label in labels) == 13
    assert page.locator("canvas.leaflet-heatmap-layer").count() == 1
    assert errors == []


def test_layer_control_hides_and_shows_a_layer(server, page):
    page.goto(f"{server}/map", wait_until="load")
    wait_for(page, f"({FEATURES_DRAWN})() > 50")
    before = _drawn(page)
    roads = page.locator(".leaflet-control-layers-overlays label", has_text="道路")
    shown = int(roads.text_content().split("(")[1].rstrip(")"))
    roads.locator("input").uncheck()
    assert _drawn(page) == before - shown
    roads.locator("input").check()
    assert _drawn(page) == before


def test_language_switch_and_city_select(server, page):
    page.goto(f"{server}/map", wait_until="load")
    page.click("#sg-header a")
    page.wait_for_load_state("load")
    assert "lang=en" in page.url
    assert page.locator(".leaflet-control-layers-overlays", has_text="Cameras").count() == 1
    page.select_option("#sg-header select", "430200")
    page.wait_for_url("**city=430200**")
    assert page.locator("meta[name=safegrid-city]").get_attribute("content") == "430200"
