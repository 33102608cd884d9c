"""The planner's map in headless Chromium, by mouse and keyboard: drag a shared vertex
and save (a conflicting save gets the 412 message); draw a split line over the grids
and finish it with Enter or a double-click; draw a new grid by clicks, give its kind
and name, and find it carved out of its neighbours; leave any mode with Esc or Cancel;
confirm or cancel a merge in its dialog; show an old version on the map, then restore
it after confirming; labels short and never overlapping; the legend; refusals in the
page language. Screenshots go to test-output/."""

import re

import pytest
import shapely
import shapely.affinity
import shapely.ops
from sqlalchemy import text

from webmap.planner import REFUSALS, TEXT

from .browser import OUTPUT, logged_in, wait_for
from .gridhelp import (
    COMMUNITY,
    assert_served_coverage,
    assert_tiles,
    community,
    geoms,
    inner_corners,
    moved,
    room,
    same_as_served,
    shared_vertex,
    state,
)

pytestmark = [pytest.mark.db, pytest.mark.browser]

STATE = "window.safegridPlannerState"


@pytest.fixture
def planner_page(server, planned):
    """The planner's map of the community, opened once its grids are planned."""
    with logged_in(server, "planner", f"/map/plan?jurisdiction={COMMUNITY}") as page:
        yield page


def pixel(page, lon: float, lat: float) -> tuple[float, float]:
    """Where (lon, lat) is on the screen."""
    point = page.evaluate(f"([lat, lon]) => {{ const m = {STATE}.map; "
                          "const p = m.latLngToContainerPoint([lat, lon]); "
                          "const r = m.getContainer().getBoundingClientRect(); "
                          "return [p.x + r.left, p.y + r.top]; }", [lat, lon])
    return point[0], point[1]


def open_grid(page, grid_id: int, geom: shapely.Polygon) -> None:
    """Wait for the grid to be drawn, then click it and wait for its attributes."""
    wait_for(page, f"{STATE} && {STATE}.byId.has({grid_id})")
    inside = geom.point_on_surface()
    page.mouse.click(*pixel(page, inside.x, inside.y))
    wait_for(page, f"{STATE}.selected() === {grid_id} && {STATE}.versions.has({grid_id})")
    page.wait_for_selector("#sg-edit")


def drag_vertex(page, grid: shapely.Polygon, xy: tuple[float, float],
                towards: shapely.Point) -> None:
    """Press on the grid's vertex at ``xy`` (lon, lat) and drag it towards a point, by
    a third of the way to its nearest other vertex (at most 25 pixels)."""
    x, y = pixel(page, *xy)
    near = pixel(page, xy[0] + room(grid, xy), xy[1])
    pixels = min(25.0, max(6.0, abs(near[0] - x) / 3))
    tx, ty = pixel(page, towards.x, towards.y)
    length = ((tx - x) ** 2 + (ty - y) ** 2) ** 0.5
    dx, dy = (tx - x) / length * pixels, (ty - y) / length * pixels
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x + dx * step / 10, y + dy * step / 10)
    page.mouse.up()


def versions(db, ids):
    with db.connect() as conn:
        return dict(conn.execute(text("SELECT id, version FROM grids WHERE id = ANY(:i)"),
                                 {"i": list(ids)}).all())


def test_planner_drags_a_shared_vertex_and_saves(planner_page, db, planned):
    page = planner_page
    grids = geoms(db)
    key = planned[0]
    neighbour, xy = shared_vertex(grids, key)
    before = versions(db, [key, neighbour])
    open_grid(page, key, grids[key])
    page.click("#sg-edit")
    page.wait_for_selector(".marker-icon")
    drag_vertex(page, grids[key], xy, grids[neighbour].centroid)
    page.screenshot(path=str(OUTPUT / "planner-dragged.png"))
    page.click("#sg-save")
    page.wait_for_selector("#sg-message.ok")
    page.screenshot(path=str(OUTPUT / "planner-saved.png"))
    assert "已保存" in page.text_content("#sg-message")
    after = geoms(db)
    assert not after[key].equals(grids[key])
    assert not after[neighbour].equals(grids[neighbour])  # the neighbour gave way
    now = versions(db, [key, neighbour])
    assert now[key] == before[key] + 1 and now[neighbour] == before[neighbour] + 1
    assert_tiles(db)  # still a valid coverage equal to the community
    # the neighbour was redrawn from the answer: its shape on the map is the stored one
    drawn = page.evaluate(f"{STATE}.byId.get({neighbour}).toGeoJSON(9).geometry")
    assert shapely.geometry.shape(drawn).equals_exact(after[neighbour], 1e-6)
    assert page.errors == []


def test_a_conflicting_save_shows_the_412_message(planner_page, db, api, planned):
    page = planner_page
    grids = geoms(db)
    key = planned[1]
    neighbour, xy = shared_vertex(grids, key)
    open_grid(page, key, grids[key])
    page.click("#sg-edit")
    page.wait_for_selector(".marker-icon")
    drag_vertex(page, grids[key], xy, grids[neighbour].centroid)
    # Meanwhile someone renames the grid through the API.
    etag = api("planner", f"/collections/grids/items/{key}").headers["ETag"]
    r = api("planner", f"/collections/grids/items/{key}", method="PATCH",
            json={"properties": {"name": "改名的网格"}},
            headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    renamed = geoms(db)[key]
    page.click("#sg-save")
    page.wait_for_selector("#sg-message.error")
    page.screenshot(path=str(OUTPUT / "planner-conflict.png"))
    text_shown = page.text_content("#sg-message")
    assert "412" in text_shown and "已被他人修改" in text_shown
    # the panel now shows the current grid: the new name and version
    assert page.text_content("[data-field=name]") == "改名的网格"
    assert page.text_content("[data-field=version]") == str(versions(db, [key])[key])
    assert geoms(db)[key].equals(renamed)  # the stale save wrote nothing
    assert page.errors == []


# --- drawing modes, merge confirmation, refusals in the page language -------------

ZH, EN = TEXT["zh"], TEXT["en"]


def inside(page, geom: shapely.Polygon) -> tuple[float, float]:
    """The screen point deepest inside ``geom`` (farthest from its neighbours' edges)."""
    return pixel(page, *shapely.ops.polylabel(geom).coords[0])


def on_screen(page, geom: shapely.Geometry) -> bool:
    """Whether a point inside ``geom`` shows on the map, clear of the side panel."""
    x, y = inside(page, geom)
    panel = page.evaluate("document.getElementById('sg-panel').getBoundingClientRect().left")
    return 60 < x < panel - 10 and 60 < y < 860


def crossing(page, grid: shapely.Polygon) -> list[tuple[float, float]]:
    """Three screen points of a line across ``grid``: 30 px before it, inside it, 30 px
    past it (on a neighbour or outside the community)."""
    x0, y0, x1, y1 = grid.bounds
    for share in (0.5, 0.4, 0.6, 0.3, 0.7):
        y = y0 + share * (y1 - y0)
        cut = grid.intersection(shapely.LineString([(x0 - 1, y), (x1 + 1, y)]))
        if cut.geom_type == "LineString" and cut.length > 0.3 * (x1 - x0):
            (ax, ay), (bx, by) = sorted(cut.coords)
            start, end = pixel(page, ax, ay), pixel(page, bx, by)
            middle = pixel(page, (ax + bx) / 2, y)
            return [(start[0] - 30, start[1]), middle, (end[0] + 30, end[1])]
    raise AssertionError("no horizontal line crosses the grid once")


def open_visible_grid(page, db, planned) -> tuple[int, dict]:
    """Select the first planned grid that shows clear of the panel; its id and all grids."""
    grids = geoms(db)
    wait_for(page, f"{STATE} && {' && '.join(f'{STATE}.byId.has({i})' for i in planned)}")
    key = next(i for i in planned if on_screen(page, grids[i]))
    open_grid(page, key, grids[key])
    return key, grids


def tooltip_text(page) -> str:
    return page.evaluate("[...document.querySelectorAll('.leaflet-tooltip')]"
                         ".map(e => e.textContent).join(' | ')")


def drawing_off(page) -> bool:
    return page.evaluate(f"{STATE}.mode() === null && !{STATE}.map.pm.globalDrawModeEnabled()"
                         f" && !{STATE}.map.getContainer().classList.contains('sg-drawing')")


@pytest.mark.parametrize("finish", ["Enter", "dblclick"])
def test_a_split_line_is_drawn_by_clicks_over_the_grids(planner_page, db, planned, finish):
    page = planner_page
    key, _grids = open_visible_grid(page, db, planned)
    before = state(db)
    page.click("#sg-split")
    assert ZH["pm_first"] in tooltip_text(page)  # GeoMan speaks the page's language
    zoom = page.evaluate(f"{STATE}.map.getZoom()")
    grid = geoms(db)[key]
    start, middle, end = crossing(page, grid)
    page.mouse.click(*start)  # on a neighbour or outside: a vertex, not a selection
    page.mouse.click(*middle)
    assert ZH["pm_finish"] in tooltip_text(page)
    assert page.evaluate(f"{STATE}.selected()") == key
    if finish == "Enter":
        page.mouse.click(*end)
        page.screenshot(path=str(OUTPUT / "planner-split-line.png"))
        page.keyboard.press("Enter")
    else:
        page.mouse.dblclick(*end)
    page.wait_for_selector("#sg-message.ok")
    page.wait_for_timeout(700)  # the double-click has passed: the map did not zoom
    page.screenshot(path=str(OUTPUT / f"planner-split-{finish}.png"))
    codes = grid_codes(db)
    new = max(codes)
    halves = ZH["list_sep"].join([codes[key], codes[new]])
    assert page.text_content("#sg-message") == ZH["split_done"].replace("{1}", halves)
    # the panel shows the grid as stored now
    wait_for(page, f"document.querySelector('[data-field=version]').textContent === "
                   f"'{versions(db, [key])[key]}'")
    assert page.text_content("[data-field=households]") == str(state_of(db, key)[5])
    assert page.evaluate(f"{STATE}.map.getZoom()") == zoom
    assert drawing_off(page)
    assert len(state(db)[0]) == len(before[0]) + 1
    assert geoms(db)[key].area < grid.area
    assert_tiles(db)
    assert page.errors == []


def state_of(db, grid_id: int) -> tuple:
    return next(g for g in state(db)[0] if g[0] == grid_id)


def grid_codes(db) -> dict[int, str]:
    with db.connect() as conn:
        return dict(conn.execute(text("SELECT id, code FROM grids")).all())


def test_a_split_of_a_grid_changed_meanwhile_reloads_it(planner_page, db, api, planned):
    page = planner_page
    key, grids = open_visible_grid(page, db, planned)
    etag = api("planner", f"/collections/grids/items/{key}").headers["ETag"]
    r = api("planner", f"/collections/grids/items/{key}", method="PATCH",
            json={"properties": {"name": "改名的网格"}},
            headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    before = state(db)
    page.click("#sg-split")
    start, middle, end = crossing(page, grids[key])
    for xy in (start, middle, end):
        page.mouse.click(*xy)
    page.keyboard.press("Enter")
    page.wait_for_selector("#sg-message.error")
    version = versions(db, [key])[key]
    assert page.text_content("#sg-message") == ZH["refused_because"].replace(
        "{1}", ZH["why_stale"].replace("{1}", str(version)))
    wait_for(page, f"document.querySelector('[data-field=version]').textContent === "
                   f"'{version}'")
    assert page.text_content("[data-field=name]") == "改名的网格"
    assert state(db) == before
    page.click("#sg-split")  # once reloaded, the same line splits the grid
    for xy in (start, middle):
        page.mouse.click(*xy)
    page.mouse.dblclick(*end)
    page.wait_for_selector("#sg-message.ok")
    assert len(state(db)[0]) == len(before[0]) + 1
    assert page.errors == []


def test_escape_and_cancel_leave_the_drawing_modes(planner_page, db, planned):
    page = planner_page
    key, grids = open_visible_grid(page, db, planned)
    before = state(db)
    page.click("#sg-split")
    start, middle, _end = crossing(page, grids[key])
    page.mouse.click(*start)
    page.mouse.click(*middle)
    page.keyboard.press("Escape")
    wait_for(page, f"{STATE}.mode() === null")
    assert drawing_off(page) and page.query_selector("#sg-cancel") is None
    page.click("#sg-split")
    page.mouse.click(*middle)
    page.click("#sg-cancel")  # 取消
    wait_for(page, f"{STATE}.mode() === null")
    assert drawing_off(page)
    page.click("#sg-edit")  # a reshape, left with Esc, writes nothing either
    page.wait_for_selector(".marker-icon")
    neighbour, xy = shared_vertex(grids, key)
    drag_vertex(page, grids[key], xy, grids[neighbour].centroid)
    page.keyboard.press("Escape")
    page.wait_for_selector(".marker-icon", state="detached")
    page.screenshot(path=str(OUTPUT / "planner-escaped.png"))
    assert drawing_off(page) and page.query_selector("#sg-save") is None
    assert state(db) == before
    # the grids take clicks again: a click on the neighbour selects it
    page.mouse.click(*inside(page, grids[neighbour]))
    wait_for(page, f"{STATE}.selected() === {neighbour}")
    assert page.errors == []


def grid_rows(db, ids) -> dict[int, tuple[str, int]]:
    with db.connect() as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute(text(
            "SELECT id, name, households FROM grids WHERE id = ANY(:i)"), {"i": list(ids)})}


def ask_merge(page, grids, other: int) -> str:
    page.click("#sg-merge")
    page.mouse.click(*inside(page, grids[other]))
    page.wait_for_selector("#sg-dialog")
    return page.text_content("#sg-dialog")


def test_a_merge_asks_first_naming_the_grids(planner_page, db, planned):
    page = planner_page
    key, grids = open_visible_grid(page, db, planned)
    neighbour = next(i for i in grids if i != key and grids[i].intersection(grids[key]).length
                     > 0 and on_screen(page, grids[i]))
    before = state(db)
    rows = grid_rows(db, [key, neighbour])
    page.click("#sg-merge")  # Esc also leaves the picking of the grid to merge in
    page.keyboard.press("Escape")
    page.wait_for_selector("#sg-merge")
    assert drawing_off(page)
    shown = ask_merge(page, grids, neighbour)
    page.screenshot(path=str(OUTPUT / "planner-merge-dialog.png"))
    for name, households in rows.values():
        assert f"{name} · {ZH['n_households'].replace('{1}', str(households))}" in shown
    assert str(sum(h for _n, h in rows.values())) in shown
    page.keyboard.press("Escape")
    page.wait_for_selector("#sg-dialog", state="detached")
    ask_merge(page, grids, neighbour)
    page.click("#sg-dialog-cancel")
    page.wait_for_selector("#sg-dialog", state="detached")
    ask_merge(page, grids, neighbour)
    page.keyboard.press("Tab")  # to 取消: Enter then cancels
    page.keyboard.press("Enter")
    page.wait_for_selector("#sg-dialog", state="detached")
    assert state(db) == before and drawing_off(page)
    ask_merge(page, grids, neighbour)
    page.keyboard.press("Enter")
    page.wait_for_selector("#sg-message.ok")
    page.screenshot(path=str(OUTPUT / "planner-merged.png"))
    assert page.text_content("#sg-message") == \
        ZH["merged_into"].replace("{1}", rows[key][0])
    after = geoms(db)
    assert neighbour not in after
    assert same_as_served(after[key], grids[key].union(grids[neighbour]))
    assert grid_rows(db, [key])[key][1] == sum(h for _n, h in rows.values())
    assert_tiles(db)
    assert page.errors == []


def test_a_refused_split_says_what_to_do_in_chinese(planner_page, db, planned):
    page = planner_page
    key, grids = open_visible_grid(page, db, planned)
    before = state(db)
    page.click("#sg-split")
    _start, middle, _end = crossing(page, grids[key])
    page.mouse.click(*middle)
    page.mouse.click(middle[0] + 20, middle[1] + 5)  # a line ending inside the grid
    page.keyboard.press("Enter")
    page.wait_for_selector("#sg-message.error")
    page.screenshot(path=str(OUTPUT / "planner-split-refused.png"))
    shown = page.text_content("#sg-message")
    code = grid_codes(db)[key]
    named = ZH["grid_named"].replace("{1}", grid_rows(db, [key])[key][0]).replace("{2}", code)
    why = ZH["why_cut_parts"].replace("{1}", named).replace("{2}", "1")
    assert shown == ZH["refused_because"].replace("{1}", why)
    assert "line" not in shown
    assert state(db) == before
    assert page.errors == []


def test_a_refused_merge_says_what_to_do_in_english(server, db, planned):
    with logged_in(server, "planner", f"/map/plan?jurisdiction={COMMUNITY}&lang=en") as page:
        key, grids = open_visible_grid(page, db, planned)
        apart = max((i for i in grids if not grids[i].intersects(grids[key])
                     and on_screen(page, grids[i])), key=lambda i: grids[i].area)
        before = state(db)
        assert "households" in ask_merge(page, grids, apart)
        page.keyboard.press("Enter")
        page.wait_for_selector("#sg-message.error")
        page.screenshot(path=str(OUTPUT / "planner-merge-refused.png"))
        assert page.text_content("#sg-message") == \
            EN["refused_because"].replace("{1}", EN["why_not_adjacent"])
        assert state(db) == before
        assert page.errors == []


def test_the_api_refusals_are_known_to_the_page(api, db, planned):
    """Each refusal the planner can meet matches the pattern of a text saying what to do."""
    grids = geoms(db)
    key = planned[0]
    apart = next(i for i in grids if not grids[i].intersects(grids[key]))
    code = grid_codes(db)[key]
    inner = shapely.ops.polylabel(grids[key])
    stub = shapely.geometry.mapping(shapely.LineString([(inner.x, inner.y),
                                                        (inner.x + 1e-5, inner.y)]))

    def shape(geom):
        return {"type": "Feature", "geometry": shapely.geometry.mapping(geom),
                "properties": {"code": code, "name": "x", "kind": "comprehensive"}}

    put = {"Content-Type": "application/geo+json", "If-Match": '"1"'}
    cases = {
        "why_not_adjacent": ("/api/grids/merge", "POST", {"json": {"ids": [key, apart]}}),
        "why_merge_two": ("/api/grids/merge", "POST", {"json": {"ids": [key, key]}}),
        "why_line": (f"/api/grids/{key}/split", "POST",
                     {"json": {"line": {"type": "Point", "coordinates": [0, 0]}}}),
        "why_cut_parts": (f"/api/grids/{key}/split", "POST", {"json": {"line": stub}}),
        "why_stale": (f"/api/grids/{key}/split", "POST",
                      {"json": {"line": stub}, "headers": {"If-Match": '"99"'}}),
        "why_same_version": (f"/api/grids/{key}/restore", "POST", {"json": {"version": 1}}),
        "why_no_version": (f"/api/grids/{key}/restore", "POST", {"json": {"version": 99}}),
        "why_no_overlap": (f"/collections/grids/items/{key}", "PUT",
                           {"json": shape(grids[apart]), "headers": put}),
        "why_outside": (f"/collections/grids/items/{key}", "PUT", {
            "json": shape(shapely.affinity.translate(grids[key], 0.2)), "headers": put}),
    }
    x0, y0, x1, y1 = grids[key].bounds
    inner_box = shapely.box(inner.x - 1e-4, inner.y - 1e-4, inner.x + 1e-4, inner.y + 1e-4)

    def carve(geom, **extra):
        body = {"jurisdiction": COMMUNITY, "geometry": shapely.geometry.mapping(geom),
                "kind": "comprehensive", **extra}
        return ("/api/grids/carve", "POST", {"json": body})

    cases.update({
        "why_carve_cover": carve(shapely.box(x0 - 1e-4, y0 - 1e-4, x1 + 1e-4, y1 + 1e-4)),
        "why_carve_small": carve(shapely.box(inner.x, inner.y, inner.x + 5e-5,
                                             inner.y + 5e-5)),
        "why_carve_holes": carve(shapely.Polygon(
            inner_box.exterior.coords, [inner_box.buffer(-5e-5).exterior.coords])),
        "why_carve_one": carve(shapely.LineString([(x0, y0), (x1, y1)])),
        "why_not_community": carve(inner_box, jurisdiction=COMMUNITY[:-3]),
        "why_bad_shape": carve(shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])),
    })
    before = state(db)
    for expected, (path, method, kw) in cases.items():
        r = api("planner", path, method=method, **kw)
        assert r.status_code in (412, 422), (expected, r.status_code, r.text)
        reason = r.json()["error"]
        found = next((k for k, p in REFUSALS if re.search(p, reason)), None)
        assert found == expected, reason
    assert state(db) == before


# --- a new grid by clicks, history preview and restore, labels and legend -----------


def zoom_to(page, lon: float, lat: float, zoom: int) -> None:
    """Zoom in with the mouse wheel over (lon, lat) until the map is at ``zoom`` or more."""
    for _ in range(12):
        if page.evaluate(f"{STATE}.map.getZoom()") >= zoom:
            break
        page.mouse.move(*pixel(page, lon, lat))
        page.mouse.wheel(0, -120)
        page.wait_for_timeout(400)
    wait_for(page, f"{STATE}.state.busy === 0")


def new_grid_box(db, page, planned) -> tuple[shapely.Polygon, dict]:
    """A box around a corner of three grids or more, a quarter of their size, shown
    large enough on the map to be drawn by clicks; and all grids before."""
    grids = geoms(db)
    wait_for(page, f"{STATE} && {' && '.join(f'{STATE}.byId.has({i})' for i in planned)}")
    corners = [xy for xy in inner_corners(grids, community(db))
               if on_screen(page, shapely.Point(xy).buffer(1e-6))]
    x, y = corners[0]
    touching = [g for g in grids.values() if g.distance(shapely.Point(x, y)) < 1e-9]
    d = 0.25 * min(g.area ** 0.5 for g in touching)
    for _ in range(6):
        if pixel(page, x + d, y)[0] - pixel(page, x, y)[0] >= 45:
            break
        zoom_to(page, x, y, page.evaluate(f"{STATE}.map.getZoom()") + 1)
    return shapely.box(x - d, y - d, x + d, y + d), grids


def vertex_count(page) -> int:
    return page.evaluate(f"{STATE}.map.pm.Draw.Polygon._layer ? "
                         f"{STATE}.map.pm.Draw.Polygon._layer.getLatLngs().length : 0")


def draw_box(page, box: shapely.Polygon, finish: str | None) -> None:
    """Click the box's corners on the map; finish by clicking the first again, Enter or a
    double-click on the last (None: leave it open)."""
    corners = [pixel(page, *xy) for xy in box.exterior.coords[:-1]]
    for xy in corners[:-1]:
        page.mouse.click(*xy)
    if finish == "dblclick":
        page.mouse.dblclick(*corners[-1])
        return
    page.mouse.click(*corners[-1])
    assert vertex_count(page) == 4
    if finish == "first":
        page.mouse.click(*corners[0])
    elif finish == "Enter":
        page.keyboard.press("Enter")


def new_grids(db, before: dict) -> dict[int, tuple]:
    with db.connect() as conn:
        rows = conn.execute(text("SELECT id, code, name, kind, households FROM grids "
                                 "WHERE jurisdiction_code = :c"), {"c": COMMUNITY}).all()
    return {r[0]: tuple(r[1:]) for r in rows if r[0] not in before}


@pytest.mark.parametrize("finish", ["first", "Enter", "dblclick"])
def test_a_new_grid_is_drawn_by_clicks_and_carved_out(planner_page, db, api, planned, finish):
    page = planner_page
    box, grids = new_grid_box(db, page, planned)
    zoom = page.evaluate(f"{STATE}.map.getZoom()")
    page.click("#sg-new")
    assert page.evaluate(f"{STATE}.mode()") == "new"
    assert page.is_visible("#sg-cancel")
    draw_box(page, box, finish)
    # the grids took no clicks: every click placed a vertex, none selected a grid
    assert page.evaluate(f"{STATE}.selected()") is None
    page.wait_for_selector("#sg-dialog")
    assert ZH["new_title"] in page.text_content("#sg-dialog")
    assert page.evaluate(f"{STATE}.preview.getLayers().length") == 1  # the shape drawn
    page.select_option("#sg-new-kind", "dedicated")
    page.fill("#sg-new-name", "学校专属网格")
    page.screenshot(path=str(OUTPUT / f"planner-new-grid-dialog-{finish}.png"))
    page.keyboard.press("Enter")
    page.wait_for_selector("#sg-message.ok")
    page.wait_for_timeout(700)  # a finishing double-click did not zoom the map
    page.screenshot(path=str(OUTPUT / f"planner-new-grid-{finish}.png"))
    made = new_grids(db, grids)
    assert len(made) == 1
    (new_id, (code, name, kind, households)), = made.items()
    assert (name, kind) == ("学校专属网格", "dedicated") and code.startswith(COMMUNITY)
    shape = geoms(db)[new_id]
    assert shapely.symmetric_difference(shape, box).area < 0.15 * box.area
    assert shape.contains(box.centroid)
    assert page.text_content("#sg-message") == ZH["carved"].replace("{1}", name).replace(
        "{2}", str(sum(1 for k, g in geoms(db).items() if k in grids and not g.equals(
            grids[k]))))
    wait_for(page, f"{STATE}.selected() === {new_id}")
    wait_for(page, "document.querySelector('[data-field=households]') && "
                   "document.querySelector('[data-field=households]').textContent === "
                   f"'{households}'")
    assert page.evaluate(f"{STATE}.map.getZoom()") == zoom
    assert drawing_off(page) and page.evaluate(f"{STATE}.preview.getLayers().length") == 0
    assert_tiles(db)
    assert_served_coverage(api, db)
    assert page.errors == []


def test_escape_and_cancel_leave_the_new_grid_with_nothing_written(planner_page, db, planned):
    page = planner_page
    box, grids = new_grid_box(db, page, planned)
    before = state(db)
    page.click("#sg-new")
    draw_box(page, box, None)
    page.keyboard.press("Escape")  # while drawing
    wait_for(page, f"{STATE}.mode() === null")
    assert drawing_off(page) and page.query_selector("#sg-cancel") is None
    page.click("#sg-new")
    corners = [pixel(page, *xy) for xy in box.exterior.coords[:-1]]
    page.mouse.click(*corners[0])
    page.mouse.click(*corners[1])
    page.click("#sg-cancel")  # 取消
    wait_for(page, f"{STATE}.mode() === null")
    assert drawing_off(page)
    page.click("#sg-new")
    draw_box(page, box, "Enter")
    page.wait_for_selector("#sg-dialog")
    page.keyboard.press("Escape")  # in the kind-and-name dialog
    page.wait_for_selector("#sg-dialog", state="detached")
    page.click("#sg-new")
    draw_box(page, box, "first")
    page.wait_for_selector("#sg-dialog")
    page.click("#sg-dialog-cancel")
    page.wait_for_selector("#sg-dialog", state="detached")
    page.screenshot(path=str(OUTPUT / "planner-new-grid-cancelled.png"))
    assert drawing_off(page) and page.evaluate(f"{STATE}.preview.getLayers().length") == 0
    assert state(db) == before
    # the grids take clicks again
    x0, y0, x1, y1 = box.bounds
    point = shapely.Point(x0 + 0.3 * (x1 - x0), y0 + 0.6 * (y1 - y0))
    some = next(k for k, g in grids.items() if g.contains(point))
    page.mouse.click(*pixel(page, point.x, point.y))
    wait_for(page, f"{STATE}.selected() === {some}")
    assert page.errors == []


def test_a_refused_new_grid_says_what_to_do(planner_page, db, planned):
    page = planner_page
    grids = geoms(db)
    wait_for(page, f"{STATE} && {' && '.join(f'{STATE}.byId.has({i})' for i in planned)}")
    before = state(db)
    # a box around a whole grid would cover it
    around = {k: shapely.box(*grids[k].buffer(0.0002, join_style="mitre").bounds)
              for k in planned}
    whole = min((k for k in planned if all(on_screen(page, shapely.Point(xy).buffer(1e-7))
                                           for xy in around[k].exterior.coords)),
                key=lambda k: grids[k].area)
    page.click("#sg-new")
    draw_box(page, around[whole], "Enter")
    page.wait_for_selector("#sg-dialog")
    page.click("#sg-dialog-ok")
    page.wait_for_selector("#sg-message.error")
    page.screenshot(path=str(OUTPUT / "planner-new-grid-refused.png"))
    shown = page.text_content("#sg-message")
    rows = grid_rows(db, grids)
    codes = grid_codes(db)
    assert shown in {ZH["refused_because"].replace("{1}", ZH["why_carve_cover"].replace(
        "{1}", ZH["grid_named"].replace("{1}", rows[k][0]).replace("{2}", codes[k])))
        for k in grids}, shown
    assert state(db) == before
    assert drawing_off(page)
    assert page.errors == []


def test_an_old_version_is_shown_before_it_is_restored(planner_page, db, api, planned):
    page = planner_page
    grids = geoms(db)
    key = planned[0]
    neighbour, xy = shared_vertex(grids, key)
    r = api("planner", f"/collections/grids/items/{key}")
    feature, etag = r.json(), r.headers["ETag"]
    feature["geometry"] = moved(grids[key], xy, 0.0003, 0.0002)
    r = api("planner", f"/collections/grids/items/{key}", method="PUT", json=feature,
            headers={"If-Match": etag, "Content-Type": "application/geo+json"})
    assert r.status_code == 200, r.text
    old = grids[key]
    before = state(db)
    version = versions(db, [key])[key]
    page.goto(page.url)
    open_grid(page, key, geoms(db)[key])
    page.click("#sg-history-button")
    page.wait_for_selector(f"#sg-preview-{version - 1}")
    assert page.query_selector(f"#sg-preview-{version}") is None  # the current one
    page.click(f"#sg-preview-{version - 1}")
    wait_for(page, f"{STATE}.mode() === 'preview'")
    assert page.evaluate(f"{STATE}.preview.getLayers().length") == 1
    # drawn dashed, where the old shape was, with the map fitted to it
    dash = page.evaluate("document.querySelector('path.sg-preview')"
                         ".getAttribute('stroke-dasharray')")
    assert dash
    drawn = page.evaluate(f"{STATE}.preview.toGeoJSON(9).features[0].geometry")
    assert shapely.geometry.shape(drawn).equals_exact(old, 1e-6)
    shown = page.evaluate(f"(() => {{ const b = {STATE}.map.getBounds(); return "
                          "[b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; })()")
    assert shapely.box(*shown).contains(old)
    page.screenshot(path=str(OUTPUT / "planner-history-preview.png"))
    page.keyboard.press("Escape")  # leaves the preview
    wait_for(page, f"{STATE}.mode() === null")
    assert page.evaluate(f"{STATE}.preview.getLayers().length") == 0
    page.click(f"#sg-preview-{version - 1}")
    page.click("#sg-restore")
    page.wait_for_selector("#sg-dialog")
    asked = page.text_content("#sg-dialog")
    assert f"第 {version - 1} 版" in asked and f"第 {version} 版" in asked
    page.screenshot(path=str(OUTPUT / "planner-restore-dialog.png"))
    page.click("#sg-dialog-cancel")  # not yet: still shown
    page.wait_for_selector("#sg-dialog", state="detached")
    assert page.evaluate(f"{STATE}.mode()") == "preview" and state(db) == before
    page.click("#sg-restore")
    page.wait_for_selector("#sg-dialog")
    page.keyboard.press("Enter")
    page.wait_for_selector("#sg-message.ok")
    page.screenshot(path=str(OUTPUT / "planner-restored.png"))
    assert versions(db, [key])[key] == version + 1
    assert shapely.hausdorff_distance(geoms(db)[key], old) < 0.5 / 111_000
    assert page.evaluate(f"{STATE}.preview.getLayers().length") == 0
    wait_for(page, f"document.querySelector('[data-field=version]').textContent === "
                   f"'{version + 1}'")
    assert_tiles(db)
    assert neighbour in geoms(db)
    assert page.errors == []


def visible_labels(page) -> list[dict]:
    return page.evaluate("[...document.querySelectorAll('.leaflet-tooltip.sg-label')]"
                         ".filter(e => getComputedStyle(e).visibility !== 'hidden')"
                         ".map(e => { const r = e.getBoundingClientRect(); return {text: "
                         "e.textContent, left: r.left, right: r.right, top: r.top, "
                         "bottom: r.bottom}; })")


def settle(page) -> None:
    """Wait until the map has stopped moving, loaded its grids and drawn two frames."""
    page.wait_for_timeout(300)
    wait_for(page, f"!{STATE}.map._animatingZoom && {STATE}.state.busy === 0")
    page.evaluate("new Promise(done => requestAnimationFrame(() => "
                  "requestAnimationFrame(done)))")


# A grid's label: its number (第N网格) or its name, and its households; other tests may
# have renamed a grid.
SHORT_LABEL = r"(第\d+网格|[^·]{1,20}) · \d+户"


def test_labels_are_short_and_never_overlap(planner_page, db, planned):
    page = planner_page
    grids = geoms(db)
    wait_for(page, f"{STATE} && {' && '.join(f'{STATE}.byId.has({i})' for i in planned)}")
    page.focus(".leaflet-container")
    for key in ("+", "-", "-"):  # labels show from zoom 15; zoom out until they crowd
        if page.evaluate(f"{STATE}.map.getZoom()") < 15:
            break
        page.keyboard.press(key)
        settle(page)
    while page.evaluate(f"{STATE}.map.getZoom()") < 15:
        page.keyboard.press("+")
        settle(page)
    page.screenshot(path=str(OUTPUT / "planner-labels.png"))
    shown = visible_labels(page)
    assert shown
    for label in shown:
        assert re.fullmatch(SHORT_LABEL, label["text"]), label["text"]
    for i, a in enumerate(shown):
        for b in shown[i + 1:]:
            assert not (a["left"] < b["right"] and b["left"] < a["right"]
                        and a["top"] < b["bottom"] and b["top"] < a["bottom"]), (a, b)
    total = page.evaluate("document.querySelectorAll('.leaflet-tooltip.sg-label').length")
    assert total >= len([k for k in grids if on_screen(page, grids[k])]) - 2
    assert len(shown) < total  # at this zoom some would collide: those are hidden
    hidden = page.evaluate(f"[...{STATE}.byId].filter(([id, l]) => l.getTooltip() && "
                           "l.getTooltip().getElement() && getComputedStyle(l.getTooltip()"
                           ".getElement()).visibility === 'hidden').map(([id]) => id)")
    chosen = next((k for k in hidden if k in grids and on_screen(page, grids[k])), None)
    if chosen is not None:  # a selected grid's label shows first
        page.mouse.click(*inside(page, grids[chosen]))
        wait_for(page, f"{STATE}.selected() === {chosen}")
        settle(page)
        label_el = f"{STATE}.byId.get({chosen}).getTooltip().getElement()"
        assert page.evaluate(f"getComputedStyle({label_el}).visibility") != "hidden"
        page.screenshot(path=str(OUTPUT / "planner-labels-selected.png"))
        shown = visible_labels(page)
        for i, a in enumerate(shown):
            for b in shown[i + 1:]:
                assert not (a["left"] < b["right"] and b["left"] < a["right"]
                            and a["top"] < b["bottom"] and b["top"] < a["bottom"]), (a, b)
    page.keyboard.press("+")  # closer: more room, so at least as many labels show
    settle(page)
    closer = visible_labels(page)
    assert closer and all(re.fullmatch(SHORT_LABEL, x["text"]) for x in closer)
    assert page.errors == []


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_legend_names_kinds_and_problem_colours(server, db, planned, lang):
    from webmap.planner import PROBLEM_COLOURS, STYLES

    t = TEXT[lang]
    with logged_in(server, "planner",
                   f"/map/plan?jurisdiction={COMMUNITY}&lang={lang}") as page:
        legend = page.text_content("#sg-legend")
        for key in ("comprehensive", "dedicated", "selected", "old_version", "problem_gap",
                    "problem_overlap", "problem_sliver", "problem_outside"):
            assert t[key] in legend
        colours = page.evaluate("[...document.querySelectorAll('#sg-legend .sg-swatch')]"
                                ".map(e => e.dataset.colour)")
        assert colours == [s["color"] for s in STYLES.values()] + list(
            PROBLEM_COLOURS.values())
        page.screenshot(path=str(OUTPUT / f"planner-legend-{lang}.png"))
        assert page.errors == []


def test_check_coverage_draws_each_problem_in_its_legend_colour(planner_page, db, planned):
    from webmap.planner import PROBLEM_COLOURS

    page = planner_page
    key = planned[0]
    with db.begin() as conn:  # a grid shrunk by 5 m leaves a gap around it
        conn.execute(text("UPDATE grids SET geom = ST_Buffer(geom, -0.00005, 'join=mitre') "
                          "WHERE id = :i"), {"i": key})
    page.goto(page.url)
    wait_for(page, f"{STATE} && {STATE}.byId.has({key})")
    page.click("#sg-validate")
    page.wait_for_selector("#sg-message.error")
    page.screenshot(path=str(OUTPUT / "planner-validation.png"))
    shown = page.text_content("#sg-message")
    assert shown.startswith(ZH["problems"]) and ZH["problem_gap"] in shown
    assert "gap" not in shown
    strokes = set(page.evaluate("[...document.querySelectorAll('path.sg-problem')]"
                                ".map(e => e.getAttribute('stroke'))"))
    assert PROBLEM_COLOURS["gap"] in strokes and strokes <= set(PROBLEM_COLOURS.values())
    assert page.errors == []


def test_a_new_grid_over_a_grid_changed_meanwhile_is_refused_then_drawn(planner_page, db, api,
                                                                          planned):
    page = planner_page
    box, grids = new_grid_box(db, page, planned)
    x0, y0, x1, y1 = box.bounds
    point = shapely.Point(x0 + 0.3 * (x1 - x0), y0 + 0.6 * (y1 - y0))
    key = next(k for k, g in grids.items() if g.contains(point))
    page.mouse.click(*pixel(page, point.x, point.y))  # read: its version is known
    wait_for(page, f"{STATE}.selected() === {key} && {STATE}.versions.has({key})")
    etag = api("planner", f"/collections/grids/items/{key}").headers["ETag"]
    r = api("planner", f"/collections/grids/items/{key}", method="PATCH",
            json={"properties": {"name": "改名的网格"}},
            headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    before = state(db)
    page.click("#sg-new")
    draw_box(page, box, "Enter")
    page.wait_for_selector("#sg-dialog")
    page.keyboard.press("Enter")
    page.wait_for_selector("#sg-message.error")
    version = versions(db, [key])[key]
    assert page.text_content("#sg-message") == ZH["refused_because"].replace(
        "{1}", ZH["why_stale"].replace("{1}", str(version)))
    assert state(db) == before
    page.click("#sg-new")  # the version now known, the same shape is carved
    draw_box(page, box, "Enter")
    page.wait_for_selector("#sg-dialog")
    page.keyboard.press("Enter")
    page.wait_for_selector("#sg-message.ok")
    assert len(new_grids(db, grids)) == 1
    assert_tiles(db)
    assert page.errors == []


def test_regenerating_units_is_a_write_without_a_body(planner_page, db, planned):
    page = planner_page
    grids = geoms(db)
    key = planned[0]
    open_grid(page, key, grids[key])
    page.click("#sg-units")
    page.wait_for_selector("#sg-message.ok, #sg-message.error")
    with db.connect() as conn:
        made = conn.execute(text(
            "SELECT count(*) FROM household_units u JOIN grids g ON g.code = u.grid_code "
            "WHERE g.id = :i"), {"i": key}).scalar_one()
    assert made > 0  # a grid of ~40 households gets units of 5-15
    assert page.text_content("#sg-message") == ZH["units_done"] + "：" + str(made)
    assert page.errors == []
