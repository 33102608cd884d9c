"""Each role's working day on the city demo (100k households, 200k incidents, 5k
cameras, 312 grids), in headless Chromium, by mouse and keyboard, in the order a user
does it; the database is read after every write. The planner reshapes, splits, cancels
a split with Esc, merges, previews an old version and restores it; police run Gi*, KDE
and emerging hot spots, read a cell, switch a camera off, site cameras and add one to
the plan, then open the monthly notice from the map; the partner and police plan border
patrols. Screenshots of each step go to test-output/days/."""

import time

import numpy as np
import pytest
import shapely
import shapely.ops
from sqlalchemy import text

from .browser import OUTPUT, logged_in, wait_for

pytestmark = [pytest.mark.db, pytest.mark.browser, pytest.mark.slow]

DAYS = OUTPUT / "days"
PLAN = "window.safegridPlannerState"
ANALYSIS = "window.safegridAnalysisState"
COVERAGE = "window.safegridCoverageState"
BORDER = "window.safegridBorderState"


def shot(page, name: str) -> None:
    DAYS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DAYS / f"{name}.png"))


def pixel(page, state: str, lon: float, lat: float) -> tuple[float, float]:
    """Where (lon, lat) is on the screen of the map held by ``state``."""
    x, y = page.evaluate(f"([lat, lon]) => {{ const m = {state}.map; "
                         "const p = m.latLngToContainerPoint([lat, lon]); "
                         "const r = m.getContainer().getBoundingClientRect(); "
                         "return [p.x + r.left, p.y + r.top]; }", [lat, lon])
    return x, y


# --- the planner's day ------------------------------------------------------------


def grids_of(db, code: str) -> dict[int, shapely.Polygon]:
    with db.connect() as conn:
        return {r[0]: shapely.from_wkb(bytes(r[1])) for r in conn.execute(text(
            "SELECT id, ST_AsBinary(geom) FROM grids WHERE jurisdiction_code = :c"),
            {"c": code})}


def versions(db, ids) -> dict[int, int]:
    with db.connect() as conn:
        return dict(conn.execute(text("SELECT id, version FROM grids WHERE id = ANY(:i)"),
                                 {"i": list(ids)}).all())


def audit_rows(db, after: int) -> list[tuple]:
    """The audit rows of grids written since row ``after``: (actor, action, feature id)."""
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT actor, action, feature_id FROM audit WHERE layer = 'grids' AND id > :a "
            "ORDER BY id"), {"a": after})]


def last_audit(db) -> int:
    with db.connect() as conn:
        return conn.execute(text("SELECT coalesce(max(id), 0) FROM audit")).scalar_one()


def assert_served_coverage(page, server: str, db, code: str) -> None:
    """The community's grids read back through the API, as the page's user: a valid
    coverage of the community (but for strips thinner than the served 1e-7 degrees)."""
    r = page.request.get(f"{server}/collections/grids/items?jurisdiction_code={code}"
                         "&limit=1000")
    assert r.status == 200, r.text()
    served = [shapely.geometry.shape(f["geometry"]) for f in r.json()["features"]]
    assert len(served) == len(grids_of(db, code))
    assert shapely.coverage_is_valid(np.asarray(served, dtype=object))
    with db.connect() as conn:
        area = shapely.from_wkb(bytes(conn.execute(text(
            "SELECT ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"),
            {"c": code}).scalar_one()))
    union = shapely.coverage_union_all(np.asarray(served, dtype=object))
    assert shapely.symmetric_difference(union, area).buffer(-1e-7).is_empty


def on_screen(page, geom: shapely.Geometry, margin: float = 60) -> bool:
    """Whether the point deepest inside ``geom`` shows on the map, clear of the panel."""
    x, y = pixel(page, PLAN, *shapely.ops.polylabel(geom, 1e-6).coords[0])
    panel = page.evaluate("document.getElementById('sg-panel').getBoundingClientRect().left")
    return margin < x < panel - margin and margin < y < 900 - margin


def inside(page, geom: shapely.Polygon) -> tuple[float, float]:
    return pixel(page, PLAN, *shapely.ops.polylabel(geom, 1e-6).coords[0])


def open_grid(page, grid_id: int, geom: shapely.Polygon) -> None:
    """Click the grid and wait for its attributes."""
    page.mouse.click(*inside(page, geom))
    wait_for(page, f"{PLAN}.selected() === {grid_id} && {PLAN}.versions.has({grid_id})")
    page.wait_for_selector("#sg-edit")


def inner_vertex(grids: dict, key: int) -> tuple[int, tuple[float, float], float] | None:
    """A neighbour of ``key``, a vertex on their common edge off the community's outline,
    and its distance to the grid's nearest other vertex (the roomiest such vertex)."""
    outline = shapely.coverage_union_all(np.asarray(list(grids.values()), dtype=object)
                                         ).boundary
    mine = grids[key]
    best = None
    ring = mine.exterior.coords[:-1]
    for other, geom in grids.items():
        if other == key or mine.intersection(geom).length == 0:
            continue
        for xy in ring:
            p = shapely.Point(xy)
            if geom.exterior.distance(p) == 0 and outline.distance(p) > 1e-5:
                room = min(np.hypot(x - xy[0], y - xy[1]) for x, y in ring if (x, y) != xy)
                if best is None or room > best[2]:
                    best = (other, xy, room)
    return best


def crossing(page, grid: shapely.Polygon) -> list[tuple[float, float]] | None:
    """Three screen points of a horizontal line across ``grid``: 30 px before it, in its
    middle, 30 px past it; None when no such line crosses it once."""
    x0, y0, x1, y1 = grid.bounds
    for share in (0.5, 0.4, 0.6, 0.3, 0.7):
        y = y0 + share * (y1 - y0)
        cut = grid.intersection(shapely.LineString([(x0 - 1, y), (x1 + 1, y)]))
        if cut.geom_type == "LineString" and cut.length > 0.3 * (x1 - x0):
            (ax, ay), (bx, by) = sorted(cut.coords)
            start, end = pixel(page, PLAN, ax, ay), pixel(page, PLAN, bx, by)
            if end[0] - start[0] < 40:
                return None
            middle = pixel(page, PLAN, (ax + bx) / 2, y)
            return [(start[0] - 30, start[1]), middle, (end[0] + 30, end[1])]
    return None


def drawing_off(page) -> bool:
    return page.evaluate(f"{PLAN}.mode() === null && !{PLAN}.map.pm.globalDrawModeEnabled()")


def loaded(page, grids: dict) -> None:
    wait_for(page, f"{PLAN} && {PLAN}.state.busy === 0 && "
             + " && ".join(f"{PLAN}.byId.has({i})" for i in grids))


def planned_community(db) -> str:
    """The community of Changsha with the most grids (at most 40)."""
    with db.connect() as conn:
        return conn.execute(text(
            "SELECT jurisdiction_code FROM grids WHERE jurisdiction_code LIKE '4301%' "
            "GROUP BY 1 HAVING count(*) BETWEEN 6 AND 40 ORDER BY count(*) DESC, 1 "
            "LIMIT 1")).scalar_one()


def test_the_planners_day(city_server):
    server, db = city_server
    code = planned_community(db)
    started = time.monotonic()
    with logged_in(server, "planner", "/map") as page:
        shot(page, "planner-01-overview")
        page.click("#sg-plan-link")
        page.wait_for_url("**/map/plan**")
        with page.expect_navigation():
            page.select_option("select[name=jurisdiction]", code)
        assert f"jurisdiction={code}" in page.url
        grids = grids_of(db, code)
        loaded(page, grids)
        shot(page, "planner-02-community")

        # reshape: drag a vertex the grid shares with a neighbour
        candidates = []
        for key in grids:
            found = inner_vertex(grids, key)
            if found and on_screen(page, grids[key]) and on_screen(page, grids[found[0]]):
                candidates.append((pixel(page, PLAN, found[1][0] + found[2], found[1][1])[0]
                                   - pixel(page, PLAN, *found[1])[0], key, found))
        assert candidates, "no grid with a shared vertex shows on the map"
        _room, a, (b, xy, _r) = max(candidates)
        before, mark = versions(db, grids), last_audit(db)
        open_grid(page, a, grids[a])
        page.click("#sg-edit")
        page.wait_for_selector(".marker-icon")
        x, y = pixel(page, PLAN, *xy)
        tx, ty = pixel(page, PLAN, grids[b].centroid.x, grids[b].centroid.y)
        length = float(np.hypot(tx - x, ty - y))
        step = min(20.0, max(6.0, _room / 3)) / length
        page.mouse.move(x, y)
        page.mouse.down()
        for i in range(1, 11):
            page.mouse.move(x + (tx - x) * step * i / 10, y + (ty - y) * step * i / 10)
        page.mouse.up()
        shot(page, "planner-03-dragged")
        page.click("#sg-save")
        page.wait_for_selector("#sg-message.ok")
        shot(page, "planner-04-saved")
        after = grids_of(db, code)
        assert not after[a].equals(grids[a]) and not after[b].equals(grids[b])
        # the grids sharing the vertex gave way: each one a new version and an audit row
        changed = {k for k in grids if not after[k].equals(grids[k])}
        assert {a, b} <= changed
        assert versions(db, grids) == {k: v + (k in changed) for k, v in before.items()}
        assert sorted((r[0], r[2]) for r in audit_rows(db, mark)) == \
            sorted(("planner", k) for k in changed)
        assert_served_coverage(page, server, db, code)
        reshaped = grids[a]  # the shape to restore later

        # split: a line across another grid by clicks, finished with Enter
        grids = after
        split = None
        for key in sorted(grids, key=lambda k: -grids[k].area):
            if key in (a, b) or not on_screen(page, grids[key]):
                continue
            line = crossing(page, grids[key])
            if line:
                split = key
                break
        assert split is not None, "no grid to split shows on the map"
        mark = last_audit(db)
        version = versions(db, [split])[split]
        open_grid(page, split, grids[split])
        page.click("#sg-split")  # the map closes in on the grid
        line = crossing(page, grids[split])
        assert line, "no line crosses the grid once"
        for point in line:
            page.mouse.click(*point)
        shot(page, "planner-05-split-line")
        page.keyboard.press("Enter")
        page.wait_for_selector("#sg-message.ok")
        shot(page, "planner-06-split")
        after = grids_of(db, code)
        halves = set(after) - set(grids)
        assert len(halves) == 1 and len(after) == len(grids) + 1
        half = halves.pop()
        assert after[split].area < grids[split].area
        assert abs(after[split].area + after[half].area - grids[split].area) < \
            1e-3 * grids[split].area
        assert versions(db, [split])[split] == version + 1
        assert {(r[0], r[1], r[2]) for r in audit_rows(db, mark)} >= {
            ("planner", "insert", half)}
        assert_served_coverage(page, server, db, code)
        assert drawing_off(page)

        # a split begun, then left with Esc: nothing written
        grids = after
        mark = last_audit(db)
        page.click("#sg-split")
        start, middle, _end = crossing(page, grids[split])
        page.mouse.click(*start)
        page.mouse.click(*middle)
        page.keyboard.press("Escape")
        wait_for(page, f"{PLAN}.mode() === null")
        shot(page, "planner-07-split-escaped")
        assert drawing_off(page)
        assert last_audit(db) == mark and grids_of(db, code) == grids

        # merge two neighbours after confirming the dialog
        used = {a, b}
        pairs = [(p, q) for p in grids for q in grids if p < q and not {p, q} & used
                 and grids[p].intersection(grids[q]).length > 0
                 and on_screen(page, grids[p]) and on_screen(page, grids[q])]
        assert pairs, "no two neighbours show on the map"
        p, q = min(pairs, key=lambda pq: grids[pq[0]].area + grids[pq[1]].area)
        version, mark = versions(db, [p])[p], last_audit(db)
        open_grid(page, p, grids[p])
        page.click("#sg-merge")
        page.mouse.click(*inside(page, grids[q]))
        page.wait_for_selector("#sg-dialog")
        shot(page, "planner-08-merge-dialog")
        assert last_audit(db) == mark  # asked first
        page.click("#sg-dialog-ok")
        page.wait_for_selector("#sg-message.ok")
        shot(page, "planner-09-merged")
        after = grids_of(db, code)
        assert q not in after and len(after) == len(grids) - 1
        assert shapely.symmetric_difference(after[p], grids[p].union(grids[q])
                                            ).buffer(-1e-7).is_empty
        assert versions(db, [p])[p] == version + 1
        assert {(r[1], r[2]) for r in audit_rows(db, mark)} >= {("delete", q)}
        assert_served_coverage(page, server, db, code)

        # history: the reshaped grid's first version on the map, then restored
        grids = after
        version = versions(db, [a])[a]
        mark = last_audit(db)
        page.keyboard.press("Escape")
        open_grid(page, a, grids[a])
        page.click("#sg-history-button")
        page.wait_for_selector(f"#sg-preview-{version - 1}")
        shot(page, "planner-10-history")
        page.click(f"#sg-preview-{version - 1}")  # 在地图上查看
        wait_for(page, f"{PLAN}.mode() === 'preview' && {PLAN}.preview.getLayers().length")
        drawn = page.evaluate(f"{PLAN}.preview.toGeoJSON(9).features[0].geometry")
        assert shapely.geometry.shape(drawn).equals_exact(reshaped, 1e-6)
        shot(page, "planner-11-preview")
        assert last_audit(db) == mark
        page.click("#sg-restore")
        page.wait_for_selector("#sg-dialog")
        assert f"第 {version - 1} 版" in page.text_content("#sg-dialog")
        page.click("#sg-dialog-ok")
        page.wait_for_selector("#sg-message.ok")
        shot(page, "planner-12-restored")
        after = grids_of(db, code)
        assert versions(db, [a])[a] == version + 1
        assert shapely.hausdorff_distance(after[a], reshaped) < 0.5 / 111_000
        assert ("planner", a) in {(r[0], r[2]) for r in audit_rows(db, mark)}
        assert_served_coverage(page, server, db, code)
        assert page.errors == []
    print(f"planner's day: {time.monotonic() - started:.1f} s")
