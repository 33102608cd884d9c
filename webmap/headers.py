"""Security headers on every answer, and one access-log line per request.

Pages get a Content-Security-Policy: scripts from this server's files, and inline
scripts only with this response's nonce (:func:`csp_nonce`, fresh for every request),
so script injected through data does not run; no inline event handlers, no ``eval``.
Styles may be inline (Folium's and Leaflet's style attributes), data comes from this
server, images from anywhere (basemap tiles); no plugins, no framing by other sites,
forms posted here only.

The access log (logger ``safegrid.access``, INFO) says who asked what and the answer:
method, path with query, status, milliseconds, user. Never headers, bodies or form
fields, so neither passwords nor tokens reach it.
"""

from __future__ import annotations

import logging
import secrets
import time

from flask import Flask, Response, g, request

__all__ = ["content_security_policy", "csp_nonce", "init_app"]

_POLICY = (
    "default-src 'self'",
    "script-src 'self' 'nonce-{nonce}'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob: https: http:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
)
_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "SAMEORIGIN",
    "Cross-Origin-Opener-Policy": "same-origin",
}

access_log = logging.getLogger("safegrid.access")


def init_app(app: Flask) -> None:
    """Add the headers and the access log to every response of ``app``."""
    app.before_request(_start_clock)
    app.after_request(_secure)
    app.after_request(_log)


def csp_nonce() -> str:
    """The nonce of this response's own inline scripts: made on first use, per request."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def content_security_policy(nonce: str) -> str:
    """The Content-Security-Policy of a page whose inline scripts carry ``nonce``."""
    return "; ".join(_POLICY).format(nonce=nonce)


def _start_clock() -> None:
    g.started = time.perf_counter()


def _secure(response: Response) -> Response:
    for name, value in _ALWAYS.items():
        response.headers.setdefault(name, value)
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy",
                                    content_security_policy(csp_nonce()))
    return response


def _log(response: Response) -> Response:
    if access_log.isEnabledFor(logging.INFO):
        ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        user = getattr(g.get("user"), "name", None) or "-"
        access_log.info("%s %s %s %d %.0f ms %s", request.remote_addr, request.method,
                        request.full_path.rstrip("?"), response.status_code, ms, user)
    return response
