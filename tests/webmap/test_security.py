"""Limits and security checks over HTTP: request size (413), rate limits (429), login
throttling, CSRF on browser forms, security headers, and secrets that never leave."""

import json
import re
import subprocess

import pytest
import requests
from sqlalchemy import text

from layers.users import issue_token

from ..conftest import SAFEGRID, Server, demo_password, login, login_form

pytestmark = pytest.mark.db

LIMITS = {"SAFEGRID_RATE_LIMIT": "15/minute", "SAFEGRID_LOGIN_LIMIT": "3/minute",
          "SAFEGRID_MAX_CONTENT_LENGTH": "2000"}


@pytest.fixture(scope="module")
def limited(db_url, demo_small, tmp_path_factory):
    """A server of its own with small limits (15 requests a minute, 3 failed logins)."""
    server = Server(db_url, tmp_path_factory.mktemp("limited") / "serve.log", LIMITS)
    yield server
    server.stop()


def _audit_max(db) -> int:
    with db.connect() as conn:
        return conn.execute(text("SELECT coalesce(max(id), 0) FROM audit")).scalar_one()


def test_a_body_over_the_size_limit_is_413_and_writes_nothing(limited, db):
    with db.begin() as conn:
        token = issue_token(conn, "police")
    before = _audit_max(db)
    body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [112.9, 28.2]},
            "properties": {"code": "BIG-1", "bearing": 0, "fov": 90, "range_m": 50,
                           "status": "online", "note": "x" * 3000}}
    r = requests.post(f"{limited.url}/collections/cameras/items", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 413
    assert "large" in r.json()["error"].lower()
    assert _audit_max(db) == before
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cameras WHERE code = 'BIG-1'")
                            ).scalar_one() == 0


def test_requests_over_the_rate_limit_get_429_per_token(limited, db):
    with db.begin() as conn:
        first, second = issue_token(conn, "viewer"), issue_token(conn, "viewer")
    url = f"{limited.url}/collections"
    statuses = [requests.get(url, headers={"Authorization": f"Bearer {first}"},
                             timeout=10).status_code for _ in range(17)]
    assert statuses[:15] == [200] * 15
    assert statuses[15:] == [429, 429]
    r = requests.get(url, headers={"Authorization": f"Bearer {first}"}, timeout=10)
    assert r.status_code == 429
    assert "too many requests" in r.json()["error"]
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # another client has its own budget; the health check is never limited
    assert requests.get(url, headers={"Authorization": f"Bearer {second}"},
                        timeout=10).status_code == 200
    assert all(requests.get(f"{limited.url}/healthz", timeout=10).status_code == 200
               for _ in range(20))


def test_failed_logins_are_throttled_even_for_the_rightdemo_password(limited):
    s = requests.Session()
    for _ in range(3):
        assert login_form(s, limited.url, "planner", "not-the-password").status_code == 401
    r = login_form(s, limited.url, "planner", demo_password("planner"))
    assert r.status_code == 429
    assert "登录失败次数过多" in r.text
    assert int(r.headers["Retry-After"]) >= 1
    # another user from the same address is not locked out
    assert login_form(requests.Session(), limited.url, "admin",
                       demo_password("admin")).status_code == 302


def test_unknown_tokens_are_throttled_per_address(limited, db):
    url = f"{limited.url}/collections"
    for i in range(3):
        r = requests.get(url, headers={"Authorization": f"Bearer guess-{i}"}, timeout=10)
        assert r.status_code == 401
    r = requests.get(url, headers={"Authorization": "Bearer guess-4"}, timeout=10)
    assert r.status_code == 429
    assert "unknown API tokens" in r.json()["error"]
    with db.begin() as conn:  # a known token from the same address still gets in
        token = issue_token(conn, "viewer")
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"},
                        timeout=10).status_code == 200


def test_the_login_page_speaks_the_language_of_the_page_asked_for(server):
    zh = requests.get(f"{server}/login?next=/map/analysis", timeout=10).text
    assert '<html lang="zh">' in zh and "用户名" in zh and "Password" not in zh
    en = requests.get(f"{server}/login?next=%2Fmap%2Fanalysis%3Flang%3Den", timeout=10).text
    assert '<html lang="en">' in en and "User name" in en and "密码" not in en
    # the switch keeps the page asked for
    assert 'href="/login?next=%2Fmap%2Fanalysis%3Flang%3Den&amp;lang=zh"' in en
    s = requests.Session()
    r = login_form(s, server, "viewer", "wrong", lang="en")
    assert r.status_code == 401 and "Wrong user name or password" in r.text
    r = login_form(s, server, "viewer", demo_password("viewer"), lang="en", next="/map/plan")
    assert r.status_code == 302 and r.headers["Location"].endswith("/map/plan?lang=en")


def test_a_csrf_token_that_is_not_ascii_is_refused_not_a_crash(server):
    s = requests.Session()
    s.get(f"{server}/login", timeout=10)
    r = s.post(f"{server}/login", data={"csrf": "é", "name": "viewer", "password": "x"},
               timeout=10)
    assert r.status_code == 400 and "表单已过期" in r.text
    session = login(server, "viewer")
    r = session.post(f"{server}/collections/cameras/items", json={},
                     headers={"X-CSRF-Token": "é"}, timeout=10)
    assert r.status_code == 403 and "CSRF" in r.json()["error"]


@pytest.mark.parametrize("setting, value, message", [
    ("SAFEGRID_RATE_LIMIT", "lots", "RATE_LIMIT 'lots' is not a rate limit"),
    ("SAFEGRID_DB_LOCK_TIMEOUT", "soon", "lock_timeout 'soon' is not a duration"),
])
def test_a_bad_limit_setting_stops_the_server_with_one_line(db_url, setting, value, message):
    r = subprocess.run([SAFEGRID, "serve", "--port", "1"], capture_output=True, text=True,
                       timeout=60, env={"SAFEGRID_DATABASE_URL": db_url, setting: value,
                                        "PATH": "/usr/bin"})
    assert r.returncode != 0
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_pages_and_answers_carry_security_headers(server, tokens):
    session = login(server, "viewer")
    page = session.get(f"{server}/map", timeout=60)
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in csp and "object-src 'none'" in csp
    assert "connect-src 'self'" in csp
    assert page.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    form = requests.get(f"{server}/login", timeout=10)
    assert form.headers["Cache-Control"] == "no-store"
    assert "Content-Security-Policy" in form.headers
    api = requests.get(f"{server}/collections", timeout=10,
                       headers={"Authorization": f"Bearer {tokens['viewer']}"})
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    assert api.headers["Referrer-Policy"] == "same-origin"


PAGES = [("admin", "/map"), ("planner", "/map/plan"), ("police", "/map/analysis"),
         ("police", "/map/coverage"), ("partner", "/map/border"),
         ("police", "/reports/notice?jurisdiction=430102001001&month=2026-09"), (None, "/login")]


def _script_src(response: requests.Response) -> list[str]:
    policy = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    return directives["script-src"].split()


@pytest.mark.parametrize("user, path", PAGES)
def test_pages_run_only_their_own_scripts_under_a_fresh_nonce(server, user, path):
    session = login(server, user) if user else requests.Session()
    nonces = []
    for _ in range(2):
        page = session.get(f"{server}{path}", timeout=60)
        assert page.status_code == 200
        sources = _script_src(page)
        assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources
        nonce = re.fullmatch(r"'nonce-([\w-]{24})'", sources[-1]).group(1)
        inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", page.text)
        assert all(attributes == f' nonce="{nonce}"' for attributes in inline), inline
        markup = re.sub(r"<script[^>]*>.*?</script>", "", page.text, flags=re.S)
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", markup)  # no inline event handlers
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


def test_logout_needs_the_pages_csrf_token(server):
    session = login(server, "viewer")
    r = session.post(f"{server}/logout", timeout=10, allow_redirects=False)
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    assert session.get(f"{server}/collections", timeout=10).status_code == 200  # still in
    page = session.get(f"{server}/map", timeout=60).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = session.post(f"{server}/logout", data={"csrf": csrf}, timeout=10,
                     allow_redirects=False)
    assert r.status_code == 302
    assert session.get(f"{server}/collections", timeout=10).status_code == 401


def test_passwords_and_tokens_are_never_logged_or_returned(live_server, db, cli):
    base = live_server.url
    password = demo_password("police")
    with db.begin() as conn:
        token = issue_token(conn, "police")
    wrong = "Wrong-Secret-4711"
    bad_token = "not-a-token-0815-secret"
    answers = []
    session = login(base, "police", password)
    answers.append(session.get(f"{base}/collections", timeout=30).text)
    answers.append(login_form(requests.Session(), base, "police", wrong).text)
    for auth in (token, bad_token):
        r = requests.get(f"{base}/collections/cameras/items?limit=2", timeout=30,
                         headers={"Authorization": f"Bearer {auth}"})
        answers.append(r.text + json.dumps(dict(r.headers)))
    answers.append(requests.get(f"{base}/collections/users", timeout=30,
                                headers={"Authorization": f"Bearer {token}"}).text)
    listed = cli("users", "list")
    assert listed.returncode == 0
    answers.append(listed.stdout + listed.stderr)
    with db.connect() as conn:
        stored_hash = conn.execute(text("SELECT password_hash FROM users WHERE name = 'police'")
                                   ).scalar_one()
        audit = conn.execute(text("SELECT coalesce(string_agg(concat(before::text, after::text),"
                                  " ''), '') FROM audit")).scalar_one()
    log = live_server.output()
    assert "GET /collections/cameras/items?limit=2 200" in log  # the access log is there
    for secret in (password, token, wrong, bad_token, stored_hash):
        for where, content in (("server log", log), ("audit", audit),
                               ("answers", "\n".join(answers))):
            assert secret not in content, f"a secret is in the {where}"
