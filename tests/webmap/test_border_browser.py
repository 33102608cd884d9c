"""The border page in headless Chromium: the partner sees the zone of both sides, the
crossings coloured by cover, plans patrols and gets the printable sheet. Screenshots
go to test-output/."""

import pytest

from .browser import OUTPUT, logged_in, wait_for

pytestmark = [pytest.mark.db, pytest.mark.browser]

STATE = "window.safegridBorderState"


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
        page.screenshot(path=str(OUTPUT / "border-zone.png"))

        page.fill("#sg-teams-a", "2")
        page.fill("#sg-teams-b", "1")
        page.click("#sg-plan")
        wait_for(page, f"{STATE}.state.plan !== null")
        page.wait_for_selector("#sg-message.ok")
        plan = page.evaluate(f"{STATE}.state.plan")
        sectors = [f for f in plan["features"] if f["properties"]["kind"] == "sector"]
        assert len(sectors) == 3 and plan["summary"]["balance"] <= 1.25
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
