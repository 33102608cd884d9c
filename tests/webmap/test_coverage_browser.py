"""The coverage map in headless Chromium: fields of view (offline greyed), targets by
covered share, gaps by risk, a camera switched off from its popup, proposed cameras and
"add to plan". Screenshots go to test-output/."""

import pytest
from sqlalchemy import text

from .browser import OUTPUT, logged_in, wait_for

pytestmark = [pytest.mark.db, pytest.mark.browser]

AREA = "430102"
STATE = "window.safegridCoverageState"


def _drawn(page, group):
    return page.evaluate(f"""() => {{
      let n = 0;
      {STATE}.{group}.eachLayer(g => {{ n += g.getLayers ? g.getLayers().length : 1; }});
      return n;
    }}""")


# Each drawn target's id and the covered share it is shown with.
SHOWN = f"""() => {{
  const out = {{}};
  {STATE}.targets.eachLayer(g => g.eachLayer && g.eachLayer(l => {{
    out[l.feature.id] = l.shown.covered_ratio; }}));
  return out;
}}"""
# The colour each camera's view (not its dot) is drawn in, by code.
VIEW_COLOURS = f"""() => {{
  const out = {{}};
  {STATE}.views.eachLayer(g => g.eachLayer && g.eachLayer(l => {{
    out[l.feature.properties.code] = l.options.color; }}));
  return out;
}}"""


def test_coverage_gaps_what_if_and_siting_on_the_map(server, api, db):
    with logged_in(server, "police", f"/map/coverage?jurisdiction={AREA}") as page:
        asked = []
        page.on("request", lambda r: asked.append((r.method, r.url.split("/", 3)[3]))
                if "/api/" in r.url else None)  # the data asked for (not basemap tiles)
        page.wait_for_selector("#sg-message.ok")
        body = page.evaluate(f"{STATE}.state.last")
        answer = api("police", f"/api/coverage?jurisdiction={AREA}").json()
        assert body["summary"]["covered_ratio"] == answer["summary"]["covered_ratio"]
        assert f"{100 * answer['summary']['covered_ratio']:.1f}%" in \
            page.text_content("#sg-summary")
        assert _drawn(page, "targets") == len(answer["features"])
        views = page.evaluate(f"{STATE}.state.views.features")
        offline = [v for v in views if v["properties"]["status"] == "offline"]
        assert offline and not any(v["properties"]["watching"] for v in offline)
        grey = page.evaluate(f"""() => {{
          const out = [];
          {STATE}.views.eachLayer(g => g.eachLayer && g.eachLayer(l => {{
            if (l.feature && l.feature.properties.status === 'offline') out.push(l.options.color);
          }}));
          return out;
        }}""")
        assert grey and set(grey) == {"#8c8c8c"}
        key = page.locator("#sg-legend div").all_text_contents()
        assert key[:4] == ["摄像机状态", " 在线", " 离线", " 规划"]
        page.screenshot(path=str(OUTPUT / "coverage-targets.png"))

        # switch the busiest camera off from its popup: coverage can only fall
        busiest = max((v for v in views if v["properties"]["watching"]),
                      key=lambda v: v["properties"]["area_m2"])["properties"]
        page.evaluate(f"""() => {{
          {STATE}.views.eachLayer(g => g.eachLayer && g.eachLayer(l => {{
            if (l.feature && l.feature.properties.code === {busiest['code']!r}) l.openPopup();
          }}));
        }}""")
        asked.clear()
        page.click(".leaflet-popup-content .sg-switch-off")
        wait_for(page, f"{STATE}.state.last.before !== undefined")
        page.wait_for_selector("#sg-message.ok")
        after = page.evaluate(f"{STATE}.state.last")
        assert after["after"] <= after["before"] == answer["summary"]["covered_ratio"]
        assert "→" in page.text_content("#sg-summary")
        # only what changed came: the targets whose share fell and the one camera's view;
        # the page patched its layers (no views or targets loaded again)
        assert [m for m, url in asked] == ["POST"], asked
        assert [v["properties"]["code"] for v in after["views"]["features"]] == \
            [busiest["code"]]
        assert 0 < len(after["features"]) < len(answer["features"])
        shown = page.evaluate(SHOWN)
        assert len(shown) == len(answer["features"])
        for feature in after["features"]:
            assert shown[str(feature["id"])] == feature["properties"]["covered_ratio"] < \
                feature["properties"]["covered_ratio_before"]
        base = {str(f["id"]): f["properties"]["covered_ratio"] for f in answer["features"]}
        changed = {str(f["id"]) for f in after["features"]}
        assert {k: v for k, v in shown.items() if k not in changed} == \
            {k: v for k, v in base.items() if k not in changed}
        colours = page.evaluate(VIEW_COLOURS)
        assert colours[busiest["code"]] == "#8c8c8c"
        page.click("#sg-reset")
        wait_for(page, f"{STATE}.state.off.size === 0 && "
                               f"{STATE}.state.last.before === undefined")
        assert page.evaluate(SHOWN) == base  # all back, from what the page held
        assert page.evaluate(VIEW_COLOURS)[busiest["code"]] == "#ff7f00"
        assert [m for m, url in asked] == ["POST"], asked

        page.click("#sg-gaps")
        wait_for(page, f"{STATE}.state.mode === 'gaps' && "
                               f"{STATE}.state.last.summary.gaps !== undefined")
        gaps = page.evaluate(f"{STATE}.state.last")
        assert _drawn(page, "targets") == len(gaps["features"]) > 0
        page.screenshot(path=str(OUTPUT / "coverage-gaps.png"))

        page.fill("#sg-k", "3")
        page.click("#sg-siting")
        page.wait_for_selector("#sg-proposals li")
        assert page.locator("#sg-proposals li").count() == 3
        # the gain is rounded, with its unit: expected incidents newly watched
        gain = page.evaluate(f"{STATE}.state.proposed[0].properties.gain")
        assert f"{gain:.1f} 起(预计)" in page.locator("#sg-proposals li").first.text_content()
        asked.clear()
        page.locator("#sg-proposals .sg-add-plan").first.click()
        page.wait_for_selector("#sg-proposals .sg-add-plan[disabled]")
        wait_for(page, f"{STATE}.state.busy === 0")
        added = [url for m, url in asked if m == "GET"]  # only the new camera's view
        assert len(added) == 1 and "codes=PLAN-" in added[0], asked
        assert any(code.startswith(f"PLAN-{AREA}-") for code in page.evaluate(VIEW_COLOURS))
        page.screenshot(path=str(OUTPUT / "coverage-siting.png"))
        assert page.errors == []
    with db.begin() as conn:
        stored = conn.execute(text(
            "SELECT status, fov, range_m FROM cameras WHERE code LIKE :c"),
            {"c": f"PLAN-{AREA}-%"}).all()
        assert [tuple(r) for r in stored] == [("planned", 90.0, 60.0)]
        conn.execute(text("DELETE FROM cameras WHERE code LIKE :c"), {"c": f"PLAN-{AREA}-%"})


def test_the_notice_link_opens_the_notice_of_the_last_month_with_data(server, db):
    with db.connect() as conn:
        month, name = conn.execute(text(
            "SELECT max(to_char(i.occurred_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')), "
            "min(j.name) FROM incidents i, jurisdictions j WHERE j.code = :c "
            "AND ST_Intersects(i.geom, j.geom)"), {"c": AREA}).one()
    with logged_in(server, "police", f"/map/coverage?jurisdiction={AREA}&lang=en") as page:
        link = page.locator("#sg-notice-link")
        assert link.text_content() == "Monthly notice"
        with page.expect_navigation() as shown:
            link.click()
        assert shown.value.status == 200
        assert f"jurisdiction={AREA}&month={month}&lang=en" in page.url
        assert f"Security notice of {name}" in page.content()
        page.screenshot(path=str(OUTPUT / "coverage-notice.png"))
        assert page.errors == []
