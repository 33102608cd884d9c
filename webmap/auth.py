"""Authentication: API tokens, HTTP Basic for API clients, and browser sessions.

Every request needs a user except the public endpoints (landing page, conformance,
OpenAPI document, login, health and static files). A browser without a session is
sent to ``/login``; an API client gets 401 with a JSON message.

API clients send ``Authorization: Bearer <token>``, or HTTP Basic with the user name
and either an API token or the password (for desktop GIS that can send nothing else).
A Basic password is throttled like the login form (the same count of failures per user
name and address) and, once verified, kept as a keyed hash so that paging does not run
scrypt on every request. Basic is never asked for (401 names Bearer only), so browsers
do not offer to remember it; and a change (POST, PUT, PATCH, DELETE) with Basic from a
web page (a request carrying ``Origin`` or ``Sec-Fetch-Site``, which browsers add) is
refused: pages change data through their session and its CSRF token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

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

from .db import db_engine
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
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        refused = _bearer_user(credentials.strip())
    elif scheme == "basic":
        refused = _basic_user(credentials.strip())
    else:
        refused = _session_user()
    if refused is not None:
        return refused
    if g.user is not None and request.method not in SAFE_METHODS and \
            request.endpoint not in PUBLIC_ENDPOINTS:
        refused = _change_refused(scheme)
        if refused is not None:
            return refused
    if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if request.endpoint and request.endpoint.split(".")[0] in PAGE_BLUEPRINTS:
            return redirect(url_for("auth.login", next=request.full_path))
        return _unauthorised("authentication required: send 'Authorization: Bearer <token>' "
                             "(safegrid users token NAME), HTTP Basic with your user name "
                             "and token or password, or log in at /login")
    return None


def _session_user():
    """The browser session's user into ``g.user`` (no query for anonymous calls)."""
    if session.get("uid"):
        with db_engine(current_app).connect() as conn:
            found = user_by_name(conn, session.get("name", ""))
        if found and found[0].id == session["uid"]:
            g.user = found[0]
    return None


def _bearer_user(token: str):
    """The token's user into ``g.user``; a 401/429 response for an unknown token."""
    with db_engine(current_app).connect() as conn:
        g.user = user_for_token(conn, token)
    return _unknown_token() if g.user is None else None


def _forbidden(message: str):
    response = jsonify({"error": message})
    response.status_code = 403
    return response


def _change_refused(scheme: str):
    """403 for a change that may come from a forged web page, else None.

    Sessions need the page's CSRF token; Basic credentials (which a browser may have
    remembered) are not taken from a web page at all. Bearer tokens are never sent
    by a browser on its own.
    """
    if scheme == "bearer":
        return None
    if scheme == "basic":
        if request.headers.get("Origin") or request.headers.get("Sec-Fetch-Site"):
            return _forbidden("HTTP Basic credentials change data only from API clients, "
                              "not from a web page: use the web map's login")
        return None
    if not _csrf_matches(request.headers.get("X-CSRF-Token", "")):
        return _forbidden("a change from the browser needs the page's X-CSRF-Token header: "
                          "reload the page")
    return None


def _basic_pair(credentials: str) -> tuple[str, str] | None:
    """(user name, secret) of HTTP Basic credentials, or None when malformed."""
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    name, colon, secret = decoded.partition(":")
    return (name, secret) if colon and name and secret else None


def _basic_user(credentials: str):
    """The user of HTTP Basic credentials into ``g.user``, or a 401/429 response.

    The secret is one of the user's API tokens, or else their password.
    """
    pair = _basic_pair(credentials)
    if pair is None:
        return _unauthorised("HTTP Basic credentials must be base64 of "
                             "'user name:API token' or 'user name:password'")
    name, secret = pair
    with db_engine(current_app).connect() as conn:
        holder = user_for_token(conn, secret)
        if holder is not None:
            if holder.name != name:
                return _unknown_token()
            g.user = holder
            return None
        return _basic_password(conn, name, secret)


def _basic_password(conn, name: str, password: str):
    """``g.user`` when ``password`` is ``name``'s; throttled like the login form."""
    who = ("login", request.remote_addr or "", name.strip().lower())
    wait = rate_limits().failure_wait(*who)
    if wait is not None:
        return too_many("too many failed logins for this user name from this address", wait)
    found = user_by_name(conn, name)
    if found is None or not _password_matches(password, found[1]):
        rate_limits().failed(*who)
        return _unauthorised("wrong user name, API token or password")
    g.user = found[0]
    return None


# Keyed hashes of (stored hash, password) pairs verified since the server started: a
# changed password has another stored hash, so its old entry no longer matches.
_VERIFIED: set[bytes] = set()
_VERIFIED_KEY = secrets.token_bytes(32)
_VERIFIED_LOCK = threading.Lock()


def _password_matches(password: str, stored: str) -> bool:
    """:func:`verify_password`, run once per password and stored hash."""
    mark = hmac.new(_VERIFIED_KEY, f"{stored}\0{password}".encode(), hashlib.sha256).digest()
    with _VERIFIED_LOCK:
        if mark in _VERIFIED:
            return True
    if not verify_password(password, stored):
        return False
    with _VERIFIED_LOCK:
        if len(_VERIFIED) > 10_000:
            _VERIFIED.clear()
        _VERIFIED.add(mark)
    return True


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
    # Bearer only: a Basic challenge would make browsers ask for and remember a password.
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


_FORM = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<title>{title}</title>
<style>body{{font:15px sans-serif;max-width:340px;margin:10vh auto}}
label{{display:block;margin:.6em 0}} input{{width:100%;padding:.4em}}
.error{{color:#b00}} .sg-lang{{float:right}}</style></head><body>
<a class="sg-lang" href="{switch}">{other}</a>
<h1>{heading}</h1>{error}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{next}">
<input type="hidden" name="lang" value="{lang}">
<label>{user} <input name="name" autocomplete="username" required></label>
<label>{password} <input name="password" type="password"
 autocomplete="current-password" required></label>
<button type="submit">{submit}</button></form></body></html>"""

LOGIN_TEXT = {
    "zh": {"title": "平安网格 · 登录", "heading": "平安网格", "user": "用户名",
           "password": "密码", "submit": "登录", "other": "English",
           "expired": "表单已过期，请重试", "too_many": "登录失败次数过多，请 {wait} 秒后再试",
           "wrong": "用户名或密码错误"},
    "en": {"title": "safegrid · Log in", "heading": "safegrid", "user": "User name",
           "password": "Password", "submit": "Log in", "other": "中文",
           "expired": "The form expired: try again",
           "too_many": "Too many failed logins: try again in {wait} s",
           "wrong": "Wrong user name or password"},
}


def _login_lang() -> str:
    """The login page's language: the form's, the address's, the next page's, or zh."""
    after = urlsplit(request.args.get("next") or request.form.get("next") or "")
    lang = (request.form.get("lang") or request.args.get("lang")
            or parse_qs(after.query).get("lang", ["zh"])[0])
    return lang if lang in LOGIN_TEXT else "zh"


def _with_lang(path: str, lang: str) -> str:
    """``path`` asking for ``lang`` when it is not Chinese and names no language itself."""
    if lang == "zh" or "lang=" in path:
        return path
    return path + ("&" if "?" in path else "?") + f"lang={lang}"


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
    lang = _login_lang()
    t = LOGIN_TEXT[lang]
    if request.method == "POST":
        who = ("login", request.remote_addr or "", request.form.get("name", "").strip().lower())
        wait = rate_limits().failure_wait(*who)
        if not _csrf_matches(request.form.get("csrf", "")):
            error, status = t["expired"], 400
        elif wait is not None:
            error = t["too_many"].format(wait=wait)
            status = 429
            headers["Retry-After"] = str(wait)
        else:
            with db_engine(current_app).connect() as conn:
                found = user_by_name(conn, request.form.get("name", ""))
            if found and verify_password(request.form.get("password", ""), found[1]):
                session.clear()
                session["uid"], session["name"] = found[0].id, found[0].name
                return redirect(_with_lang(_safe_next(request.form.get("next")), lang))
            rate_limits().failed(*who)
            error, status = t["wrong"], 401
    after = _safe_next(request.args.get("next") or request.form.get("next"))
    other = "en" if lang == "zh" else "zh"
    html = _FORM.format(
        lang=lang, title=escape(t["title"]), heading=escape(t["heading"]),
        user=escape(t["user"]), password=escape(t["password"]), submit=escape(t["submit"]),
        other=escape(t["other"]),
        switch=escape("/login?" + urlencode({"next": after, "lang": other})),
        error=f'<p class="error">{escape(error)}</p>' if error else "",
        csrf=escape(csrf_token()), next=escape(after))
    return html, status, headers


@bp.post("/logout")
def logout():
    """End the browser session (the form must carry the session's CSRF token)."""
    if session.get("uid") and not _csrf_matches(request.form.get("csrf", "")):
        return jsonify({"error": "logging out needs the page's CSRF token: reload the page"}), 403
    session.clear()
    return redirect(url_for("auth.login"))
