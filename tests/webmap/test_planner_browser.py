"""The planner's map in headless Chromium: drag a shared vertex with the mouse and save;
a conflicting save gets the 412 message. Screenshots go to test-output/."""

import pytest
import shapely
from sqlalchemy import text

from .browser import OUTPUT, logged_in, wait_for
from .gridhelp import COMMUNITY, assert_tiles, geoms, room, shared_vertex

pytestmark = [pytest.mark.db, pytest.mark.browser]

STATE = "window.safegridPlannerState"


@pytest.fixture
def planner_page(server):
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
    page.goto(page.url)  # the grids were planned after the login: load them
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
    page.goto(page.url)
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
