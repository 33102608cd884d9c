"""A logged-in page in Debian's headless Chromium, for the map tests."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit

from playwright.sync_api import Browser, Error, Page, sync_playwright

from ..conftest import demo_password

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"  # screenshots


_RUNNING: dict = {}  # this process's Playwright and Chromium, once started
_SESSIONS: dict[tuple[str, str, str], list] = {}  # (server, user, password) -> cookies


def chromium() -> Browser:
    """This test process's headless Chromium, launched on first use and shared by the
    tests that follow (each works in a browser context of its own: cookies, storage
    and cache apart); :func:`close_chromium` ends it."""
    browser = _RUNNING.get("browser")
    if browser is None or not browser.is_connected():
        if "playwright" not in _RUNNING:
            _RUNNING["playwright"] = sync_playwright().start()
        browser = _RUNNING["playwright"].chromium.launch(executable_path=CHROMIUM, args=ARGS)
        _RUNNING["browser"] = browser
    return browser


def close_chromium() -> None:
    """Close the shared Chromium and its Playwright, if they were started."""
    browser = _RUNNING.pop("browser", None)
    if browser is not None and browser.is_connected():
        browser.close()
    playwright = _RUNNING.pop("playwright", None)
    if playwright is not None:
        playwright.stop()


def log_in(page: Page, server: str, user: str, path: str, password: str) -> None:
    """Log in through the /login form, by keyboard and mouse, and land on ``path``."""
    page.goto(f"{server}/login?next={quote(path, safe='/')}")
    page.fill("input[name=name]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path.split('?')[0]}**")


@contextmanager
def logged_in(server: str, user: str, path: str, viewport: tuple[int, int] = (1280, 900),
              password: str | None = None) -> Iterator[Page]:
    """A page logged in as ``user`` at ``path``; ``page.errors`` collects JS errors.

    ``viewport`` is the window's width and height in CSS pixels; ``password`` is the
    demo user's unless given.

    The first time in a test process a user logs in to a server it is through the
    /login form; after that the page starts with that login's session cookie (and no
    other stored state) and opens ``path`` directly, or logs in by the form again if
    the server no longer takes the session.

    Basemap tiles are refused: the maps must work without them.
    """
    password = password or demo_password(user)
    key = (server, user, password)
    context = chromium().new_context(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        page = context.new_page()
        page.route("**/tile.openstreetmap.org/**", lambda route: route.abort())
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text)
                if "Content Security Policy" in msg.text else None)
        if key in _SESSIONS:
            context.add_cookies(_SESSIONS[key])
            page.goto(f"{server}{path}")
        if key not in _SESSIONS or urlsplit(page.url).path == "/login":
            log_in(page, server, user, path, password)
            _SESSIONS[key] = context.cookies()
        page.errors = errors
        OUTPUT.mkdir(exist_ok=True)
        yield page
    finally:
        context.close()


def wait_for(page: Page, expression: str, timeout: float = 30) -> object:
    """Poll ``expression`` in the page until it is truthy; its value.

    ``page.wait_for_function`` evaluates strings with ``eval``, which the pages'
    Content-Security-Policy forbids; ``page.evaluate`` goes through DevTools instead.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            value = page.evaluate(expression)
            if value:
                return value
        except Error as exc:  # not there yet (e.g. the map's state is still loading)
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {expression!r}"
                                 + (f": {last}" if last else ""))
        page.wait_for_timeout(100)
