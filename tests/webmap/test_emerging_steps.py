"""Emerging hot spots: steps aligned to the end of the period, so no short last step decides.

A cluster planted in December 2024 alone (the demo has no incidents before November
2025) must come out a new hot spot for a year given as dates, ``to`` inclusive.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import shapely
from sqlalchemy import text

pytestmark = pytest.mark.db

CITY = "430100"
CST = ZoneInfo("Asia/Shanghai")


@pytest.fixture()
def december_cluster(db, demo_small):
    """40 incidents within 60 m of a point of the city, 5-28 December 2024; its point."""
    with db.connect() as conn:
        code, x, y = conn.execute(text(
            "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) AS p "
            "FROM jurisdictions WHERE parent_code LIKE '4301%' AND level = 'community' "
            "ORDER BY code LIMIT 1) c")).one()
    rows = [{"c": code, "x": x + 0.0005 * ((i % 7) - 3) / 3,
             "y": y + 0.0005 * ((i // 7) % 5 - 2) / 2,
             "t": dt.datetime(2024, 12, 5 + i % 24, 12, tzinfo=CST)} for i in range(40)]
    with db.begin() as conn:
        conn.execute(text(
            "INSERT INTO incidents (geom, occurred_at, category, jurisdiction_code, "
            "updated_by) VALUES (ST_SetSRID(ST_MakePoint(:x, :y), 4326), :t, 'theft', "
            ":c, 'test-december')"), rows)
    yield shapely.Point(x, y)
    with db.begin() as conn:
        conn.execute(text("DELETE FROM incidents WHERE updated_by = 'test-december'"))


@pytest.mark.parametrize("to,partial", [("2025-01-01", True), ("2024-12-31", False)])
def test_a_december_cluster_is_a_new_hot_spot(api, december_cluster, to, partial):
    r = api("police", f"/api/hotspots/emerging?jurisdiction={CITY}&cell=400&step=month&"
                      f"from=2024-01-01&to={to}")
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    edges = body["step_edges"]
    # the last step is a whole month ending with the period; only the first may be short
    end = dt.date.fromisoformat(to) + dt.timedelta(days=1)
    assert dt.datetime.fromisoformat(edges[-1]["to"]).date() == end
    last = dt.datetime.fromisoformat(edges[-1]["from"])
    assert (last.month, last.day) == (end.month - 1 or 12, end.day)
    assert body["parameters"]["first_step_partial"] is partial
    assert len(edges) == body["parameters"]["steps"] == (13 if partial else 12)
    assert all(a["to"] == b["from"] for a, b in zip(edges, edges[1:], strict=False))
    cluster = [f for f in body["features"]
               if shapely.geometry.shape(f["geometry"]).distance(december_cluster) < 0.002
               and f["properties"]["counts"][-1] > 0]
    assert cluster, "the cluster's cells are answered"
    assert sum(f["properties"]["counts"][-1] for f in cluster) == 40  # all in the last step
    busiest = max(cluster, key=lambda f: f["properties"]["count"])
    assert busiest["properties"]["category"] == "new_hot_spot"
