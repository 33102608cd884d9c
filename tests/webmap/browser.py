"""A logged-in page in Debian's headless Chromium, for the map tests."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"  # screenshots


@contextmanager
def logged_in(server: str, user: str, path: str) -> Iterator[Page]:
    """A page logged in as demo ``user`` at ``path``; ``page.errors`` collects JS errors.

    Basemap tiles are refused: the maps must work without them.
    """
    from layers.demo import DEMO_USERS

    password = next(u["password"] for u in DEMO_USERS if u["name"] == user)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/tile.openstreetmap.org/**", lambda route: route.abort())
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
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
