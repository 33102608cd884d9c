"""The map page over real HTTP from ``safegrid serve``."""

import json
import re

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.engine import make_url

from layers.db import engine, migrate
from layers.users import add_user, issue_token
from tests.conftest import fresh_database, login
from webmap.app import create_app

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def browser_session(server):
    return login(server, "admin")


def test_map_page_has_every_layer(server, browser_session):
    response = browser_session.get(f"{server}/map", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = response.text
    titles = ("网格", "重点区域 · 学校", "视频监控", "检查站卡点", "道路", "市界", "警情热力图")
    for title in titles:
        assert title in page or json.dumps(title)[1:-1] in page, title
    assert "/static/vendor/leaflet/leaflet.js" in page
    assert "cdn.jsdelivr" not in page and "code.jquery" not in page  # works offline
    assert "HeatMap" in page or "heatLayer" in page
    assert "(0)" not in page  # an empty layer is not listed


def test_map_header_links_to_the_notice_in_the_page_language(server, browser_session):
    page = browser_session.get(f"{server}/map", params={"lang": "en", "city": "430300"},
                               timeout=30).text
    assert 'id="sg-notice-link" href="/reports/notice?jurisdiction=430300&amp;month=' in page
    assert "Security notice (" in page and "&amp;lang=en" in page


def test_english_labels_and_city_choice(server, browser_session):
    page = browser_session.get(f"{server}/map", params={"lang": "en", "city": "430300"},
                               timeout=30).text
    assert "Grids" in page and "Cameras" in page and "City borders" in page
    assert 'content="430300"' in page


@pytest.mark.parametrize(("params", "message"), [
    ({"city": "999999"}, "is not a city you may see"),
    ({"lang": "fr"}, "lang must be one of"),
])
def test_bad_parameters_get_json_errors(server, browser_session, params, message):
    response = browser_session.get(f"{server}/map", params=params, timeout=30)
    assert response.status_code == 400
    assert message in response.json()["error"]


HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}  # as a browser asks


@pytest.mark.parametrize(("path", "status", "zh", "en"), [
    ("/map?city=999999", 400, "请求有误", "Not a valid request"),
    ("/map/analysis?jurisdiction=999999", 400, "请求有误", "Not a valid request"),
    ("/map/no-such-page", 404, "未找到", "Not found"),
])
def test_a_person_opening_a_bad_page_gets_a_page_in_the_page_language(
        server, browser_session, path, status, zh, en):
    r = browser_session.get(f"{server}{path}", headers=HTML, timeout=30)
    assert r.status_code == status and r.headers["Content-Type"].startswith("text/html")
    assert '<html lang="zh">' in r.text and zh in r.text and 'href="/map?lang=zh"' in r.text
    sep = "&" if "?" in path else "?"
    r = browser_session.get(f"{server}{path}{sep}lang=en", headers=HTML, timeout=30)
    assert r.status_code == status and '<html lang="en">' in r.text and en in r.text
    # a script asking for data still gets JSON
    r = browser_session.get(f"{server}{path}", timeout=30)
    assert r.status_code == status and "error" in r.json()


def test_a_partner_opening_the_analysis_map_is_told_it_is_not_theirs(server):
    r = login(server, "partner").get(f"{server}/map/analysis", headers=HTML, timeout=30)
    assert r.status_code == 403 and "无权查看" in r.text
    assert "border partner" in r.text  # the reason, under the technical details


def test_static_assets_are_served(server):
    js = requests.get(f"{server}/static/vendor/leaflet/leaflet.js", timeout=10)
    assert js.status_code == 200 and "Leaflet" in js.text[:500]
    assert requests.get(f"{server}/static/vendor/leaflet_heat.min.js",
                        timeout=10).status_code == 200


def test_map_needs_a_login(server):
    response = requests.get(f"{server}/map", timeout=10, allow_redirects=False)
    assert response.status_code == 302
    assert "/login?next=" in response.headers["Location"]


def test_login_refuses_wrong_password_and_missing_csrf(server):
    with pytest.raises(AssertionError):
        login(server, "admin", "not-the-password")
    s = requests.Session()
    r = s.post(f"{server}/login", data={"name": "admin", "password": "admin-demo-2026"},
               timeout=10, allow_redirects=False)
    assert r.status_code == 400 and "表单已过期" in r.text
    assert "session" not in s.cookies.get_dict() or s.get(
        f"{server}/map", allow_redirects=False, timeout=10).status_code == 302


def test_login_never_redirects_off_site(server):
    import re

    s = requests.Session()
    form = s.get(f"{server}/login?next=//evil.example/x", timeout=10).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    r = s.post(f"{server}/login", data={"csrf": csrf, "name": "viewer",
                                        "password": "viewer-demo-2026",
                                        "next": "https://evil.example/"},
               timeout=10, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].endswith("/map")


def test_unknown_path_is_a_json_404(server, browser_session):
    response = browser_session.get(f"{server}/no/such/page", timeout=10)
    assert response.status_code == 404
    assert "error" in response.json()


def test_the_map_shows_only_what_the_user_may_see(server):
    import re

    viewer = login(server, "viewer")
    page = viewer.get(f"{server}/map", timeout=30).text
    assert re.findall(r'<option value="(\d+)"', page) == ["430100"]
    assert "HeatMap" not in page and "heatLayer" not in page  # no incident points for viewers
    # the page fetches its layers for the view: the viewer's grids are all in 4301
    grids = viewer.get(f"{server}/map/layers/grids", timeout=30,
                       params={"city": "430100", "bbox": "-180,-90,180,90"}).json()
    codes = {f["properties"]["code"] for f in grids["features"]}
    assert codes and all(code.startswith("4301") for code in codes)
    assert viewer.get(f"{server}/map/layers/heat", timeout=30, params={
        "city": "430100", "bbox": "-180,-90,180,90"}).status_code == 403
    refused = viewer.get(f"{server}/map", params={"city": "430300"}, timeout=30)
    assert refused.status_code == 400
    partner = login(server, "partner").get(f"{server}/map", timeout=30).text
    assert re.findall(r'<option value="(\d+)"', partner) == ["430100", "430300"]
    police = login(server, "police").get(f"{server}/map", timeout=30).text
    assert "heatLayer" in police


def test_planner_page_needs_a_login_and_loads_grids_from_the_api(server):
    r = requests.get(f"{server}/map/plan", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and "/login?next=" in r.headers["Location"]
    planner = login(server, "planner")
    page = planner.get(f"{server}/map/plan", timeout=30)
    assert page.status_code == 200
    assert "/static/vendor/geoman/leaflet-geoman.js" in page.text
    assert "safegridPlanner(" in page.text and '"canWrite": true' in page.text
    # no grid geometry is inlined: the page fetches grids for the view from the API
    assert '"type": "Polygon"' not in page.text and "FeatureCollection" not in page.text
    viewer = login(server, "viewer").get(f"{server}/map/plan", timeout=30)
    assert '"canWrite": false' in viewer.text


@pytest.mark.parametrize("params,message", [
    ({"jurisdiction": "999"}, "not a community you may plan"),
    ({"jurisdiction": "430201001001"}, "not a community you may plan"),  # another city
    ({"lang": "fr"}, "lang must be"),
])
def test_planner_page_bad_parameters(server, params, message):
    r = login(server, "planner").get(f"{server}/map/plan", params=params, timeout=30)
    assert r.status_code == 400 and message in r.json()["error"]


def test_coverage_page_needs_a_login_and_says_who_may_plan_cameras(server):
    r = requests.get(f"{server}/map/coverage", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and "/login?next=" in r.headers["Location"]
    police = login(server, "police").get(f"{server}/map/coverage", timeout=30)
    assert police.status_code == 200 and "safegridCoverage(" in police.text
    assert '"canPlan": true' in police.text and '"jurisdiction": "430100"' in police.text
    planner = login(server, "planner").get(f"{server}/map/coverage", timeout=30)
    assert '"canPlan": false' in planner.text
    refused = login(server, "planner").get(f"{server}/map/coverage",
                                           params={"jurisdiction": "430300"}, timeout=30)
    assert refused.status_code == 400 and "not one you may see" in refused.json()["error"]
    assert 'id="sg-coverage-link"' in login(server, "viewer").get(f"{server}/map",
                                                                  timeout=30).text


def test_browser_writes_need_the_csrf_header(server, db):
    planner = login(server, "planner")
    with db.connect() as conn:
        grid_id, before = conn.execute(text(
            "SELECT id, version FROM grids WHERE jurisdiction_code LIKE '4301%' "
            "ORDER BY id LIMIT 1")).one()
    r = planner.post(f"{server}/api/grids/merge", json={"ids": [grid_id, grid_id + 1]},
                     timeout=10)
    assert r.status_code == 403 and "X-CSRF-Token" in r.json()["error"]
    with db.connect() as conn:
        assert conn.execute(text("SELECT version FROM grids WHERE id = :i"),
                            {"i": grid_id}).scalar_one() == before


def test_border_page_opens_on_neighbours_and_says_why_in_chinese(server):
    police = login(server, "police")
    header = police.get(f"{server}/map", timeout=30).text
    assert 'id="sg-border-link"' in header and "边界联防" in header
    for params, said in (
            ({"a": "430100", "b": "430102"}, "430100 与 芙蓉区 不是您可选的一对相邻辖区"),
            ({"a": "430100", "b": "430300"}, "430100 与 430300 不是您可选的一对相邻辖区"),
            ({"width": "abc"}, "每侧宽度须为大于 0、不超过 20000 的米数，现按 2000 米显示")):
        page = police.get(f"{server}/map/border", params=params, timeout=30)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert said in page.text, params
        assert '<option value="430102" selected>' in page.text
        assert '<option value="430103" selected>' in page.text
        assert "430100)</option>" not in page.text  # a city is no neighbour of its district
    english = police.get(f"{server}/map/border", params={"width": "-5", "lang": "en"},
                         timeout=30).text
    assert "The width each side must be more than 0 and at most 20000 m" in english


def test_the_map_of_an_empty_database_says_what_to_do_in_the_page_language(db_url):
    empty_url = fresh_database(f"{make_url(db_url).database}_nomap")
    migrate(empty_url)
    app = create_app({"DATABASE_URL": empty_url, "RATE_LIMIT": "off"})
    with engine(empty_url).begin() as conn:
        add_user(conn, "first_admin", "admin", "a-long-enough-password-1")
        token = issue_token(conn, "first_admin")
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    zh = client.get("/map", headers=auth)
    assert zh.status_code == 200 and zh.mimetype == "text/html"
    page = zh.get_data(as_text=True)
    assert '<html lang="zh">' in page and "还没有可显示的城市" in page
    assert "safegrid demo" in page and 'href="/map?lang=en"' in page
    en = client.get("/map?lang=en", headers=auth).get_data(as_text=True)
    assert '<html lang="en">' in en and "There is no city to show yet" in en
    assert not re.search(r"[\u4e00-\u9fff]", en.replace("中文", ""))
