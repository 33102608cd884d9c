"""Each role's working day on the city demo (100k households, 200k incidents, 5k
cameras, 312 grids), in headless Chromium, by mouse and keyboard, in the order a user
does it; the database is read after every write. The planner reshapes, splits, cancels
a split with Esc, merges, previews an old version and restores it; police run Gi*, KDE
and emerging hot spots, read a cell, switch a camera off, site cameras and add one to
the plan, then open the monthly notice from the map; the partner and police plan border
patrols. Screenshots of each step go to test-output/days/."""

import json
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


TILES_PENDING = ("document.querySelectorAll('.leaflet-tile-container .leaflet-tile:not("
                 ".leaflet-tile-loaded)').length")
WAITED: list[float] = []  # seconds each screenshot waited for the basemap's tiles


def shot(page, name: str) -> None:
    """A screenshot once the offline basemap's tiles on screen are drawn."""
    DAYS.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    wait_for(page, f"{TILES_PENDING} === 0", timeout=20)
    WAITED.append(time.monotonic() - t0)
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
        with db.connect() as conn:  # two comprehensive grids (not a school's own grid)
            kinds = dict(conn.execute(text("SELECT id, kind FROM grids WHERE "
                                           "jurisdiction_code = :c"), {"c": code}).all())
        pairs = [(p, q) for p in grids for q in grids if p < q and not {p, q} & used
                 and kinds[p] == kinds[q] == "comprehensive"
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

        # a new dedicated grid drawn by clicks around a corner of three grids
        grids = after
        box = new_grid_box(page, grids, code, db)
        mark = last_audit(db)
        page.keyboard.press("Escape")
        page.click("#sg-new")
        corners = [pixel(page, PLAN, *xy) for xy in box.exterior.coords[:-1]]
        for xy in corners:
            page.mouse.click(*xy)
        page.mouse.click(*corners[0])  # closed on the first corner
        page.wait_for_selector("#sg-dialog")
        page.select_option("#sg-new-kind", "dedicated")
        page.fill("#sg-new-name", "夜市专属网格")
        shot(page, "planner-13-new-grid-dialog")
        page.keyboard.press("Enter")
        page.wait_for_selector("#sg-message.ok")
        shot(page, "planner-14-new-grid")
        after = grids_of(db, code)
        (new,) = set(after) - set(grids)
        with db.connect() as conn:
            row = conn.execute(text("SELECT name, kind, version FROM grids WHERE id = :i"),
                               {"i": new}).one()
        assert tuple(row) == ("夜市专属网格", "dedicated", 1)
        assert shapely.symmetric_difference(after[new], box).area < 0.15 * box.area
        carved = {k for k in grids if not after[k].equals(grids[k])}
        assert len(carved) >= 3
        assert sorted((r[1], r[2]) for r in audit_rows(db, mark)) == sorted(
            [("insert", new)] + [("update", k) for k in carved])
        assert_served_coverage(page, server, db, code)
        assert page.errors == []
    print(f"planner's day: {time.monotonic() - started:.1f} s, tiles waited "
          f"{max(WAITED):.1f} s at most")


def new_grid_box(page, grids: dict, code: str, db) -> shapely.Polygon:
    """A box around a corner of three grids or more, inside the community, a quarter of
    their size; the map zoomed in with the wheel until it is 45 pixels wide or more."""
    with db.connect() as conn:
        area = shapely.from_wkb(bytes(conn.execute(text(
            "SELECT ST_AsBinary(geom) FROM jurisdictions WHERE code = :c"),
            {"c": code}).scalar_one()))
    counts: dict[tuple, int] = {}
    for g in grids.values():
        for xy in g.exterior.coords[:-1]:
            counts[xy] = counts.get(xy, 0) + 1
    corners = [xy for xy, n in counts.items() if n >= 3
               and area.boundary.distance(shapely.Point(xy)) > 0.002
               and on_screen(page, shapely.Point(xy).buffer(1e-6), 150)]
    assert corners, "no corner of three grids shows on the map"
    x, y = corners[0]
    touching = [g for g in grids.values() if g.distance(shapely.Point(x, y)) < 1e-9]
    d = 0.25 * min(g.area ** 0.5 for g in touching)
    for _ in range(8):
        if pixel(page, PLAN, x + d, y)[0] - pixel(page, PLAN, x, y)[0] >= 45:
            break
        page.mouse.move(*pixel(page, PLAN, x, y))
        page.mouse.wheel(0, -120)
        page.wait_for_timeout(400)
    wait_for(page, f"{PLAN}.state.busy === 0")
    return shapely.box(x - d, y - d, x + d, y + d)


# --- border patrols: the partner's day, and the police's -----------------------------


def routes(db, border: str) -> dict[int, tuple]:
    """The stored patrol routes of a border: id -> (team's city, team, name)."""
    with db.connect() as conn:
        return {r[0]: tuple(r[1:]) for r in conn.execute(text(
            "SELECT id, jurisdiction_code, team, name FROM patrol_routes WHERE border = :b "
            "ORDER BY id"), {"b": border})}


def plan_patrols(page, db, user: str, name: str) -> dict[int, tuple]:
    """Press 规划巡逻 with the default teams and check the stored routes; them."""
    mark = last_audit(db)
    with page.expect_response("**/api/border/patrols", timeout=90_000) as answer:
        page.click("#sg-plan")
    assert answer.value.status == 200, answer.value.text()
    ids = json.dumps(sorted(f["id"] for f in answer.value.json()["features"] if "id" in f),
                     separators=(",", ":"))
    wait_for(page, f"{BORDER}.state.plan !== null && {BORDER}.state.busy === 0 && "
             f"JSON.stringify({BORDER}.state.plan.features.filter(f => 'id' in f)"
             f".map(f => f.id).sort((x, y) => x - y)) === '{ids}'")
    page.wait_for_selector("#sg-message.ok, #sg-message.error")
    assert "error" not in page.get_attribute("#sg-message", "class"), \
        page.text_content("#sg-message")
    shot(page, name)
    plan = page.evaluate(f"{BORDER}.state.plan")
    a, b = plan["parameters"]["a"], plan["parameters"]["b"]
    border = "-".join(sorted((a, b)))
    stored = routes(db, border)
    drawn = {f["id"] for f in plan["features"] if f["properties"]["kind"] == "route"}
    assert set(stored) == drawn and drawn
    # both sides' teams: the default two each, numbered from 1, named by their city
    teams = {(city, team) for city, team, _n in stored.values()}
    assert {city for city, _t in teams} == {a, b}
    assert teams <= {(c, t) for c in (a, b) for t in (1, 2)}
    assert all(n.endswith(f"第{t}巡逻队") for _c, t, n in stored.values())
    with db.connect() as conn:
        audited = conn.execute(text(
            "SELECT actor, action, feature_id FROM audit WHERE layer = 'patrol_routes' "
            "AND id > :m"), {"m": mark}).all()
    assert {(r[0], r[2]) for r in audited if r[1] == "insert"} == {(user, i) for i in stored}
    return stored


def border_day(page, db, user: str) -> str:
    """Open the border page from the overview's header, plan twice; the border's key."""
    page.click("#sg-border-link")
    page.wait_for_url("**/map/border**")
    page.wait_for_selector("#sg-message.ok, #sg-message.error", timeout=90_000)
    assert "error" not in page.get_attribute("#sg-message", "class"), \
        page.text_content("#sg-message")
    drawn = page.evaluate(f"{BORDER}.state.border")
    a, b = drawn["a"], drawn["b"]
    sides = {f["properties"]["side"] for f in drawn["zone"]["features"]}
    assert sides == {a, b} and drawn["length_m"] > 1000
    with db.connect() as conn:  # a real pair: the two share a border
        shared = conn.execute(text(
            "SELECT ST_Length(ST_Intersection(ST_Boundary(x.geom), ST_Boundary(y.geom))"
            "::geography) FROM jurisdictions x, jurisdictions y WHERE x.code = :a "
            "AND y.code = :b"), {"a": a, "b": b}).scalar_one()
    assert shared > 1000, (a, b, shared)
    assert (page.input_value("#sg-teams-a"), page.input_value("#sg-teams-b")) == ("2", "2")
    shot(page, f"{user}-border-02-zone")
    first = plan_patrols(page, db, user, f"{user}-border-03-plan")
    again = plan_patrols(page, db, user, f"{user}-border-04-planned-again")
    # planned again: the earlier routes are gone (deleted, audited), new ones in their place
    assert not set(first) & set(again)
    assert sorted(v[:2] for v in again.values()) == sorted(v[:2] for v in first.values())
    with db.connect() as conn:
        deleted = conn.execute(text(
            "SELECT feature_id FROM audit WHERE layer = 'patrol_routes' AND action = 'delete' "
            "AND feature_id = ANY(:i)"), {"i": list(first)}).scalars().all()
        assert sorted(deleted) == sorted(first)
        assert conn.execute(text("SELECT count(*) FROM patrol_routes WHERE id = ANY(:i)"),
                            {"i": list(first)}).scalar_one() == 0
    assert page.errors == []
    return "-".join(sorted((a, b)))


def test_the_partners_day(city_server):
    server, db = city_server
    started = time.monotonic()
    with logged_in(server, "partner", "/map") as page:
        shot(page, "partner-01-overview")
        assert border_day(page, db, "partner") == "430100-430300"
    print(f"partner's day: {time.monotonic() - started:.1f} s")


# --- the police officer's day -------------------------------------------------------

CELLS = f"""() => {{
  const out = [];
  {ANALYSIS}.cells.eachLayer(g => g.eachLayer && g.eachLayer(l => out.push(l)));
  return out.length;
}}"""


def runs(db) -> list[tuple]:
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT id, kind, jurisdiction_code, created_by FROM hotspot_runs ORDER BY id"))]


def run_analysis(page, db, method: str) -> tuple:
    """Choose the method, press 运行 and wait for the cells; the run stored."""
    before = runs(db)
    page.select_option("#sg-method", method)
    page.click("#sg-run")
    page.wait_for_selector("#sg-message.ok, #sg-message.error", timeout=90_000)
    assert "error" not in page.get_attribute("#sg-message", "class"), \
        page.text_content("#sg-message")
    wait_for(page, f"{ANALYSIS}.state.busy === 0" if page.evaluate(
        f"'busy' in {ANALYSIS}.state") else "true")
    after = runs(db)
    assert len(after) == len(before) + 1
    assert after[-1][2:] == ("430100", "police")
    return after[-1]


def busiest_cell(page) -> tuple[float, float]:
    """The screen point of the middle of the cell with the most incidents."""
    return page.evaluate(f"""() => {{
      const s = {ANALYSIS};
      let best = null;
      s.cells.eachLayer(g => g.eachLayer && g.eachLayer(l => {{
        if (l.feature && (!best || l.feature.properties.count > best.feature.properties.count))
          best = l;
      }}));
      const p = s.map.latLngToContainerPoint(best.getBounds().getCenter());
      const r = s.map.getContainer().getBoundingClientRect();
      return [p.x + r.left, p.y + r.top];
    }}""")


def test_the_police_officers_day(city_server):
    server, db = city_server
    started = time.monotonic()
    timings = {}
    with logged_in(server, "police", "/map") as page:
        shot(page, "police-01-overview")
        page.click("#sg-analysis-link")
        page.wait_for_url("**/map/analysis**")
        page.wait_for_selector(".leaflet-sg-outline-pane path", state="attached")
        page.fill("#sg-from", "2025-11-01")
        page.fill("#sg-to", "2026-10-31")
        shot(page, "police-02-analysis")

        # Gi*, then a click on the busiest cell: its counts and monthly trend
        t0 = time.monotonic()
        run = run_analysis(page, db, "gi")
        timings["gi"] = time.monotonic() - t0
        shown = page.evaluate(f"{ANALYSIS}.state.last.features.length")
        assert page.evaluate(CELLS) > 0 and shown > 0
        assert page.locator("#sg-legend div").first.text_content() == "Gi* 热点分析 (置信度)"
        shot(page, "police-03-gi")
        page.mouse.click(*busiest_cell(page))
        page.wait_for_selector(".leaflet-popup-content svg.sg-trend")
        wait_for(page, "getComputedStyle(document.querySelector('.leaflet-popup')).opacity"
                 " === '1'")
        page.wait_for_timeout(300)  # the map's pan to show the whole popup
        popup = page.text_content(".leaflet-popup-content")
        assert page.locator(".leaflet-popup-content th", has_text="·").count() >= 2
        shot(page, "police-04-cell")
        busiest = page.evaluate(f"""() => {{ let n = 0; {ANALYSIS}.cells.eachLayer(g =>
          g.eachLayer && g.eachLayer(l => {{ if (l.feature) n = Math.max(n,
          l.feature.properties.count); }})); return n; }}""")
        assert str(busiest) in popup
        page.keyboard.press("Escape")
        with db.connect() as conn:
            stored = conn.execute(text("SELECT parameters, summary FROM hotspot_runs "
                                       "WHERE id = :i"), {"i": run[0]}).one()
        # the period as chosen, in local time, its last day included
        assert (stored[0]["from"], stored[0]["to"]) == ("2025-11-01T00:00:00+08:00",
                                                        "2026-11-01T00:00:00+08:00")

        # KDE, then emerging hot spots over the same year
        t0 = time.monotonic()
        run = run_analysis(page, db, "kde")
        timings["kde"] = time.monotonic() - t0
        assert page.evaluate(CELLS) > 0
        shot(page, "police-05-kde")
        t0 = time.monotonic()
        run = run_analysis(page, db, "emerging")
        timings["emerging"] = time.monotonic() - t0
        wait_for(page, f"{ANALYSIS}.state.last.steps !== undefined")
        assert page.evaluate(CELLS) > 0 and page.locator("#sg-time").is_visible()
        shot(page, "police-06-emerging")
        assert page.errors == []

        # coverage of the city's cameras, from the overview's header
        page.click("#sg-panel a[href^='/map?']")  # 总图
        page.wait_for_url("**/map?**")
        t0 = time.monotonic()
        page.click("#sg-coverage-link")
        page.wait_for_url("**/map/coverage**")
        page.wait_for_selector("#sg-message.ok, #sg-message.error", timeout=90_000)
        assert "error" not in page.get_attribute("#sg-message", "class"), \
            page.text_content("#sg-message")
        wait_for(page, f"{COVERAGE}.state.busy === 0 && {COVERAGE}.state.views")
        timings["coverage"] = time.monotonic() - t0
        base = page.evaluate(f"{COVERAGE}.state.last.summary")
        figures = page.text_content("#sg-summary")
        assert f"{100 * base['covered_ratio']:.1f}%" in figures
        shot(page, "police-07-coverage")
        code = switch_a_camera_off(page)
        after = page.evaluate(f"{COVERAGE}.state.last")
        assert after["after"] < after["before"] == base["covered_ratio"]
        now = page.text_content("#sg-summary")
        assert now != figures and "→" in now
        assert f"{100 * after['after']:.1f}%" in now
        # the targets the camera watched alone are shown with their lower share
        fell = [f for f in after["features"]
                if f["properties"]["covered_ratio"] < f["properties"]["covered_ratio_before"]]
        assert fell
        shot(page, "police-09-switched-off")
        with db.connect() as conn:  # a what-if: the camera stays as stored
            assert conn.execute(text("SELECT status FROM cameras WHERE code = :c"),
                                {"c": code}).scalar_one() == "online"
        page.click("#sg-reset")
        wait_for(page, f"{COVERAGE}.state.off.size === 0 && "
                 f"{COVERAGE}.state.last.before === undefined && {COVERAGE}.state.busy === 0")

        # siting, then the best proposal added to the plan: stored as a planned camera
        with db.connect() as conn:
            cameras = conn.execute(text("SELECT count(*) FROM cameras")).scalar_one()
        page.fill("#sg-k", "3")
        t0 = time.monotonic()
        page.click("#sg-siting")
        page.wait_for_selector("#sg-proposals li", timeout=90_000)
        timings["siting"] = time.monotonic() - t0
        assert page.locator("#sg-proposals li").count() == 3
        proposed = page.evaluate(f"{COVERAGE}.state.proposed[0]")
        shot(page, "police-10-siting")
        page.locator("#sg-proposals .sg-add-plan").first.click()
        page.wait_for_selector("#sg-proposals .sg-add-plan[disabled]")
        wait_for(page, f"{COVERAGE}.state.busy === 0")
        shot(page, "police-11-added-to-plan")
        with db.connect() as conn:
            rows = conn.execute(text(
                "SELECT code, status, bearing, fov, range_m, ST_X(geom), ST_Y(geom) "
                "FROM cameras WHERE code LIKE 'PLAN-430100-%'")).all()
            audited = conn.execute(text(
                "SELECT actor, action FROM audit WHERE layer = 'cameras' AND feature_id = "
                "(SELECT id FROM cameras WHERE code LIKE 'PLAN-430100-%')")).all()
            assert conn.execute(text("SELECT count(*) FROM cameras")).scalar_one() == \
                cameras + 1
        (code, status, bearing, fov, range_m, lon, lat), = rows
        p = proposed["properties"]
        assert code.endswith(f"-{p['rank']}") and status == "planned"
        assert (bearing, fov, range_m) == pytest.approx((p["bearing"], p["fov"], p["range_m"]))
        assert (lon, lat) == pytest.approx(proposed["geometry"]["coordinates"], abs=1e-6)
        assert [tuple(r) for r in audited] == [("police", "insert")]
        assert code in page.text_content("#sg-message")
        assert page.errors == []

        # the month's notice, from the map's link
        page.click("#sg-panel a[href^='/map?']")
        page.wait_for_url("**/map?**")
        link = page.locator("#sg-notice-link")
        assert "治安状况告知" in link.text_content()
        with page.expect_navigation() as shown:
            link.click()
        assert shown.value.status == 200
        assert "jurisdiction=430100" in page.url and "month=2026-10" in page.url
        assert "长沙市2026年10月治安状况告知" in page.content()
        shot(page, "police-12-notice")
        assert page.errors == []

        # border patrols with the neighbouring district, from the overview
        page.go_back()
        page.wait_for_url("**/map?**")
        t0 = time.monotonic()
        partners = routes(db, "430100-430300")
        border = border_day(page, db, "police")
        assert border.startswith("4301") and border[7:11] == "4301"  # two districts
        assert routes(db, "430100-430300") == partners  # the partner's (run before) stay
        timings["border"] = time.monotonic() - t0
    print(f"police's day: {timings}, {time.monotonic() - started:.1f} s")


def alone_watching(page) -> list[tuple[str, tuple[float, float]]]:
    """The watching cameras with the most target area no other camera sees (read from
    the page's views and targets), most first: code and (lon, lat)."""
    views = page.evaluate(f"{COVERAGE}.state.views.features.filter(f => "
                          "f.properties.watching && f.geometry)")
    targets = page.evaluate(f"{COVERAGE}.state.base.features.map(f => f.geometry)")
    area = shapely.union_all([shapely.geometry.shape(g).buffer(0) for g in targets])
    shapes = [shapely.geometry.shape(f["geometry"]) for f in views]
    tree = shapely.STRtree(shapes)
    alone = []
    for i, (f, view) in enumerate(zip(views, shapes, strict=True)):
        seen = view.intersection(area)
        if seen.is_empty:
            continue
        others = [shapes[j] for j in tree.query(view) if j != i]
        unique = seen.difference(shapely.union_all(others)) if others else seen
        p = f["properties"]
        alone.append((unique.area, p["code"], (p["lon"], p["lat"])))
    alone.sort(reverse=True)
    return [(code, xy) for _a, code, xy in alone]


def switch_a_camera_off(page) -> str:
    """Zoom in on a camera that watches a target and switch it off from its popup, by
    mouse; its code, once the what-if is shown."""
    candidates = [(code, xy[0], xy[1]) for code, xy in alone_watching(page)[:8]]
    page.focus(".leaflet-container")
    for code, lon, lat in candidates:
        for _ in range(8):  # out with the keyboard until the camera shows
            x, y = pixel(page, COVERAGE, lon, lat)
            if 40 < x < 900 and 40 < y < 860:
                break
            page.focus(".leaflet-container")
            page.keyboard.press("-")
            page.wait_for_timeout(350)
        for _ in range(12):  # in with the wheel over the camera
            if page.evaluate(f"{COVERAGE}.map.getZoom()") >= 17:
                break
            page.mouse.move(*pixel(page, COVERAGE, lon, lat))
            page.mouse.wheel(0, -240)
            page.wait_for_timeout(350)
        wait_for(page, f"{COVERAGE}.state.busy === 0")
        page.mouse.click(*pixel(page, COVERAGE, lon, lat))
        button = page.locator(".leaflet-popup-content .sg-switch-off")
        try:
            button.wait_for(timeout=3000)
        except Exception:  # noqa: BLE001 -- another layer took the click: the next camera
            page.keyboard.press("Escape")
            continue
        if button.get_attribute("data-code") != code:  # another camera's view on top
            page.keyboard.press("Escape")
            continue
        wait_for(page, "getComputedStyle(document.querySelector('.leaflet-popup')).opacity"
                 " === '1'")
        shot(page, "police-08-camera-popup")
        button.click()
        wait_for(page, f"{COVERAGE}.state.last.before !== undefined && "
                 f"{COVERAGE}.state.busy === 0", timeout=90)
        page.wait_for_selector("#sg-message.ok")
        return code
    raise AssertionError("no camera that watches a target took a click")
