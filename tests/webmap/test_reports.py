"""The monthly security notice from the command line (HTML and PDF) and over HTTP."""

import re

import pytest
import requests
from sqlalchemy import text

from tests.conftest import login

pytestmark = pytest.mark.db

COMMUNITY = "430102001001"
CATEGORIES = {"criminal": "刑事案件", "public_order": "治安案件", "dispute": "矛盾纠纷",
              "fraud": "电信网络诈骗"}


def _sql_counts(db, start: str, end: str) -> dict:
    with db.connect() as conn:
        return dict(conn.execute(text(
            "SELECT i.category, count(*) FROM incidents i, jurisdictions j WHERE j.code = :c "
            "AND ST_Intersects(j.geom, i.geom) AND i.occurred_at >= CAST(:s AS timestamptz) "
            "AND i.occurred_at < CAST(:e AS timestamptz) GROUP BY 1"),
            {"c": COMMUNITY, "s": start, "e": end}).all())


def test_html_notice_counts_match_the_database(cli, db, demo_small, tmp_path):
    out = tmp_path / "notice.html"
    r = cli("report", "--jurisdiction", COMMUNITY, "--month", "2026-09", "--out", str(out))
    assert r.returncode == 0, r.stderr
    html = out.read_text(encoding="utf-8")
    assert html.count("治安状况告知</h1>") == 2  # a copy to post, a copy to archive
    assert "公示联" in html and "存档联" in html and "<svg" in html
    now = _sql_counts(db, "2026-09-01T00:00:00+08:00", "2026-10-01T00:00:00+08:00")
    before = _sql_counts(db, "2026-08-01T00:00:00+08:00", "2026-09-01T00:00:00+08:00")
    first_copy = html.split("存档联")[0]
    for category, label in CATEGORIES.items():
        row = re.search(rf"<tr><td>{label}</td><td>(\d+)</td><td>(\d+)</td>", first_copy)
        assert row, label
        assert (int(row[1]), int(row[2])) == (now.get(category, 0), before.get(category, 0))
    assert f"受理矛盾纠纷 <b>{now.get('dispute', 0)}</b>" in first_copy
    from webmap.reports import percent

    total, then = sum(now.values()), sum(before.values())
    assert f"较上月{percent(total, then)}" in first_copy  # both months have data
    assert f"<td>{total}</td><td>{then}</td><td>{percent(total, then)}</td>" in first_copy


def test_pdf_notice(cli, demo_small, tmp_path):
    out = tmp_path / "notice.pdf"
    r = cli("report", "--jurisdiction", COMMUNITY, "--month", "2026-09", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:5] == b"%PDF-" and out.stat().st_size > 10_000


@pytest.mark.parametrize("args,message", [
    (["--month", "2026-13"], "month must be YYYY-MM"),
    (["--month", "September"], "month must be YYYY-MM"),
    (["--jurisdiction", "999999"], "unknown jurisdiction"),
    (["--out", "notice.txt"], ".html or .pdf"),
])
def test_bad_report_arguments(cli, demo_small, tmp_path, args, message):
    given = {"--jurisdiction": COMMUNITY, "--month": "2026-09",
             "--out": str(tmp_path / "notice.html")}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        given[flag] = value if flag != "--out" else str(tmp_path / value)
    r = cli("report", *[x for pair in given.items() for x in pair])
    assert r.returncode == 2 and message in r.stderr
    assert not list(tmp_path.iterdir())  # nothing written


def test_notice_over_http(server):
    r = requests.get(f"{server}/reports/notice?jurisdiction={COMMUNITY}&month=2026-09",
                     allow_redirects=False, timeout=10)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    viewer = login(server, "viewer")
    page = viewer.get(f"{server}/reports/notice", params={"jurisdiction": COMMUNITY,
                                                          "month": "2026-09"}, timeout=60)
    assert page.status_code == 200 and "治安状况告知" in page.text
    for params, status, message in (
            ({"jurisdiction": "430200", "month": "2026-09"}, 403, "outside"),
            ({"jurisdiction": COMMUNITY}, 400, "required"),
            ({"jurisdiction": COMMUNITY, "month": "2026-9"}, 400, "YYYY-MM")):
        bad = viewer.get(f"{server}/reports/notice", params=params, timeout=30)
        assert bad.status_code == status and message in bad.json()["error"]


def _notice(server: str, month: str, lang: str = "zh") -> str:
    viewer = login(server, "viewer")
    page = viewer.get(f"{server}/reports/notice", timeout=60,
                      params={"jurisdiction": COMMUNITY, "month": month, "lang": lang})
    assert page.status_code == 200, page.text[:300]
    return page.text


def _cells(html: str, label: str) -> list[str]:
    row = re.search(rf"<tr[^>]*><td>{label}</td>((?:<td>[^<]*</td>)+)</tr>", html)
    assert row, label
    return re.findall(r"<td>([^<]*)</td>", row[1])


def test_a_month_with_no_data_says_so_instead_of_minus_100_percent(server):
    html = _notice(server, "2026-11")  # the demo's incidents end in October 2026
    assert html.count("本月暂无警情数据（尚未录入），不作统计和比较。") == 2  # both copies
    assert "%" not in html.split("<table>")[1].split("</table>")[0]
    assert "本月共接报警情" not in html
    for label in (*CATEGORIES.values(), "合计"):
        now, before, mom, last_year, yoy = _cells(html, label)
        assert now == "无数据" and before.isdigit() and mom == yoy == "—", label
    assert int(_cells(html, "合计")[1]) > 0  # October had incidents: no −100 % against them
    english = _notice(server, "2026-11", "en")
    assert "There are no incident data for this month yet" in english
    assert _cells(english, "Total")[0] == "no data" and "-100%" not in english
    assert 'lang="en"' in english and "lang=zh" in english  # and back to Chinese


def test_a_month_after_a_month_with_no_data_compares_with_nothing(server):
    html = _notice(server, "2025-11")  # the demo's incidents start in November 2025
    first_copy = html.split("存档联")[0]
    assert "上月无警情数据，不作环比。" in first_copy
    assert "去年同月无警情数据，不作同比。" in first_copy
    assert "较上月" not in first_copy and "较去年同月" not in first_copy
    for label in (*CATEGORIES.values(), "合计"):
        now, before, mom, last_year, yoy = _cells(first_copy, label)
        assert now.isdigit() and before == last_year == "无数据" and mom == yoy == "—"
    assert "新增" not in _cells(first_copy, "合计")


@pytest.mark.parametrize(("now", "then", "recorded", "shown"), [
    (5, 0, (True, True), "新增"),  # none the month before: no +∞ %
    (0, 0, (True, True), "持平"),
    (7, 7, (True, True), "持平"),
    (0, 5, (True, True), "-100%"),  # a real drop to none, both months recorded
    (0, 5, (False, True), "—"),  # this month has no data
    (5, 3, (True, False), "—"),  # the month compared with has no data
    (3, 2, (True, True), "+50%"),
    (2, 3, (True, True), "-33%"),
    (1004, 1000, (True, True), "+0.4%"),  # not "+0%"
    (996, 1000, (True, True), "-0.4%"),
    (1, 2000, (True, True), "-99.95%"),  # not "-100%" while one is left
    (1, 300, (True, True), "-99.7%"),
])
def test_changes_are_said_without_rounding_into_something_else(now, then, recorded, shown):
    from webmap.reports import change, percent

    assert change(now, then, recorded, "zh") == shown
    assert change(now, then, recorded, "en") == {"新增": "up from none",
                                                 "持平": "no change"}.get(shown, shown)
    if then and all(recorded) and now != then:
        assert percent(now, then) == shown


def _svg_names(html: str, kind: str) -> list[str]:
    import html as entities

    return [entities.unescape(t) for t in
            re.findall(rf'<text x="[^"]+" y="[^"]+" class="{kind}">([^<]*)</text>', html)]


def test_the_map_has_the_streets_and_places(server, db):
    """A street's notice names its communities; a community's names its main streets."""
    with db.connect() as conn:
        street = conn.execute(text("SELECT parent_code FROM jurisdictions WHERE code = :c"),
                              {"c": COMMUNITY}).scalar_one()
        communities = [r[0] for r in conn.execute(text(
            "SELECT name FROM jurisdictions WHERE parent_code = :p ORDER BY code"),
            {"p": street})]
        streets = {r[0] for r in conn.execute(text(
            "SELECT DISTINCT r.name FROM roads r, jurisdictions j WHERE j.code = :c "
            "AND ST_Intersects(r.geom, j.geom) AND r.class IN "
            "('motorway', 'arterial', 'collector') AND r.name IS NOT NULL"),
            {"c": COMMUNITY})}
    viewer = login(server, "viewer")
    page = viewer.get(f"{server}/reports/notice", timeout=60,
                      params={"jurisdiction": street, "month": "2026-09"})
    assert page.status_code == 200, page.text[:300]
    copies = page.text.count('<section class="copy">')  # the notice is printed twice
    assert copies >= 1
    assert _svg_names(page.text, "place-name") == communities * copies
    assert 'class="road"' in page.text
    shown = _svg_names(_notice(server, "2026-09"), "road-name")
    assert shown and set(shown) <= streets
    assert len(shown) == copies * min(len(streets), 8)
