"""Rate limits: requests per client and failed logins, answered with 429.

Counting is done by the ``limits`` library: moving windows (exact counts over the last
minute, not per calendar minute), in memory or in any storage it knows, e.g.
``redis://`` to share counts between server processes.

Configuration (``SAFEGRID_*`` environment variables or the app config):

``RATE_LIMIT``
    requests of one client, e.g. ``"3000/minute;100000/day"`` (``"off"``: none). A
    client is an API token (by its hash), else a browser session's user, else the
    address. Static files and the health check are not counted.
``LOGIN_LIMIT``
    failed logins of one user name from one address, and unknown API tokens from one
    address (default ``"10/5minutes"``): past it, the login form answers 429 until the
    window has passed, even for the right password, and so do unknown tokens (a known
    token still gets in).
``RATE_LIMIT_STORAGE``
    a ``limits`` storage URI (default ``memory://``).
"""

from __future__ import annotations

import hashlib
import math
import time

from flask import Flask, current_app, jsonify, request, session
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

__all__ = ["RateLimits", "init_app", "rate_limits", "too_many"]

EXEMPT_ENDPOINTS = {"static", "pages.health"}


class RateLimits:
    """The request and login-failure limits of one app."""

    def __init__(self, requests: str, failures: str, storage_uri: str = "memory://"):
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self.requests = _parse("RATE_LIMIT", requests)
        self.failures = _parse("LOGIN_LIMIT", failures)

    def hit_request(self, client: str) -> int | None:
        """Count one request of ``client``; seconds to wait when over a limit, else None."""
        return self._hit(self.requests, "request", client)

    def failure_wait(self, *who: str) -> int | None:
        """Seconds ``who`` must wait before trying again after failures, or None."""
        for item in self.failures:
            if not self._limiter.test(item, "failure", *who):
                return self._wait(item, "failure", *who)
        return None

    def failed(self, *who: str) -> None:
        """Count one failed login or unknown token of ``who``."""
        for item in self.failures:
            self._limiter.hit(item, "failure", *who)

    def _hit(self, items: list[RateLimitItem], *key: str) -> int | None:
        for item in items:
            if not self._limiter.hit(item, *key):
                return self._wait(item, *key)
        return None

    def _wait(self, item: RateLimitItem, *key: str) -> int:
        reset = self._limiter.get_window_stats(item, *key).reset_time
        return max(1, math.ceil(reset - time.time()))


def _parse(name: str, value: str) -> list[RateLimitItem]:
    value = (value or "").strip()
    if value.lower() in ("", "off", "none"):
        return []
    try:
        return parse_many(value)
    except ValueError as exc:
        raise ValueError(f"{name} {value!r} is not a rate limit like '3000/minute': {exc}") \
            from None


def init_app(app: Flask) -> None:
    """Install the limits of ``app``'s config and the per-request check."""
    app.extensions["safegrid.rate_limits"] = RateLimits(
        str(app.config["RATE_LIMIT"]), str(app.config["LOGIN_LIMIT"]),
        str(app.config["RATE_LIMIT_STORAGE"]))
    app.before_request(_limit_request)


def rate_limits() -> RateLimits:
    """The limits of the current app."""
    return current_app.extensions["safegrid.rate_limits"]


def too_many(message: str, wait: int):
    """A 429 JSON response saying ``message`` and when to try again."""
    response = jsonify({"error": f"{message}; try again in {wait} s"})
    response.status_code = 429
    response.headers["Retry-After"] = str(wait)
    return response


def client_key() -> str:
    """Who is asking: the API token's hash, the session's user, or the address."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return "token:" + hashlib.sha256(header[7:].strip().encode()).hexdigest()[:32]
    if session.get("uid"):
        return f"user:{session['uid']}"
    return f"addr:{request.remote_addr}"


def _limit_request():
    if request.endpoint in EXEMPT_ENDPOINTS:
        return None
    wait = rate_limits().hit_request(client_key())
    if wait is None:
        return None
    limits = ", ".join(f"{i.amount} per {i.multiples} {i.GRANULARITY.name}"
                       for i in rate_limits().requests)
    return too_many(f"too many requests from this client (at most {limits})", wait)
