"""The border page in headless Chromium: the partner sees the zone of both sides, the
crossings coloured by cover, plans patrols and gets the printable sheet; the legend
says which server each side's data came from (a partner city's server that is down is
said, and refuses the plan; the legend across two servers is in test_two_cities.py).
Screenshots go to test-output/."""

import socket

import pytest
from sqlalchemy import text

from ..conftest import Server
from .borderpage import STATE
from .borderpage import clock as _clock
from .borderpage import dashed_sides as _dashed_sides
from .borderpage import open_popup as _open_popup
from .borderpage import shot as _shot
from .browser import OUTPUT, logged_in, wait_for

pytestmark = [pytest.mark.db, pytest.mark.browser]



def _colours(page, group):
    return page.evaluate(f"""() => {{
      const out = [];
      {STATE}.{group}.eachLayer(g => g.eachLayer && g.eachLayer(l => {{
        if (l.feature && l.feature.geometry.type === 'Point' && 'covered' in l.feature.properties)
          out.push([l.feature.properties.covered, l.options.fillColor]);
      }}));
      return out;
    }}""")


def test_the_partner_sees_the_border_and_plans_patrols(server, api):
    with logged_in(server, "partner", "/map/border?a=430100&b=430300&width=1500") as page:
        page.wait_for_selector("#sg-message.ok")
        answer = api("partner", "/api/border?a=430100&b=430300&width=1500").json()
        drawn = page.evaluate(f"{STATE}.state.border")
        assert drawn["parameters"] == answer["parameters"], drawn["parameters"]
        assert drawn["coverage"] == answer["coverage"]
        colours = _colours(page, "marks")
        assert len(colours) == len(answer["crossings"]["features"]) > 0
        assert all(colour == ("#1a9641" if covered else "#d7191c")
                   for covered, colour in colours)
        summary = page.text_content("#sg-summary")
        assert f"{answer['coverage']['uncovered_crossings']} 无人看守" in summary
        # the legend says which side is which city
        sides = {f["properties"]["side"]: f["properties"]["name"]
                 for f in answer["zone"]["features"]}
        key = page.locator("#sg-legend div").all_text_contents()
        assert key[1:3] == [f" {sides['430100']}一侧", f" {sides['430300']}一侧"]
        # the cameras seeing into the zone come with the answer, all from this server
        assert answer["cameras"]["features"]
        assert page.locator("path.sg-camera").count() == len(answer["cameras"]["features"])
        assert page.locator("path.sg-camera-peer").count() == 0
        assert " 摄像机" in key and not any("对方服务器" in k for k in key)
        popup = _open_popup(page, "path.sg-camera")
        assert "数据来源本地 (本服务器)" in popup and any(
            f["properties"]["code"] in popup for f in answer["cameras"]["features"])
        _shot(page, "border-camera-local.png")
        page.click(".leaflet-popup-close-button")
        page.wait_for_timeout(400)  # the popup fades out
        page.screenshot(path=str(OUTPUT / "border-zone.png"))

        page.fill("#sg-teams-a", "2")
        page.fill("#sg-teams-b", "1")
        page.click("#sg-plan")
        wait_for(page, f"{STATE}.state.plan !== null")
        page.wait_for_selector("#sg-message.ok")
        plan = page.evaluate(f"{STATE}.state.plan")
        sectors = [f for f in plan["features"] if f["properties"]["kind"] == "sector"]
        assert len(sectors) == 3 and plan["summary"]["balance"] <= 1.25
        # the key adds each team, by its city's name
        assert f"{sides['430300']} #1" in page.text_content("#sg-legend")
        rows = page.locator("#sg-plan-sheet tr").count()
        assert rows == 1 + len(sectors)
        assert not page.locator("#sg-print").is_disabled()
        page.emulate_media(media="print")
        assert page.locator("#sg-plan-sheet").is_visible()
        assert not page.locator("#sg-panel").is_visible()
        page.screenshot(path=str(OUTPUT / "border-plan-print.png"))
        assert page.errors == []


def _unreached(plan: dict) -> list[dict]:
    return [stop for f in plan["features"] if f["properties"]["kind"] == "sector"
            for stop in f["properties"]["unreached"]]


def _plan(page, teams_a: str, teams_b: str) -> dict:
    page.wait_for_selector("#sg-message.ok")
    page.fill("#sg-teams-a", teams_a)
    page.fill("#sg-teams-b", teams_b)
    page.click("#sg-plan")
    wait_for(page, f"{STATE}.state.plan !== null")
    page.wait_for_selector("#sg-message.ok")
    return page.evaluate(f"{STATE}.state.plan")


def test_the_plan_marks_and_lists_the_stops_its_routes_could_not_reach(server):
    with logged_in(server, "partner", "/map/border?a=430100&b=430300&width=1500") as page:
        plan = _plan(page, "2", "1")
        missed = _unreached(plan)
        assert missed, "on the demo a sector ends far from any road"
        items = page.locator("#sg-unreached li").all_text_contents()
        assert len(items) == len(missed)
        for item, stop in zip(items, missed, strict=True):  # the API's words, on the page
            assert item.endswith(" · " + stop["why"]), (item, stop["why"])
        assert page.locator("path.sg-unreached-stop").count() == len(missed)
        assert "个途经点未到达" in page.text_content("#sg-message")
        # the list entry takes the map to the stop and says why there
        page.click("#sg-unreached li button >> nth=0")
        popup = page.wait_for_selector(".leaflet-popup-content")
        assert missed[0]["why"] in popup.text_content()
        assert "未到达的途经点" in popup.text_content()
        wait_for(page, "getComputedStyle(document.querySelector('.leaflet-popup')).opacity"
                 " === '1'")
        page.wait_for_timeout(300)  # the map's pan to show the whole popup
        page.screenshot(path=str(OUTPUT / "border-unreached.png"))
        page.click(".leaflet-popup-close-button")
        page.click("path.sg-unreached-stop >> nth=0")  # the ring itself answers too
        assert missed[0]["why"] in page.wait_for_selector(".leaflet-popup-content") \
            .text_content()
        assert page.errors == []

        page.click("#sg-panel a:has-text('English')")
        page.wait_for_url("**lang=en**")
        plan = _plan(page, "2", "1")
        english = page.locator("#sg-unreached li").all_text_contents()
        assert len(english) == len(_unreached(plan)) > 0
        for item, stop in zip(english, _unreached(plan), strict=True):
            kind = {"start": "sector start", "end": "sector end", "crossing": "road crossing",
                    "hot_cell": "hot cell centre"}[stop["kind"]]
            assert f" · {kind}: " in item
            if stop["reason"] == "no_road":
                assert f"is {int(stop['distance_m'] + 0.5)} m away, more than 500 m" in item
        page.screenshot(path=str(OUTPUT / "border-unreached-en.png"))
        assert page.errors == []


NEIGHBOURS = {("430100", "430200"), ("430100", "430300"), ("430200", "430300"),
              ("430102", "430103"), ("430102", "430202"), ("430102", "430203"),
              ("430102", "430302"), ("430103", "430302"), ("430103", "430303"),
              ("430202", "430203"), ("430202", "430302"), ("430302", "430303")}


def _drawn_pair(page) -> tuple[str, str]:
    """The pair the page drew, once it has: no error, both sides of a zone."""
    page.wait_for_selector("#sg-message.ok, #sg-message.error")
    assert "error" not in page.get_attribute("#sg-message", "class"), \
        page.text_content("#sg-message")
    drawn = page.evaluate(f"{STATE}.state.border")
    sides = {f["properties"]["side"] for f in drawn["zone"]["features"]}
    assert sides == {drawn["a"], drawn["b"]} and drawn["length_m"] > 1000
    assert page.evaluate(f"{STATE}.zone.getLayers().length") > 0
    return drawn["a"], drawn["b"]


def _offered(page, chooser: str) -> list[str]:
    return page.eval_on_selector_all(f"#sg-{chooser} option", "os => os.map(o => o.value)")


@pytest.mark.parametrize(("user", "expect"), [
    ("police", {("430102", "430103")}),  # 芙蓉区 / 天心区: Changsha's own districts
    ("partner", {("430100", "430300")}),
    ("admin", NEIGHBOURS),
])
def test_the_header_link_opens_a_pair_of_neighbours(server, user, expect):
    with logged_in(server, user, "/map") as page:
        page.click("#sg-border-link")
        page.wait_for_url("**/map/border**")
        a, b = _drawn_pair(page)
        assert tuple(sorted((a, b))) in expect
        chosen = page.input_value("#sg-a")
        offered = _offered(page, "b")
        assert b in offered, offered
        for code in offered:  # B offers only neighbours of A
            assert tuple(sorted((chosen, code))) in expect
        page.screenshot(path=str(OUTPUT / f"border-open-{user}.png"))
        assert page.errors == []


def test_choosing_another_city_offers_only_its_neighbours(server):
    with logged_in(server, "admin", "/map/border") as page:
        _drawn_pair(page)
        page.click("#sg-a")
        page.select_option("#sg-a", "430300")
        assert sorted(_offered(page, "b")) == ["430100", "430200"]
        page.select_option("#sg-b", "430200")
        page.click("#sg-show")
        wait_for(page, f"{STATE}.state.border.a === '430300'")
        assert _drawn_pair(page) == ("430300", "430200")
        page.fill("#sg-width", "abc")
        page.click("#sg-show")
        page.wait_for_selector("#sg-message.error")
        assert "每侧宽度须为大于 0" in page.text_content("#sg-message")
        page.screenshot(path=str(OUTPUT / "border-admin-xiangtan-zhuzhou.png"))
        assert page.errors == []


def test_a_pair_not_to_be_opened_is_said_in_the_page_language(server):
    with logged_in(server, "police", "/map/border?a=430100&b=430102") as page:
        assert _drawn_pair(page) == ("430102", "430103")
        notice = page.text_content("#sg-notice")
        assert "430100 与 芙蓉区 不是您可选的一对相邻辖区，现显示 芙蓉区 / 天心区" in notice, notice
        assert "not neighbours" not in page.content()
        page.screenshot(path=str(OUTPUT / "border-not-a-pair.png"))
    with logged_in(server, "police", "/map/border?a=430100&b=430300&lang=en") as page:
        _drawn_pair(page)
        assert "are not a pair of neighbours you may open" in page.text_content("#sg-notice")


DISTRICT_USER = ("furong.police", "furong-police-2026")


@pytest.fixture(scope="module")
def district_police(db, demo_small) -> tuple[str, str]:
    """A police officer of one district (芙蓉区), whose scope holds no two neighbours."""
    from layers.users import add_user, remove_user

    with db.begin() as conn:
        add_user(conn, DISTRICT_USER[0], "police", DISTRICT_USER[1], "430102")
    yield DISTRICT_USER
    with db.begin() as conn:
        remove_user(conn, DISTRICT_USER[0])


def test_a_user_with_no_neighbours_has_no_border_link(server, district_police):
    name, password = district_police
    with logged_in(server, name, "/map", password=password) as page:
        header = page.text_content("#sg-header")
        assert "热点分析" in header and "边界联防" not in header
        assert page.locator("#sg-border-link").count() == 0
        page.screenshot(path=str(OUTPUT / "border-no-link.png"))
        page.goto(f"{server}/map/border")
        assert "没有两个相邻的市或区县" in page.text_content("#sg-no-pairs")
        assert page.errors == []


def _outlines_drawn(page) -> list[str]:
    """Codes of the outlines drawn on the map (paths with their parts rendered)."""
    return page.evaluate(f"""() => {{
      const out = [];
      {STATE}.outline.eachLayer(l => {{ if (l._map && l._parts && l._parts.length)
        out.push(l.feature.properties.code); }});
      return out.sort();
    }}""")


def test_the_outlines_are_drawn_before_the_border_is_computed(server):
    with logged_in(server, "admin", "/map/border?a=430100&b=430300") as page:
        held = []
        page.route("**/api/border?*", lambda route: held.append(route))
        page.reload()
        wait_for(page, f"{STATE} && {STATE}.outline.getLayers().length > 0")
        wait_for(page, f"{STATE}.outline.getLayers().every(l => l._parts && l._parts.length)")
        # the border is still being computed: only the outlines are on the map
        assert _outlines_drawn(page) == ["430100", "430300"]
        assert page.evaluate(f"{STATE}.zone.getLayers().length") == 0
        assert page.evaluate(f"{STATE}.state.border") is None
        page.wait_for_timeout(200)
        for route in held:
            route.continue_()
        page.unroute("**/api/border?*")
        page.wait_for_selector("#sg-message.ok")
        assert page.evaluate(f"{STATE}.zone.getLayers().length") > 0
        assert _outlines_drawn(page) == ["430100", "430300"]  # the pair shown: kept
        # another pair: the first pair's outlines go
        page.select_option("#sg-b", "430200")
        page.click("#sg-show")
        wait_for(page, f"{STATE}.state.border && {STATE}.state.border.b === '430200'")
        assert _outlines_drawn(page) == []
        assert page.errors == []


# --- the legend: where each side's data came from -------------------------------------

def test_the_legend_says_both_sides_come_from_this_server(server):
    with logged_in(server, "partner", "/map/border?a=430100&b=430300&width=1500") as page:
        page.wait_for_selector("#sg-message.ok")
        drawn = page.evaluate(f"{STATE}.state.border")
        sources = drawn.get("sources")
        stamp = "" if not sources else f" · 截至 {_clock(sources['430100']['as_of'])}"
        if sources:  # one database: both sides local
            assert {s["server"] for s in sources.values()} == {"local"}
        assert page.locator("#sg-legend-box").is_visible()
        assert page.text_content("#sg-legend-box .sg-legend-head").strip() == "图例"
        lines = page.locator("#sg-sources div").all_text_contents()
        assert lines == ["数据来源", "两侧数据均来自本服务器" + stamp], lines
        assert page.locator(".sg-source-warn").count() == 0
        assert _dashed_sides(page) == {"430100": False, "430300": False}
        # shown again from the keyboard: the legend is redrawn, not added to
        page.click("#sg-width")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "sg-show"
        page.keyboard.press("Enter")
        wait_for(page, "document.getElementById('sg-message').textContent === '计算中…'"
                 " || document.querySelector('#sg-message.ok')")
        page.wait_for_selector("#sg-message.ok")
        assert page.locator("#sg-sources div").count() == 2
        _shot(page, "border-legend-local.png")
        assert page.errors == []

        page.click("#sg-panel a:has-text('English')")
        page.wait_for_url("**lang=en**")
        page.wait_for_selector("#sg-message.ok")
        drawn = page.evaluate(f"{STATE}.state.border")
        stamp = "" if not drawn.get("sources") else \
            f" · as of {_clock(drawn['sources']['430100']['as_of'])}"
        assert page.text_content("#sg-legend-box .sg-legend-head").strip() == "Legend"
        assert page.locator("#sg-sources div").all_text_contents() == [
            "Where the data come from", "both sides from this server" + stamp]
        _shot(page, "border-legend-local-en.png")
        assert page.errors == []


@pytest.fixture(scope="module")
def peer_down(db, db_url, demo_small, tmp_path_factory):
    """A server of its own whose database names a peer for 430100-430300 that is down.

    Xiangtan's side is to come from ``xiangtan`` at a loopback port nobody listens on;
    its token file is in the server's own SAFEGRID_HOME. Yields (server URL, peer URL).
    """
    home = tmp_path_factory.mktemp("peerhome")
    (home / "peers").mkdir(mode=0o700)
    token = home / "peers" / "xiangtan.token"
    token.write_text("a-token-of-xiangtan\n")
    token.chmod(0o600)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{s.getsockname()[1]}"
    with db.begin() as conn:
        conn.execute(text("INSERT INTO peers (name, url, a, b, added_by) "
                          "VALUES ('xiangtan', :u, '430100', '430300', 'admin')"), {"u": gone})
    own = Server(db_url, home / "serve.log", {"SAFEGRID_HOME": str(home)})
    try:
        yield own.url, gone
    finally:
        own.stop()
        with db.begin() as conn:
            conn.execute(text("DELETE FROM peers WHERE name = 'xiangtan'"))


def _routes(db) -> list[tuple]:
    with db.connect() as conn:
        return conn.execute(text("SELECT id, version FROM patrol_routes "
                                 "WHERE border = '430100-430300' ORDER BY id")).all()


def test_a_partner_server_that_is_down_is_said_and_refuses_the_plan(db, peer_down):
    url, gone = peer_down
    routes = _routes(db)
    with logged_in(url, "admin", "/map/border?a=430100&b=430300&width=1500") as page:
        page.wait_for_selector("#sg-message.ok, #sg-message.error")
        drawn = page.evaluate(f"{STATE}.state.border")
        ours, theirs = drawn["sources"]["430100"], drawn["sources"]["430300"]
        assert ours["server"] == "local" and theirs["server"] == "peer"
        assert theirs["as_of"] is None and theirs["error"]
        names = {f["properties"]["side"]: f["properties"]["name"]
                 for f in drawn["zone"]["features"]}
        lines = page.locator("#sg-sources div").all_text_contents()
        assert lines == [
            "数据来源",
            f" {names['430100']}一侧：本地 (本服务器) · 截至 {_clock(ours['as_of'])}",
            f" {names['430300']}一侧：对方服务器 xiangtan ({gone})",
            f"⚠ 对方服务器未响应：{theirs['error'].rstrip('.。 ')}，仅显示本方"], lines
        assert page.locator(".sg-source-warn").is_visible()
        assert page.get_attribute(".sg-source-warn", "role") == "alert"
        assert _dashed_sides(page).get("430300") is True
        assert _dashed_sides(page).get("430100") is False
        _shot(page, "border-legend-peer-down.png")

        page.fill("#sg-teams-a", "1")
        page.fill("#sg-teams-b", "1")
        page.click("#sg-plan")
        page.wait_for_selector("#sg-message.error")
        said = page.text_content("#sg-message")
        assert said.startswith("未完成 (502)：对方市的服务器未能完成，方案未写入（"), said
        assert "xiangtan" in said
        _shot(page, "border-plan-peer-down.png")
        assert _routes(db) == routes  # nothing written
        assert page.errors == []

        page.click("#sg-panel a:has-text('English')")
        page.wait_for_url("**lang=en**")
        page.wait_for_selector(".sg-source-warn")
        warning = page.text_content(".sg-source-warn")
        assert warning.startswith("⚠ the partner server did not answer: ")
        assert warning.endswith("; showing our side only")
        assert f"partner server xiangtan ({gone})" in page.text_content("#sg-sources")
        _shot(page, "border-legend-peer-down-en.png")
        assert page.errors == []
