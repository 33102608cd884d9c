"""Every page, for every demo role, in both languages, in headless Chromium (1440×900).

Each page is opened as a user opens it: the maps from the address bar, the notice
from the link on the overview. Every one is kept as a screenshot in
``test-output/pages/`` (role-page-language.png) and its visible words are checked:
in Chinese no English word outside a short allow-list (units, method names, codes,
the English switch itself); in English no Chinese character. Names the data holds
(places, grids, roads, users) are proper names in either language and not counted.
Pages a role may not open answer a page in the user's language, not raw JSON.
"""

import re

import pytest
from sqlalchemy import text

from ..conftest import demo_password
from .browser import OUTPUT, chromium

pytestmark = [pytest.mark.db, pytest.mark.browser]

SHOTS = OUTPUT / "pages"
MAPS = ["/map", "/map/plan", "/map/analysis", "/map/coverage", "/map/border",
        "/reports/notice"]
# Pages a role may not open; every other page of MAPS answers 200.
REFUSED = {"partner": {"/map/analysis", "/map/coverage", "/reports/notice"}}
NO_NOTICE = {"partner"}  # a border partner reads no notice of the city
ROLES = ["admin", "planner", "police", "partner", "viewer"]
# Latin words a Chinese page may show: units, method and statistic names.
ALLOWED = {"Gi", "Getis", "Ord", "KDE", "PAI", "FDR", "Z", "p", "m", "km", "km²", "m²",
           "CSV", "GeoJSON", "safegrid", "Leaflet", "OpenStreetMap", "OSM", "API", "OGC", "GCJ"}
HALF_WIDTH = re.compile(r"[\u4e00-\u9fff][,;:](?!\d)")
CJK = re.compile(r"[\u3400-\u9fff\uff08\uff09\u3001\u3002\uff0c\uff1a\uff1b]")

# Visible text nodes and the texts a person meets in tooltips and placeholders.
TEXTS = """() => {
  const out = [];
  const shown = el => {
    if (el.closest('[hidden]')) return false;
    // folded away (a closed <details>, content-visibility) is not seen
    if (el.checkVisibility && !el.checkVisibility({visibilityProperty: true,
                                                    contentVisibilityAuto: true}))
      return false;
    const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && cs.display !== 'none';
  };
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const node = walk.currentNode, el = node.parentElement;
    if (!el || !node.textContent.trim() || el.closest('script,style,.sg-code')) continue;
    // the language switch names the other language in that language
    if (el.closest('a[href*="lang="]') && /^(English|中文)$/.test(node.textContent.trim()))
      continue;
    if (shown(el)) out.push(node.textContent.trim());
  }
  for (const el of document.querySelectorAll('[title],[placeholder],[aria-label]'))
    for (const a of ['title', 'placeholder', 'aria-label'])
      if (el.getAttribute(a) && shown(el)) out.push(el.getAttribute(a));
  for (const el of document.querySelectorAll('option'))
    if (el.parentElement && shown(el.parentElement)) out.push(el.textContent.trim());
  return out;
}"""


@pytest.fixture(scope="module")
def names(db, demo_small) -> tuple[list[str], set[str]]:
    """The names the data holds: places (longest first), proper names in either language
    wherever they stand; and people (users, and who made each saved analysis), which
    may stand only alone or after " · " (the header's user, a saved run's author), so
    that a role's raw name ("planner") elsewhere in a Chinese page still counts."""
    with db.connect() as conn:
        places = conn.execute(text("""
            SELECT name FROM jurisdictions UNION SELECT name FROM grids
            UNION SELECT name FROM key_areas UNION SELECT name FROM roads
            UNION SELECT name FROM checkpoints UNION SELECT name FROM patrol_routes"""))\
            .scalars()
        people = conn.execute(text("""
            SELECT name FROM users UNION SELECT created_by FROM hotspot_runs
            UNION SELECT created_by FROM coverage_runs""")).scalars()
        return sorted({n for n in places if n}, key=len, reverse=True), set(people)


@pytest.fixture(scope="module")
def browser():
    return chromium()


def _log_in(browser, server: str, user: str):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(f"{server}/login")
    page.fill("input[name=name]", user)
    page.fill("input[name=password]", demo_password(user))
    page.click("button[type=submit]")
    page.wait_for_url("**/map**")
    return context, page


# Resolves once the page has drawn two more frames (what the last answers changed).
FRAMES = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


def _settle(page) -> None:
    """Wait until the page has fetched and drawn what it shows at first."""
    try:
        page.wait_for_load_state("networkidle", timeout=20_000)
    except Exception:  # a page polling for ever is still checked as it stands
        pass
    page.evaluate(FRAMES)


def _leaks(texts: list[str], lang: str, names: tuple[list[str], set[str]]) -> list[str]:
    """The texts holding words of the other language (see the module's docstring)."""
    places, people = names
    bad = []
    for t in texts:
        rest = t
        for name in places:  # the data's names, in whatever language they were given
            rest = rest.replace(name, "")
        head, _dot, last = rest.rpartition(" · ")
        if rest in people:
            rest = ""
        elif last in people:
            rest = head
        if lang == "zh":
            words = re.findall(r"[A-Za-z][A-Za-z0-9_²]*", rest)
            if [w for w in words if w not in ALLOWED and not re.search(r"\d", w)]:
                bad.append(t)
            elif HALF_WIDTH.search(rest):  # Chinese text takes full-width ， ： ；
                bad.append(t)
        elif CJK.search(rest):
            bad.append(t)
    return bad


def _address(server: str, path: str, lang: str) -> str:
    return f"{server}{path}{'&' if '?' in path else '?'}lang={lang}"


def _visit(page, server: str, path: str, lang: str) -> int:
    response = page.goto(_address(server, path, lang))
    _settle(page)
    return response.status


def _shot(page, role: str, path: str, lang: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^a-z]+", "_", path).strip("_") or "root"
    page.screenshot(path=str(SHOTS / f"{role}-{name}-{lang}.png"))


def _problems(page, lang: str, names) -> list[str]:
    """The page's texts in the other language, and its ``<html lang>`` if wrong."""
    leaks = _leaks(page.evaluate(TEXTS), lang, names)
    if page.evaluate("document.documentElement.lang") != lang:
        leaks.append("<html lang> is not " + lang)
    return leaks


@pytest.mark.parametrize("role", ROLES)
def test_every_page_speaks_the_users_language(server, browser, names, role):
    context, page = _log_in(browser, server, role)
    problems: dict[str, list[str]] = {}
    try:
        for lang in ("zh", "en"):
            for path in MAPS:
                status = _visit(page, server, path, lang)
                refused = path in REFUSED.get(role, set())
                assert status == (403 if refused else 200), (role, path, lang, status)
                assert "html" in page.evaluate("document.contentType"), (role, path)
                _shot(page, role, path, lang)
                leaks = _problems(page, lang, names)
                if leaks:
                    problems[f"{path} {lang}"] = sorted(set(leaks))[:20]
            # the notice, opened from the overview's link as a user does
            _visit(page, server, "/map", lang)
            link = page.locator("a[href*='/reports/notice']")
            if role in NO_NOTICE:
                assert link.count() == 0, role
                continue
            link.first.click()
            page.wait_for_url("**/reports/notice**")
            _settle(page)
            _shot(page, role, "/reports/notice?from-map", lang)
            leaks = _problems(page, lang, names)
            if leaks:
                problems[f"/reports/notice {lang}"] = sorted(set(leaks))[:20]
        assert not page.errors, page.errors
    finally:
        context.close()
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())


def test_an_officer_chooses_a_notice_by_mouse(server, browser, db):
    context, page = _log_in(browser, server, "police")
    try:
        page.goto(f"{server}/reports/notice")
        _settle(page)
        with db.connect() as conn:
            name = conn.execute(text("SELECT name FROM jurisdictions WHERE code = '430102'"))\
                .scalar_one()
        page.select_option("select[name=jurisdiction]", "430102")
        page.fill("input[name=month]", "2026-09")
        page.click("button[type=submit]")
        page.wait_for_url("**/reports/notice?**jurisdiction=430102**")
        assert "month=2026-09" in page.url
        heading = page.locator("h1").first.text_content()
        assert name in heading and "2026年9月" in heading
        _shot(page, "police", "/reports/notice?chosen", "zh")
    finally:
        context.close()
