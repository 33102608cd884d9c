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
