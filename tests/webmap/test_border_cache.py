"""The border answer kept between openings, on the small demo: the same as one computed
afresh, computed again after a write to an incident, camera or road inside the zone
(through plain SQL), revalidated by ETag, and never given to another user's scope."""

import datetime as dt
import json

import pytest
from sqlalchemy import text

from layers.border import KEPT_SECONDS, BorderQuery, border_view, kept_border_view
from layers.errors import Forbidden
from layers.users import user_by_name

pytestmark = pytest.mark.db

A, B = "430100", "430300"  # the partner's pair
D1, D2 = "430102", "430103"  # two districts of the police's city


def _timeless(body: dict) -> dict:
    """``body`` without the time each local side was read (a kept answer says when it
    was computed, at most KEPT_SECONDS ago); every other field as it is."""
    out = json.loads(json.dumps(body, ensure_ascii=False))
    for code, source in out["sources"].items():
        assert source["server"] == "local", code
        age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(source.pop("as_of"))
        assert dt.timedelta(seconds=-2) <= age <= dt.timedelta(seconds=KEPT_SECONDS + 2)
    return out


def _got(response) -> dict:
    """The answer of an HTTP request, as :func:`_timeless`."""
    return _timeless(response.json())


def _fresh(db, user: str, a: str, b: str, **kw) -> dict:
    """The answer computed now, without any kept one, as the API would send it."""
    with db.connect() as conn:
        body = border_view(conn, user_by_name(conn, user)[0], BorderQuery(a, b, **kw))
    return _timeless(json.loads(json.dumps(body, ensure_ascii=False, default=str)))


def _crossing(body: dict, covered: bool | None = None) -> tuple[float, float]:
    """(lon, lat) of a crossing of ``body`` (one not covered when ``covered`` is False)."""
    for f in body["crossings"]["features"]:
        if covered is None or f["properties"]["covered"] == covered:
            return tuple(f["geometry"]["coordinates"])
    pytest.skip("no such crossing in the demo")  # pragma: no cover


def test_a_kept_answer_is_the_fresh_one_and_revalidates(api, db):
    first = api("partner", f"/api/border?a={A}&b={B}&width=1500")
    again = api("partner", f"/api/border?a={A}&b={B}&width=1500")
    assert first.status_code == again.status_code == 200
    assert _got(first) == _got(again) == _fresh(db, "partner", A, B, width=1500.0)
    tag = again.headers["ETag"]
    assert tag == first.headers["ETag"]
    same = api("partner", f"/api/border?a={A}&b={B}&width=1500",
               headers={"If-None-Match": tag})
    assert same.status_code == 304 and same.content == b""
    # another query is another answer, with another tag
    other = api("partner", f"/api/border?a={A}&b={B}&width=1000")
    assert other.status_code == 200 and other.headers["ETag"] != tag
    assert _got(other) == _fresh(db, "partner", A, B, width=1000.0)


def test_a_write_inside_the_zone_is_seen_at_once(api, db):
    path = f"/api/border?a={A}&b={B}"
    before = _got(api("admin", path))
    lon, lat = _crossing(before)
    with db.begin() as conn:
        incident = conn.execute(text(
            "INSERT INTO incidents (geom, occurred_at, category, severity) VALUES "
            "(ST_SetSRID(ST_MakePoint(:x, :y), 4326), now() - interval '1 day', 'fraud', 2) "
            "RETURNING id"), {"x": lon, "y": lat}).scalar_one()
    try:
        after = _got(api("admin", path))
        assert after["incidents"]["total"] == before["incidents"]["total"] + 1
        assert after == _fresh(db, "admin", A, B)
    finally:
        with db.begin() as conn:
            conn.execute(text("DELETE FROM incidents WHERE id = :i"), {"i": incident})
    assert api("admin", path).json()["incidents"] == before["incidents"]


def test_a_new_camera_or_road_in_the_zone_is_seen_at_once(api, db):
    path = f"/api/border?a={A}&b={B}"
    before = _got(api("admin", path))
    lon, lat = _crossing(before, covered=False)
    with db.begin() as conn:
        camera = conn.execute(text(
            "INSERT INTO cameras (geom, code, bearing, fov, range_m, status) VALUES "
            "(ST_SetSRID(ST_MakePoint(:x, :y), 4326), 'TEST-BORDER-CACHE', 0, 360, 60, "
            "'online') RETURNING id"), {"x": lon, "y": lat}).scalar_one()
    try:
        watched = _got(api("admin", path))
        assert watched == _fresh(db, "admin", A, B)
        assert watched["coverage"]["uncovered_crossings"] < \
            before["coverage"]["uncovered_crossings"]
        assert "TEST-BORDER-CACHE" in {f["properties"]["code"]
                                       for f in watched["cameras"]["features"]}
    finally:
        with db.begin() as conn:
            conn.execute(text("DELETE FROM cameras WHERE id = :i"), {"i": camera})
    assert api("admin", path).json()["coverage"] == before["coverage"]
    assert api("admin", path).json()["cameras"] == before["cameras"]
    # a road along the border, 100 m of it inside the zone
    with db.begin() as conn:
        road = conn.execute(text(
            "INSERT INTO roads (geom, name, class) VALUES (ST_SetSRID(ST_MakeLine("
            "ST_MakePoint(:x - 0.0005, :y), ST_MakePoint(:x + 0.0005, :y)), 4326), "
            "'缓存测试路', 'residential') RETURNING id"), {"x": lon, "y": lat}).scalar_one()
    try:
        longer = _got(api("admin", path))
        assert longer["coverage"]["road_length_m"] > before["coverage"]["road_length_m"]
        assert longer == _fresh(db, "admin", A, B)
    finally:
        with db.begin() as conn:
            conn.execute(text("DELETE FROM roads WHERE id = :i"), {"i": road})
    assert _got(api("admin", path)) == before


def test_a_kept_answer_never_crosses_scopes(api, db):
    # the partner's answer is kept: the police may still not see that border
    assert api("partner", f"/api/border?a={A}&b={B}").status_code == 200
    assert api("police", f"/api/border?a={A}&b={B}").status_code == 403
    assert api("viewer", f"/api/border?a={A}&b={B}").status_code == 403
    # the police's districts are kept: the partner may still not see them
    police = api("police", f"/api/border?a={D1}&b={D2}")
    assert police.status_code == 200
    assert api("partner", f"/api/border?a={D1}&b={D2}").status_code == 403
    # each user of the pair gets the answer of their own role (viewers: aggregates)
    for user in ("police", "viewer", "admin"):
        r = api(user, f"/api/border?a={D1}&b={D2}")
        assert _got(r) == _fresh(db, user, D1, D2), user


def test_the_kept_answers_in_one_process_are_per_scope(db, demo_small):
    with db.connect() as conn:
        users = {n: user_by_name(conn, n)[0] for n in ("admin", "police", "viewer", "partner")}
        query = BorderQuery(D1, D2)
        for name in ("admin", "police", "viewer"):
            kept = json.loads(kept_border_view(conn, users[name], query))
            assert _timeless(kept) == _fresh(db, name, D1, D2), name
            assert kept_border_view(conn, users[name], query) == json.dumps(
                kept, ensure_ascii=False)
        with pytest.raises(Forbidden):
            kept_border_view(conn, users["partner"], query)
        kept_border_view(conn, users["partner"], BorderQuery(A, B))
        with pytest.raises(Forbidden):
            kept_border_view(conn, users["police"], BorderQuery(A, B))
