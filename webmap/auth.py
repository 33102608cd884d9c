"""Authentication: API tokens (``Authorization: Bearer``) and browser sessions.

Every request needs a user except the public endpoints (landing page, conformance,
OpenAPI document, login, health and static files). A browser without a session is
sent to ``/login``; an API client gets 401 with a JSON message.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    jsonify,
    redirect,
    request,
    session,
    url_for,
)
from markupsafe import escape

from layers.cluster import managed_cluster
from layers.users import User, user_by_name, user_for_token, verify_password

from .app import db_engine
from .ratelimit import rate_limits, too_many

bp = Blueprint("auth", __name__)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Blueprints of HTML pages: a browser without a session is sent to the login form.
PAGE_BLUEPRINTS = ("pages", "planner", "analysis", "coverage_map", "border_map",
                   "reports")
PUBLIC_ENDPOINTS = {
    "ogcapi.landing", "ogcapi.conformance", "ogcapi.openapi", "auth.login", "auth.logout",
    "pages.health", "static",
}


def secret_key(app: Flask) -> str:
    """The session-signing key: configured, or generated once into $SAFEGRID_HOME."""
    configured = app.config.get("SECRET_KEY")
    if configured:
        return str(configured)
    path = Path(managed_cluster().home) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def init_app(app: Flask) -> None:
    """Install the key, the login views and the check that runs before every request."""
    app.secret_key = secret_key(app)
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.register_blueprint(bp)
    app.before_request(_authenticate)


def current_user() -> User:
    """The authenticated user of this request."""
    return g.user


def _authenticate():
    g.user = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") or session.get("uid"):  # no query for anonymous calls
        with db_engine(current_app).connect() as conn:
            if header.startswith("Bearer "):
                g.user = user_for_token(conn, header[7:].strip())
                if g.user is None:
                    return _unknown_token()
            else:
                found = user_by_name(conn, session.get("name", ""))
                if found and found[0].id == session["uid"]:
                    g.user = found[0]
    if g.user is not None and not header.startswith("Bearer ") and \
            request.method not in SAFE_METHODS and request.endpoint not in PUBLIC_ENDPOINTS:
        if not _csrf_matches(request.headers.get("X-CSRF-Token", "")):
            response = jsonify({"error": "a change from the browser needs the page's "
                                         "X-CSRF-Token header: reload the page"})
            response.status_code = 403
            return response
    if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if request.endpoint and request.endpoint.split(".")[0] in PAGE_BLUEPRINTS:
            return redirect(url_for("auth.login", next=request.full_path))
        return _unauthorised("authentication required: send 'Authorization: Bearer <token>' "
                             "(safegrid users token NAME) or log in at /login")
    return None


def _unknown_token():
    """401 for a token nobody has; 429 once an address has tried too many.

    A valid token from the same address still gets in.
    """
    wait = rate_limits().failure_wait("token", request.remote_addr or "")
    if wait is not None:
        return too_many("too many unknown API tokens from this address", wait)
    rate_limits().failed("token", request.remote_addr or "")
    return _unauthorised("the API token is not valid")


def _unauthorised(message: str):
    response = jsonify({"error": message})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="safegrid"'
    return response


def _csrf_matches(sent: str) -> bool:
    """Whether ``sent`` is the session's CSRF token (constant-time compare)."""
    expected = session.get("csrf", "")
    return bool(sent and expected) and secrets.compare_digest(sent.encode(), expected.encode())


def csrf_token() -> str:
    """The CSRF token of the session (made on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


_FORM = """<!doctype html><html lang="zh"><head><meta charset="utf-8">
<title>safegrid · 登录 Login</title>
<style>body{{font:15px sans-serif;max-width:340px;margin:10vh auto}}
label{{display:block;margin:.6em 0}} input{{width:100%;padding:.4em}}
.error{{color:#b00}}</style></head><body>
<h1>平安网格 safegrid</h1>{error}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{next}">
<label>用户名 User <input name="name" autocomplete="username" required></label>
<label>密码 Password <input name="password" type="password"
 autocomplete="current-password" required></label>
<button type="submit">登录 Log in</button></form></body></html>"""


def _safe_next(value: str | None) -> str:
    """Only same-site paths: never redirect to another host after login."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/map"
    return value


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Browser login with a CSRF-protected form; sets the session cookie."""
    error = ""
    status = 200
    headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
    if request.method == "POST":
        who = ("login", request.remote_addr or "", request.form.get("name", "").strip().lower())
        wait = rate_limits().failure_wait(*who)
        if not _csrf_matches(request.form.get("csrf", "")):
            error, status = "表单已过期，请重试 (the form expired: try again)", 400
        elif wait is not None:
            error = (f"登录失败次数过多，请 {wait} 秒后再试 "
                     f"(too many failed logins: try again in {wait} s)")
            status = 429
            headers["Retry-After"] = str(wait)
        else:
            with db_engine(current_app).connect() as conn:
                found = user_by_name(conn, request.form.get("name", ""))
            if found and verify_password(request.form.get("password", ""), found[1]):
                session.clear()
                session["uid"], session["name"] = found[0].id, found[0].name
                return redirect(_safe_next(request.form.get("next")))
            rate_limits().failed(*who)
            error, status = "用户名或密码错误 (wrong user name or password)", 401
    html = _FORM.format(
        error=f'<p class="error">{escape(error)}</p>' if error else "",
        csrf=escape(csrf_token()), next=escape(_safe_next(request.args.get("next")
                                                          or request.form.get("next"))))
    return html, status, headers


@bp.post("/logout")
def logout():
    """End the browser session (the form must carry the session's CSRF token)."""
    if session.get("uid") and not _csrf_matches(request.form.get("csrf", "")):
        return jsonify({"error": "logging out needs the page's CSRF token: reload the page"}), 403
    session.clear()
    return redirect(url_for("auth.login"))
