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
    assert f"受理矛盾纠纷\n     <b>{now.get('dispute', 0)}</b>" in first_copy


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
