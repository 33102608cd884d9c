"""The map in a real headless Chromium (Debian's), driven by Playwright."""

import re
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import text

from .browser import OUTPUT, logged_in, wait_for

pytestmark = [pytest.mark.db, pytest.mark.browser]



# Features drawn on the Leaflet map (folium names its map variable map_<id>).
FEATURES_DRAWN = """() => {
  const key = Object.keys(window).find(k => k.startsWith('map_') && window[k].eachLayer);
  let n = 0;
  window[key].eachLayer(layer => { if (layer.feature) n += 1; });
  return n;
}"""


# The overview fetches the features of the layers that are on for the view: all in.
LOADED = """(() => {
  const map = Object.values(window).find(v => v && v.sgOverview);
  return map && map.sgOverview.fetched > 0 && map.sgOverview.pending === 0;
})()"""


def _drawn(page) -> int:
    return page.evaluate(FEATURES_DRAWN)


def _loaded(page, at_least: int = 50) -> int:
    """Features drawn once every layer that is on has its features for the view."""
    wait_for(page, f"{LOADED} && ({FEATURES_DRAWN})() > {at_least}")
    return _drawn(page)


@pytest.fixture
def page(server):
    with logged_in(server, "admin", "/map", (1280, 800)) as pg:
        yield pg


def test_map_draws_every_layer_with_a_layer_control(server, page):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server}/map", wait_until="load")
    _loaded(page)
    labels = page.eval_on_selector_all(
        ".leaflet-control-layers-overlays label", "els => els.map(e => e.textContent.trim())")
    for title in ("网格", "视频监控", "检查站卡点", "道路", "市界", "警情热力图"):
        assert any(label.startswith(title) for label in labels), (title, labels)
    assert 5 < sum(label.startswith("重点区域") for label in labels) <= 13
    page.locator(".leaflet-control-layers-overlays label", has_text="警情热力图").click()
    assert page.locator("canvas.leaflet-heatmap-layer").count() == 1
    assert errors == []


def test_layer_control_hides_and_shows_a_layer(server, page):
    page.goto(f"{server}/map", wait_until="load")
    before = _loaded(page)
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


# The overview as a new user sees it: rows of the layer control, checked or not.
ROWS = """() => Array.from(document.querySelectorAll(
  '.leaflet-control-layers-overlays label')).map(label => ({
    text: label.textContent.trim(), checked: label.querySelector('input').checked}))"""


def _rows(page) -> dict[str, bool]:
    wait_for(page, "document.querySelectorAll('.leaflet-control-layers-overlays label')"
                   ".length > 3")
    return {row["text"]: row["checked"] for row in page.evaluate(ROWS)}


def _row(rows: dict[str, bool], title: str) -> bool:
    found = [checked for text, checked in rows.items() if text.startswith(f"{title} (")]
    assert len(found) == 1, (title, rows)
    return found[0]


def test_overview_opens_curated_and_remembers_the_users_choice(server):
    with logged_in(server, "police", "/map", (1440, 900)) as page:
        rows = _rows(page)
        assert _row(rows, "网格")
        assert any(text == "市界" and checked for text, checked in rows.items()), rows
        assert all(checked for text, checked in rows.items() if text.startswith("重点区域"))
        assert not _row(rows, "视频监控") and not _row(rows, "警情热力图")
        assert not [text for text in rows if text.endswith("(0)")], rows
        page.screenshot(path=OUTPUT / "overview-1440.png")
        page.locator(".leaflet-control-layers-overlays label", has_text="视频监控").click()
        assert _row(_rows(page), "视频监控")
        page.reload(wait_until="load")
        rows = _rows(page)
        assert _row(rows, "视频监控") and not _row(rows, "警情热力图"), rows
        page.screenshot(path=OUTPUT / "overview-cameras-on.png")
        assert page.errors == []


# Each overlay row: its swatch's colour and the colour the layer's features are drawn in.
SWATCHES = """() => {
  const control = Object.values(window).find(v => v && v.sgLayerControl).sgLayerControl;
  const hex = rgb => '#' + rgb.match(/\\d+/g).slice(0, 3)
      .map(n => Number(n).toString(16).padStart(2, '0')).join('');
  const drawn = layer => {
    if (layer.options && layer.options.color && !layer.eachLayer) return layer.options.color;
    let colour = null;
    if (layer.eachLayer) layer.eachLayer(l => { colour = colour || drawn(l); });
    return colour;
  };
  const rows = Array.from(document.querySelectorAll('.leaflet-control-layers-overlays label'));
  return control._layers.filter(o => o.overlay).map(o => {
    const row = rows.find(r => r.querySelector('input').layerId === L.Util.stamp(o.layer));
    const swatch = row && row.querySelector('.sg-swatch');
    return {text: row ? row.textContent.trim() : o.name, drawn: drawn(o.layer),
            swatch: swatch ? hex(getComputedStyle(swatch).backgroundColor) : null,
            gradient: swatch ? getComputedStyle(swatch).backgroundImage : null};
  });
}"""


def test_each_layer_row_has_a_swatch_of_the_layers_colour(server):
    with logged_in(server, "police", "/map", (1440, 900)) as page:
        _loaded(page)
        for text, checked in _rows(page).items():  # a layer's features come once it is on
            if not checked:
                page.locator(".leaflet-control-layers-overlays label").filter(
                    has_text=re.compile(rf"^\s*{re.escape(text)}\s*$")).click()
        wait_for(page, "Array.from(document.querySelectorAll("
                       "'.leaflet-control-layers-overlays input')).every(i => i.checked)")
        _loaded(page)
        rows = page.evaluate(SWATCHES)
        assert len(rows) > 5
        by_title = {}
        for row in rows:
            if row["text"].startswith("警情热力图"):
                assert "gradient" in row["gradient"], row
                continue
            assert row["swatch"] is not None and row["swatch"] == row["drawn"].lower(), row
            by_title[row["text"].split(" (")[0]] = row["swatch"]
        assert "视频监控" in by_title and "网格" in by_title, by_title
        assert len(set(by_title.values())) == len(by_title), by_title  # no two alike


LABELS = """() => Array.from(document.querySelectorAll('.sg-grid-label span')).map(el => {
  const box = el.getBoundingClientRect();
  return {text: el.textContent, visible: getComputedStyle(el).visibility !== 'hidden'
          && box.width > 0 && box.right > 0 && box.bottom > 0
          && box.left < innerWidth && box.top < innerHeight,
          box: [box.left, box.top, box.right, box.bottom]};
}).filter(label => label.visible)"""


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_grid_labels_are_short_and_do_not_overlap(server):
    with logged_in(server, "police", "/map", (1440, 900)) as page:
        _rows(page)
        labels = wait_for(page, f"({LABELS})().length >= 3 && ({LABELS})()")
        page.screenshot(path=OUTPUT / "overview-labels.png")
        for label in labels:
            assert len(label["text"]) <= 16 and not re.search(r"\d{6}", label["text"]), label
            assert "户" in label["text"], label
        assert _clashes(labels) == []
        for _ in range(3):  # zoomed out the grids crowd together: labels are thinned
            page.click(".leaflet-control-zoom-out")
            page.wait_for_timeout(600)
            labels = page.evaluate(LABELS)
            assert labels and _clashes(labels) == [], labels
        page.screenshot(path=OUTPUT / "overview-labels-zoomed-out.png")


def _clashes(labels: list[dict]) -> list[tuple[str, str]]:
    return [(a["text"], b["text"]) for i, a in enumerate(labels)
            for b in labels[i + 1:] if _overlap(a["box"], b["box"])]


def test_on_a_phone_the_header_shows_and_the_layer_control_is_collapsed(server):
    with logged_in(server, "police", "/map", (390, 844)) as page:
        _rows(page)
        page.screenshot(path=OUTPUT / "overview-phone.png")
        header = page.locator("#sg-header").bounding_box()
        assert header["x"] >= 0 and header["x"] + header["width"] <= 390
        assert header["y"] >= 0 and header["y"] + header["height"] < 844 / 3
        on_top = page.evaluate("""() => { const b = document.querySelector('#sg-header')
            .getBoundingClientRect(); const points = [[b.left + 4, b.top + 4],
            [b.right - 4, b.top + 4], [b.left + 4, b.bottom - 4], [b.right - 4, b.bottom - 4]];
            return points.every(([x, y]) => document.querySelector('#sg-header')
            .contains(document.elementFromPoint(x, y))); }""")
        assert on_top
        assert page.locator(".leaflet-control-layers-expanded").count() == 0
        control = page.locator(".leaflet-control-layers").bounding_box()
        assert control["width"] * control["height"] < 0.02 * 390 * 844
        assert page.locator(".leaflet-control-layers-overlays").is_hidden()


def test_the_header_links_to_the_citys_monthly_notice(server, db):
    with logged_in(server, "police", "/map", (1440, 900)) as page:
        city = page.locator("meta[name=safegrid-city]").get_attribute("content")
        with db.connect() as conn:  # the latest month with incidents in the city
            month = conn.execute(text(
                "SELECT to_char(max(i.occurred_at) AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') "
                "FROM incidents i, jurisdictions j WHERE j.code = :c "
                "AND ST_Intersects(i.geom, j.geom)"), {"c": city}).scalar_one()
        link = page.locator("#sg-notice-link")
        assert "治安状况告知" in link.text_content()
        with page.expect_navigation() as navigation:
            link.click()
        assert navigation.value.status == 200
        assert f"jurisdiction={city}" in page.url and f"month={month}" in page.url
        assert "治安状况告知" in page.content()
        page.screenshot(path=OUTPUT / "overview-notice.png")


def _box(url: str) -> list[float]:
    return [float(v) for v in parse_qs(urlparse(url).query)["bbox"][0].split(",")]


def _zoom(url: str) -> int:
    return int(parse_qs(urlparse(url).query)["zoom"][0])


def test_layers_are_fetched_for_the_view_and_again_when_it_leaves_them(server):
    with logged_in(server, "police", "/map", (1280, 800)) as page:
        asked = []
        page.on("request", lambda r: asked.append(r.url) if "/map/layers/" in r.url else None)
        page.reload(wait_until="load")
        _loaded(page)
        first = {urlparse(u).path.rsplit("/", 1)[1] for u in asked}
        assert first == {"borders", "roads", "grids", "key_areas", "checkpoints"}, asked
        city = _box(next(u for u in asked if "/roads?" in u))
        first_urls = list(asked)
        # a layer turned off and on again is drawn from what the page holds
        roads = page.locator(".leaflet-control-layers-overlays label", has_text="道路")
        roads.locator("input").uncheck()
        roads.locator("input").check()
        page.wait_for_timeout(300)
        assert len(asked) == len(first)
        # zoomed in past the detail fetched: the roads of a smaller box, in more detail
        asked.clear()
        for _ in range(3):
            page.click(".leaflet-control-zoom-in")
            page.wait_for_timeout(400)
        _loaded(page, 0)
        zoomed = [u for u in asked if "/roads?" in u]
        assert zoomed, asked
        box = _box(zoomed[-1])
        assert (box[2] - box[0]) < (city[2] - city[0]) * 0.7
        assert _zoom(zoomed[-1]) >= _zoom(next(u for u in first_urls if "/roads?" in u)) + 2
        # dragged out of that box: fetched again, for where the map is now
        asked.clear()
        for _ in range(6):
            page.mouse.move(640, 450)
            page.mouse.down()
            page.mouse.move(140, 450, steps=8)
            page.mouse.up()
            page.wait_for_timeout(300)
        page.wait_for_timeout(1000)  # the drag's inertia settles; its moveend asks
        _loaded(page, 0)
        moved = [u for u in asked if "/roads?" in u]
        assert moved and _box(moved[-1])[2] > box[2], asked
        view = page.evaluate("""() => { const m = Object.values(window).find(v => v &&
            v.sgOverview); const b = m.getBounds(); return [b.getWest(), b.getEast()]; }""")
        # what was fetched covers the view as far as the city reaches (the first box was
        # the city's bounds with 1% more on each side)
        east = city[2] - 0.01 * (city[2] - city[0]) / 1.02
        assert _box(moved[-1])[0] <= view[0] and min(view[1], east) <= _box(moved[-1])[2]
        assert page.errors == []
