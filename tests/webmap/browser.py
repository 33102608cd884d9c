"""A logged-in page in Debian's headless Chromium, for the map tests."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Error, Page, sync_playwright

from ..conftest import demo_password

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"  # screenshots


@contextmanager
def logged_in(server: str, user: str, path: str, viewport: tuple[int, int] = (1280, 900),
              password: str | None = None) -> Iterator[Page]:
    """A page logged in as ``user`` at ``path``; ``page.errors`` collects JS errors.

    ``viewport`` is the window's width and height in CSS pixels; ``password`` is the
    demo user's unless given.

    Basemap tiles are refused: the maps must work without them.
    """
    password = password or demo_password(user)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        page.route("**/tile.openstreetmap.org/**", lambda route: route.abort())
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text)
                if "Content Security Policy" in msg.text else None)
        page.goto(f"{server}/login?next={quote(path, safe='/')}")
        page.fill("input[name=name]", user)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"**{path.split('?')[0]}**")
        page.errors = errors
        OUTPUT.mkdir(exist_ok=True)
        try:
            yield page
        finally:
            browser.close()


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
