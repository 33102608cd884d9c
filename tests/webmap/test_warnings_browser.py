"""Risk warnings on the maps, in headless Chromium, by mouse and keyboard.

The two towns of tests/layers/test_warnings.py in a database of their own, with a server
of their own, the times moved to the last few days (a near-repeat zone then is still
open now), and a school at B. An analyst of the west town's police opens a saved
emerging run, a saved near-repeat run and a saved risk levels run on the analysis map
and keeps each as a standing watch ("关注此分析"); two checks
(``layers.warnings.check_watches``, what ``safegrid warnings check`` runs) with a
cluster and a repeat at the school planted between them record warnings of each kind.
An officer then opens the police map: the count, the list, a warning's place on the
map, its acknowledgement (read back over the API), a refusal, Esc; the English page; a
planner sees the hot spots and places without the acknowledge button, a border partner
no panel and no refused request; on a phone the panel fits the screen.
Screenshots go to test-output/warnings/.
"""

from __future__ import annotations

import datetime as dt
import re

import geopandas as gpd
import pytest
import requests
import shapely
from shapely.geometry import shape
from sqlalchemy.engine import make_url

from layers import LAYERS
from layers.db import engine, migrate
from layers.hotspots import HotspotQuery, run_emerging
from layers.nearrepeat import NearRepeatQuery, run_near_repeat
from layers.riskgrade import RiskPlacesQuery, run_risk_places
from layers.store import write_features
from layers.users import add_user, issue_token, remove_user, user_by_name
from layers.validate import LOCAL_TZ, clean_features
from layers.warnings import check_watches
from tests.conftest import Server, fresh_database
from tests.layers.test_warnings import (
    HOT,
    SCATTER,
    USERS,
    WEST_TOWN,
    A,
    B,
    build_city,
    plant,
)

from .browser import OUTPUT, logged_in, wait_for

pytestmark = [pytest.mark.db, pytest.mark.browser]

SHOTS = OUTPUT / "warnings"
# the saved runs end at local midnight three days ago; the checks a day and two days later
T0 = dt.datetime.combine(dt.datetime.now(LOCAL_TZ).date() - dt.timedelta(days=3),
                         dt.time(), LOCAL_TZ)
T1, T2 = T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2)
PLANTED = T1 + dt.timedelta(hours=12)
PANEL = "#sg-warnings-panel"
ITEMS = "#sg-warnings-list li.sg-warning"
MAP = "window.safegridWarningsState.map"
PICKED = "window.safegridWarningsState.state.picked"


def _password(name: str) -> str:
    return f"{name}-pass-2026"


@pytest.fixture(scope="module")
def town(db_url, tmp_path_factory):
    """The towns, their incidents before T0, the two saved runs; a server and tokens."""
    url = fresh_database(f"{make_url(db_url).database}_warnui")
    migrate(url)
    build_city(url)
    school = gpd.GeoDataFrame(
        {"name": ["西镇小学"], "category": ["school"]},
        geometry=[shapely.box(B[0] - 0.0003, B[1] - 0.0003, B[0] + 0.0003, B[1] + 0.0003)],
        crs="EPSG:4326")
    write_features(engine(url), LAYERS["key_areas"], clean_features(school, LAYERS["key_areas"]))
    plant(url, [(A, T0 - dt.timedelta(days=3), "criminal")]
          + [(p, T0 - dt.timedelta(days=27, hours=-5) + dt.timedelta(days=k), "fraud")
             for k, p in enumerate(SCATTER)])
    with engine(url).begin() as conn:
        admin = user_by_name(conn, "townadmin")[0]
        start = T0 - dt.timedelta(days=28)
        emerging = run_emerging(conn, admin, HotspotQuery(
            WEST_TOWN, start, T0, category="fraud", cell=100.0), "week")["run"]
        near = run_near_repeat(conn, admin, HotspotQuery(
            WEST_TOWN, start, T0, category="criminal"),
            NearRepeatQuery(space_bands=(100.0, 200.0), time_bands=(7.0, 14.0),
                            permutations=0, band=(200.0, 7.0)))["run"]
        places = run_risk_places(conn, admin, RiskPlacesQuery(WEST_TOWN, start, T0))
        tokens = {name: issue_token(conn, name) for name in USERS}
    server = Server(url, tmp_path_factory.mktemp("warnui") / "serve.log")

    def call(user, path, method="GET", **kw):
        return requests.request(method, f"{server.url}{path}", timeout=120,
                                headers={"Authorization": f"Bearer {tokens[user]}"}, **kw)

    yield {"url": url, "server": server.url, "call": call, "emerging": emerging,
           "near": near, "places": places["run_id"],
           "level": places["key_areas"]["features"][0]["properties"]["risk_level"]}
    server.stop()


def _login(town, user: str, path: str, **kw):
    return logged_in(town["server"], user, path, password=_password(user), **kw)


def _watch_from_the_analysis_map(page, run: int, kind_words: str) -> str:
    """Open saved run ``run`` from the list and keep it as a watch by mouse; the message."""
    option = page.locator(f"#sg-runs option[value='{run}']")
    assert kind_words in option.text_content()
    page.select_option("#sg-runs", str(run))
    watch = page.locator("#sg-watch")
    watch.wait_for(state="visible")
    assert watch.text_content().strip() == "关注此分析"
    watch.click()
    page.wait_for_selector("#sg-watch:disabled")
    assert watch.text_content().strip() == "已关注"
    return page.text_content("#sg-message")


@pytest.fixture(scope="module")
def watched(town):
    """The two runs kept as watches on the analysis map by the west town's police."""
    with _login(town, "westpolice", f"/map/analysis?jurisdiction={WEST_TOWN}") as page:
        page.wait_for_selector(f"#sg-runs option[value='{town['near']}']", state="attached")
        assert not page.locator("#sg-watch").is_visible()  # no run on the map yet
        said = _watch_from_the_analysis_map(page, town["emerging"], "时空热点趋势")
        assert re.match(r"已关注（关注 #\d+）", said), said
        page.screenshot(path=str(_shot("analysis-watched.png")))
        _watch_from_the_analysis_map(page, town["near"], "近重复")
        said = _watch_from_the_analysis_map(page, town["places"], "场所风险分级")
        assert page.locator("#sg-message.ok").count() == 1
        # back to the first run: it is known to be watched already
        page.select_option("#sg-runs", str(town["emerging"]))
        wait_for(page, "document.getElementById('sg-watch').textContent.trim() === '已关注'")
        assert page.errors == []
    watches = town["call"]("westpolice", "/api/warnings/watches").json()["watches"]
    assert sorted((w["run"], w["kind"]) for w in watches) == sorted(
        [(town["emerging"], "emerging"), (town["near"], "near_repeat"),
         (town["places"], "risk_level")])
    assert f"#{max(w['id'] for w in watches)}" in said
    return watches


def _shot(name: str):
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS / name


@pytest.fixture(scope="module")
def warned(town, watched):
    """Checked at T1 (nothing new), a repeat at B and a fraud cluster planted, checked at T2."""
    first = check_watches(engine(town["url"]), T1)
    assert [r["error"] for r in first] == [None, None, None]
    assert all(r["warnings"] == [] for r in first)
    plant(town["url"], [(B, PLANTED, "criminal")]
          + [(HOT, PLANTED + dt.timedelta(minutes=k), "fraud") for k in range(12)])
    second = check_watches(engine(town["url"]), T2)
    assert [r["error"] for r in second] == [None, None, None]
    found = town["call"]("westpolice", f"/api/warnings?jurisdiction={WEST_TOWN}&open=true"
                         ).json()["features"]
    kinds = {f["properties"]["kind"] for f in found}
    assert kinds == {"emerging_hot_spot", "near_repeat_zone", "risk_level"}, found
    return found


def test_the_analyst_keeps_saved_runs_as_watches(watched):
    assert len(watched) == 3


def _centred_on(page, feature: dict) -> bool:
    """Whether the feature's middle is in the map's view and, with the panel open, on
    the map beside the panel (not under it)."""
    west, south, east, north = shape(feature["geometry"]).bounds
    return page.evaluate(f"""() => {{
      const m = {MAP};
      const at = [{(south + north) / 2}, {(west + east) / 2}];
      if (!m.getBounds().contains(at)) return false;
      const panel = document.getElementById("sg-warnings-panel");
      if (panel.hidden) return true;
      const x = m.latLngToContainerPoint(at).x + m.getContainer().getBoundingClientRect().left;
      return x > panel.getBoundingClientRect().right;
    }}""")


def test_the_english_page_says_warnings_in_english(town, warned):
    with _login(town, "eastpolice", "/map?lang=en") as page:  # nothing in the east town
        page.wait_for_selector("#sg-warnings[data-loaded]")
        assert page.text_content("#sg-warnings-count") == "0"
        page.click("#sg-warnings-toggle")
        assert page.text_content("#sg-warnings-status") == \
            "No warnings wait for acknowledgement"
    with _login(town, "townadmin", "/map?lang=en") as page:
        page.wait_for_selector("#sg-warnings[data-loaded]")
        page.click("#sg-warnings-toggle")
        page.wait_for_selector(PANEL, state="visible")
        assert page.text_content("#sg-warnings-title") == "Risk warnings (not acknowledged)"
        items = page.locator(ITEMS)
        assert items.count() >= 1
        for i in range(items.count()):
            item = items.nth(i)
            found = next(f for f in warned if str(f["id"]) == item.get_attribute("data-id"))
            assert item.locator(".sg-warning-message").text_content() == \
                found["properties"]["message_en"]
            assert item.locator(".sg-warning-kind").text_content() == {
                "emerging_hot_spot": "New or intensifying hot spot",
                "near_repeat_zone": "Near-repeat risk zone",
                "risk_level": "A place's risk level rose"}[found["properties"]["kind"]]
            assert item.locator(".sg-warning-when").text_content().startswith("raised 20")
            assert item.locator("button.sg-warning-ack").text_content() == "Acknowledge"
        header = page.locator("#sg-header").bounding_box()
        control = page.locator(".leaflet-control-layers").bounding_box()
        assert header["x"] + header["width"] <= control["x"]  # the longer words fit too
        assert page.locator(PANEL).bounding_box()["y"] >= header["y"] + header["height"]
        page.screenshot(path=str(_shot("admin-english.png")))
        assert page.errors == []


def test_who_sees_what(town, warned):
    with _login(town, "westplanner", "/map") as page:
        page.wait_for_selector("#sg-warnings[data-loaded]")
        page.click("#sg-warnings-toggle")
        kinds = page.locator(ITEMS).evaluate_all("l => l.map(e => e.dataset.kind)")
        # no zones (drawn around incidents): aggregates only
        assert set(kinds) == {"emerging_hot_spot", "risk_level"}
        assert page.locator(f"{ITEMS} button.sg-warning-ack").count() == 0
        assert page.locator(f"{ITEMS} button.sg-warning-go").count() == len(kinds)
        assert page.errors == []
    refused: list[str] = []
    with _login(town, "westpartner", "/map") as page:
        page.on("response", lambda r: refused.append(r.url) if r.status >= 400 else None)
        page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
        page.reload()
        page.wait_for_load_state("networkidle")
        assert page.locator("#sg-warnings").count() == 0
        assert page.errors == []
    assert refused == []


def test_an_officer_reads_goes_to_and_acknowledges_warnings(town, warned):
    call = town["call"]
    zone = next(f for f in warned if f["properties"]["kind"] == "near_repeat_zone")
    hot = [f for f in warned if f["properties"]["kind"] == "emerging_hot_spot"]
    with _login(town, "westpolice", "/map") as page:
        page.wait_for_selector("#sg-warnings[data-loaded]")
        assert page.text_content("#sg-warnings-count") == str(len(warned))
        assert not page.locator(PANEL).is_visible()
        page.click("#sg-warnings-toggle")
        page.wait_for_selector(PANEL, state="visible")
        items = page.locator(ITEMS)
        assert items.count() == len(warned)
        # newest first, as the API lists them; each says its kind, message and times
        assert [int(i) for i in items.evaluate_all("l => l.map(e => e.dataset.id)")] == \
            [f["id"] for f in warned]
        first = items.first
        assert first.locator(".sg-warning-message").text_content() == \
            warned[0]["properties"]["message_zh"]
        created = dt.datetime.fromisoformat(warned[0]["properties"]["created_at"])
        assert first.locator(".sg-warning-when").text_content().startswith(
            "发出 " + created.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M"))
        row = page.locator(f"{ITEMS}[data-id='{zone['id']}']")
        until = dt.datetime.fromisoformat(zone["properties"]["until"]).astimezone(LOCAL_TZ)
        assert row.locator(".sg-warning-kind").text_content() == "近重复风险区"
        assert f"有效至 {until:%Y-%m-%d %H:%M}" in row.locator(".sg-warning-when").text_content()
        risen = next(f for f in warned if f["properties"]["kind"] == "risk_level")
        item = page.locator(f"{ITEMS}[data-id='{risen['id']}']")
        assert item.locator(".sg-warning-kind").text_content() == "场所风险等级上升"
        assert "“西镇小学”风险等级由" in item.locator(".sg-warning-message").text_content()
        assert risen["properties"]["place"]["level_before"] == town["level"]
        page.screenshot(path=str(_shot("police-list.png")))

        # the zone's place: the map moves to it, outlines it bold and opens its popup
        before = page.evaluate(f"{MAP}.getZoom()")
        row.locator("button.sg-warning-go").click()
        page.wait_for_selector(".leaflet-popup-content")
        assert _centred_on(page, zone)
        assert page.evaluate(f"{MAP}.getZoom()") >= max(16, before)
        assert page.evaluate(f"{PICKED}.getLayers()[0].options.weight") == 5
        assert page.evaluate(f"{PICKED}.getLayers()[0].feature.id") == zone["id"]
        assert page.text_content(".leaflet-popup-content") == \
            "近重复风险区" + zone["properties"]["message_zh"]
        page.screenshot(path=str(_shot("police-zone.png")))

        # acknowledged by mouse: the item says by whom, the count drops, the API agrees
        row.locator("button.sg-warning-ack").click()
        page.wait_for_selector(f"{ITEMS}[data-id='{zone['id']}'] .sg-warning-acked")
        assert re.fullmatch(r"已确认（westpolice，\d{4}-\d\d-\d\d \d\d:\d\d）",
                            row.locator(".sg-warning-acked").text_content())
        assert page.text_content("#sg-warnings-count") == str(len(warned) - 1)
        listed = call("westpolice", f"/api/warnings?jurisdiction={WEST_TOWN}").json()
        acked = next(f for f in listed["features"] if f["id"] == zone["id"])["properties"]
        assert acked["acknowledged_by"] == "westpolice" and acked["acknowledged_at"]
        still_open = call("westpolice", f"/api/warnings?jurisdiction={WEST_TOWN}&open=true"
                          ).json()["features"]
        assert zone["id"] not in {f["id"] for f in still_open}

        # by keyboard: Enter on a hot spot's "show" button, Tab to its "acknowledge"
        target = hot[0]
        go = page.locator(f"{ITEMS}[data-id='{target['id']}'] button.sg-warning-go")
        go.focus()
        page.keyboard.press("Enter")
        page.wait_for_selector(".leaflet-popup-content")
        wait_for(page, f"{PICKED}.getLayers()[0].feature.id === {target['id']}")
        page.wait_for_timeout(800)  # the flight
        assert _centred_on(page, target)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "sg-warning-ack"
        page.keyboard.press("Enter")
        page.wait_for_selector(f"{ITEMS}[data-id='{target['id']}'] .sg-warning-acked")
        assert page.text_content("#sg-warnings-count") == str(len(warned) - 2)

        # refused: another hot spot acknowledged meanwhile by the town's administrator
        other = hot[1]
        assert call("townadmin", f"/api/warnings/{other['id']}/ack", "POST").status_code == 200
        page.locator(f"{ITEMS}[data-id='{other['id']}'] button.sg-warning-ack").click()
        page.wait_for_selector("#sg-warnings-status.error")
        said = page.text_content("#sg-warnings-status")
        assert said.startswith("未完成 (409)：该预警已被确认")
        assert f"warning {other['id']} was acknowledged by townadmin" in said
        assert page.locator(
            f"{ITEMS}[data-id='{other['id']}'] button.sg-warning-ack").is_enabled()
        page.screenshot(path=str(_shot("police-refused.png")))

        # Esc closes the panel and gives the focus back to its button; Enter opens it
        page.keyboard.press("Escape")
        page.wait_for_selector(PANEL, state="hidden")
        assert page.evaluate("document.activeElement.id") == "sg-warnings-toggle"
        page.keyboard.press("Enter")
        page.wait_for_selector(PANEL, state="visible")
        page.keyboard.press("Escape")
        page.wait_for_selector(PANEL, state="hidden")
        assert page.errors == []

    # opened again: what was acknowledged has left the list
    with _login(town, "westpolice", "/map") as page:
        page.wait_for_selector("#sg-warnings[data-loaded]")
        left = len(warned) - 3
        assert page.text_content("#sg-warnings-count") == str(left)
        page.click("#sg-warnings-toggle")
        assert page.locator(ITEMS).count() == left


def test_on_a_phone_the_panel_fits_the_screen(town, warned):
    with _login(town, "townadmin", "/map", viewport=(390, 844)) as page:
        page.wait_for_selector("#sg-warnings[data-loaded]")
        page.click("#sg-warnings-toggle")
        page.wait_for_selector(PANEL, state="visible")
        box = page.locator(PANEL).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        assert box["y"] >= 0 and box["y"] + box["height"] <= 844
        header = page.locator("#sg-header").bounding_box()
        assert box["y"] >= header["y"] + header["height"]  # the header stays readable
        # a place shown from the list lands above the panel, not under it
        first = page.locator(ITEMS).first
        found = next(f for f in warned if str(f["id"]) == first.get_attribute("data-id"))
        first.locator("button.sg-warning-go").click()
        wait_for(page, f"{PICKED} && {PICKED}.getLayers()[0].feature.id === {found['id']}")
        page.wait_for_timeout(800)  # the flight
        west, south, east, north = shape(found["geometry"]).bounds
        y = page.evaluate(f"{MAP}.latLngToContainerPoint([{(south + north) / 2}, "
                          f"{(west + east) / 2}]).y")
        assert 0 < y < box["y"]
        page.screenshot(path=str(_shot("phone.png")))
        assert page.errors == []


def test_the_analysis_map_lists_the_warnings_too(town, warned):
    """The same list on the analyst's map, a place shown from it; Esc in the list closes
    the list and leaves the results panel (the Knox table) open."""
    call = town["call"]
    still = call("westpolice", f"/api/warnings?jurisdiction={WEST_TOWN}&open=true"
                 ).json()["features"]
    assert still
    with _login(town, "westpolice", f"/map/analysis?jurisdiction={WEST_TOWN}") as page:
        page.wait_for_selector(f"#sg-runs option[value='{town['near']}']", state="attached")
        page.select_option("#sg-runs", str(town["near"]))
        page.wait_for_selector("#sg-results", state="visible")
        page.wait_for_selector("#sg-warnings[data-loaded]")
        assert page.text_content("#sg-warnings-count") == str(len(still))
        page.click("#sg-warnings-toggle")
        page.wait_for_selector(PANEL, state="visible")
        ids = page.locator(ITEMS).evaluate_all("l => l.map(e => Number(e.dataset.id))")
        assert ids == [f["id"] for f in still]
        target = still[-1]
        page.locator(f"{ITEMS}[data-id='{target['id']}'] button.sg-warning-go").click()
        wait_for(page, f"{PICKED} && {PICKED}.getLayers()[0].feature.id === {target['id']}")
        page.wait_for_timeout(800)  # the flight
        assert _centred_on(page, target)
        page.wait_for_selector(".leaflet-popup-content")
        page.screenshot(path=str(_shot("analysis-list.png")))
        page.keyboard.press("Escape")
        page.wait_for_selector(PANEL, state="hidden")
        assert page.locator("#sg-results").is_visible()
        assert page.evaluate("document.activeElement.id") == "sg-warnings-toggle"
        assert page.errors == []


def test_a_refused_watch_says_why_and_keeps_nothing(town, watched):
    """An officer removed while their page is open: keeping a run is refused with the
    server's reason and no watch is made."""
    with engine(town["url"]).begin() as conn:
        add_user(conn, "leaving", "police", _password("leaving"), WEST_TOWN)
        admin = user_by_name(conn, "townadmin")[0]
        run = run_emerging(conn, admin, HotspotQuery(
            WEST_TOWN, T0 - dt.timedelta(days=56), T0, category="fraud", cell=200.0),
            "week")["run"]  # a run nobody watches
    before = town["call"]("townadmin", "/api/warnings/watches").json()["watches"]
    with _login(town, "leaving", f"/map/analysis?jurisdiction={WEST_TOWN}") as page:
        page.wait_for_selector(f"#sg-runs option[value='{run}']", state="attached")
        page.select_option("#sg-runs", str(run))
        page.locator("#sg-watch").wait_for(state="visible")
        assert page.locator("#sg-watch").is_enabled()
        with engine(town["url"]).begin() as conn:  # removed meanwhile
            remove_user(conn, "leaving")
        page.click("#sg-watch")
        page.wait_for_selector("#sg-message.error")
        said = page.text_content("#sg-message")
        assert said.startswith("未完成 (401)：登录已失效，请重新登录")
        assert "authentication required" in page.text_content("#sg-message .sg-code")
        assert page.locator("#sg-watch").is_enabled()
        page.screenshot(path=str(_shot("analysis-watch-refused.png")))
    after = town["call"]("townadmin", "/api/warnings/watches").json()["watches"]
    assert after == before
