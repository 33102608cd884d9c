"""The map page over real HTTP from ``safegrid serve``."""

import json

import pytest
import requests

pytestmark = pytest.mark.db


def test_map_page_has_every_layer(server):
    response = requests.get(f"{server}/map", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = response.text
    titles = ("网格", "重点区域 · 学校", "视频监控", "检查站卡点", "道路", "市界", "警情热力图")
    for title in titles:
        assert title in page or json.dumps(title)[1:-1] in page, title
    assert "/static/vendor/leaflet/leaflet.js" in page
    assert "cdn.jsdelivr" not in page and "code.jquery" not in page  # works offline
    assert "HeatMap" in page or "heatLayer" in page


def test_english_labels_and_city_choice(server):
    page = requests.get(f"{server}/map", params={"lang": "en", "city": "430300"},
                        timeout=30).text
    assert "Grids" in page and "Cameras" in page and "City borders" in page
    assert 'content="430300"' in page


@pytest.mark.parametrize(("params", "message"), [
    ({"city": "999999"}, "is not a city code"),
    ({"lang": "fr"}, "lang must be one of"),
])
def test_bad_parameters_get_json_errors(server, params, message):
    response = requests.get(f"{server}/map", params=params, timeout=30)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_static_assets_are_served(server):
    js = requests.get(f"{server}/static/vendor/leaflet/leaflet.js", timeout=10)
    assert js.status_code == 200 and "Leaflet" in js.text[:500]
    assert requests.get(f"{server}/static/vendor/leaflet_heat.min.js",
                        timeout=10).status_code == 200


def test_unknown_path_is_a_json_404(server):
    response = requests.get(f"{server}/no/such/page", timeout=10)
    assert response.status_code == 404
    assert "error" in response.json()
