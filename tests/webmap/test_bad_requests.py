"""Every case of the HTTP bad-input corpus (tests/data/bad_requests.py) over real HTTP:
the status, a JSON ``error`` naming the problem, and nothing written anywhere."""

import json

import pytest
from sqlalchemy import text

from layers import LAYERS
from tests.data.bad_requests import CASES, Case

pytestmark = pytest.mark.db


def _written(db) -> tuple:
    """Everything a write would change: the audit's last id, each layer's row count,
    highest id and sum of versions, and the saved analysis runs."""
    with db.connect() as conn:
        audit = conn.execute(text("SELECT coalesce(max(id), 0) FROM audit")).scalar_one()
        layers = tuple(conn.execute(text(
            f'SELECT count(*), coalesce(max(id), 0), coalesce(sum(version), 0) FROM "{name}"'
        )).one() for name in LAYERS)
        runs = tuple(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                     for t in ("hotspot_runs", "coverage_runs"))
    return audit, layers, runs


@pytest.fixture(scope="module")
def fill(db, demo_small) -> dict[str, str]:
    """Values for the corpus' placeholders, from the demo."""
    with db.connect() as conn:
        camera, version = conn.execute(text(
            "SELECT id, version FROM cameras WHERE jurisdiction_code LIKE '4301%' "
            "ORDER BY id LIMIT 1")).one()
        grid = conn.execute(text(
            "SELECT id FROM grids WHERE jurisdiction_code LIKE '430102%' AND version = 1 "
            "ORDER BY id LIMIT 1")).scalar_one()
    return {"camera": str(camera), "camera_etag": f'"{version}"', "camera_version": str(version),
            "stale_etag": f'"{version + 7}"', "grid": str(grid)}


def _filled(value, fill: dict[str, str]):
    if not isinstance(value, str):
        return value
    for key, replacement in fill.items():
        value = value.replace("{" + key + "}", replacement)
    return value


def test_the_corpus_names_are_unique():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert all(400 <= c.status < 500 for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_request_is_refused_and_writes_nothing(api, db, fill, case: Case):
    before = _written(db)
    headers = {k: _filled(v, fill) for k, v in case.headers.items()}
    r = api(case.user, _filled(case.path, fill), method=case.method,
            data=_filled(case.data(), fill), headers=headers)
    assert r.status_code == case.status, r.text[:300]
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert case.word in json.dumps(body, ensure_ascii=False), body
    assert _written(db) == before
