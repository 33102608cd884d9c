"""Rate limits: request cost per client and failed logins, answered with 429.

Requests are counted by their cost: an ordinary request costs :data:`UNITS` units, and
a feature page or a single feature (a short keyset walk) one unit, plus a unit per 1000
features returned and an ordinary request's worth when the exact count
(``numberMatched``) had to be made for it rather than reused. So a client paging a
whole layer, 10 features a page as GDAL does by default, pays a tenth of a request per
page, while analyses, tiles and writes pay in full.

Counting is done by the ``limits`` library: moving windows (exact counts over the last
minute, not per calendar minute), in memory or in any storage it knows, e.g.
``redis://`` to share counts between server processes.

Configuration (``SAFEGRID_*`` environment variables or the app config):

``RATE_LIMIT``
    ordinary requests of one client, e.g. ``"3000/minute;100000/day"`` (``"off"``:
    none); cheaper requests count for less, as above. A client is an API token (by its
    hash), HTTP Basic credentials (by their hash), else a browser session's user, else
    the address. Static files and the health check are not counted.
``LOGIN_LIMIT``
    failed logins of one user name from one address (through the login form or HTTP
    Basic), and unknown API tokens from one address (default ``"10/5minutes"``): past
    it, logins answer 429 until the window has passed, even for the right password, and
    so do unknown tokens (a known token still gets in).
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

__all__ = ["UNITS", "RateLimits", "charge", "client_key", "init_app", "page_cost",
           "rate_limits", "too_many"]

EXEMPT_ENDPOINTS = {"static", "pages.health"}
UNITS = 10  # cost of an ordinary request, in the units a limit is counted in
# Reading a page of features or one feature: one unit up front (see page_cost).
LIGHT_ENDPOINTS = {"ogcapi.items", "ogcapi.item"}


class RateLimits:
    """The request and login-failure limits of one app."""

    def __init__(self, requests: str, failures: str, storage_uri: str = "memory://"):
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self.requests = _parse("RATE_LIMIT", requests)
        self._units = [type(i)(i.amount * UNITS, i.multiples, i.namespace)
                       for i in self.requests]
        self.failures = _parse("LOGIN_LIMIT", failures)

    def hit_request(self, client: str, units: int = UNITS) -> int | None:
        """Count a request of ``client`` costing ``units``; seconds to wait when over."""
        for item in self._units:
            if not self._limiter.hit(item, "request", client, cost=units):
                return self._wait(item, "request", client)
        return None

    def charge(self, client: str, units: int) -> None:
        """Add ``units`` to what ``client`` spent (the request is already answered)."""
        for item in self._units:
            self._limiter.hit(item, "request", client, cost=units)

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
    """Who is asking: the API token's or Basic credentials' hash, the user, the address."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() in ("bearer", "basic") and credentials.strip():
        digest = hashlib.sha256(credentials.strip().encode()).hexdigest()[:32]
        return ("token:" if scheme.lower() == "bearer" else "basic:") + digest
    if session.get("uid"):
        return f"user:{session['uid']}"
    return f"addr:{request.remote_addr}"


def page_cost(returned: int, counted: bool) -> int:
    """Units a page of ``returned`` features costs beyond the unit paid up front.

    One per 1000 features, and an ordinary request's worth when its exact count was
    made for it (``counted``) rather than reused.
    """
    return returned // 1000 + (UNITS - 1 if counted else 0)


def charge(units: int) -> None:
    """Add ``units`` to the cost of the current request (when limits are on)."""
    if units > 0 and rate_limits().requests and request.endpoint not in EXEMPT_ENDPOINTS:
        rate_limits().charge(client_key(), units)


def _limit_request():
    if request.endpoint in EXEMPT_ENDPOINTS:
        return None
    light = request.endpoint in LIGHT_ENDPOINTS and request.method in ("GET", "HEAD")
    wait = rate_limits().hit_request(client_key(), 1 if light else UNITS)
    if wait is None:
        return None
    limits = ", ".join(f"{i.amount} per {i.multiples} {i.GRANULARITY.name}"
                       for i in rate_limits().requests)
    return too_many(f"too many requests from this client (at most {limits} ordinary "
                    "requests; a page of features costs a tenth of one)", wait)
