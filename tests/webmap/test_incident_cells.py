"""Incidents given to a border partner as counts per cell only (``incident_cells``).

A border partner whose user says ``partner_incidents = cells`` is refused the incident
points and reads ``/collections/incident_cells`` instead. The cells are checked against
the border view of the same zone on the same server (the reference: its totals per side,
hour and category, and the counts of its hot cells), and against a brute-force tally of
the points the server holds.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import requests
from sqlalchemy import text

from layers.users import add_user, issue_token, set_partner_incidents

pytestmark = pytest.mark.db

A, B = "430100", "430300"  # the partner's city (a) and ours (b), as the demo's partner


@pytest.fixture(scope="module")
def cells_partner(db, demo_small):
    """A token of a border partner (jurisdiction B, partner A) given cells only."""
    with db.begin() as conn:
        add_user(conn, "cells_partner", "border_partner", "a-long-password", B, A, "cells")
        token = issue_token(conn, "cells_partner")
    yield token
    with db.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE name = 'cells_partner'"))


def _get(server: str, token: str, path: str, **params) -> requests.Response:
    return requests.get(f"{server}{path}", params=params, timeout=120,
                        headers={"Authorization": f"Bearer {token}"})


def _all_cells(server: str, token: str, **params) -> list[dict]:
    """Every cell, following the next links."""
    page = _get(server, token, "/collections/incident_cells/items", **params)
    assert page.status_code == 200, page.text
    body = page.json()
    cells = list(body["features"])
    while next_link := [link["href"] for link in body["links"] if link["rel"] == "next"]:
        body = requests.get(next_link[0], timeout=60,
                            headers={"Authorization": f"Bearer {token}"}).json()
        cells.extend(body["features"])
    return cells


def test_a_cells_partner_gets_no_points_and_finds_the_cells_listed(server, cells_partner):
    refused = _get(server, cells_partner, "/collections/incidents/items")
    assert refused.status_code == 403
    assert "incident_cells" in refused.json()["error"]
    listed = _get(server, cells_partner, "/collections").json()["collections"]
    assert "incident_cells" in {c["id"] for c in listed}
    assert "incidents" not in {c["id"] for c in listed}
    assert _get(server, cells_partner, "/collections/incident_cells").status_code == 200


def test_other_roles_are_refused_the_cells(api):
    for user in ("admin", "police", "viewer"):
        r = api(user, "/collections/incident_cells/items")
        assert r.status_code == 403, (user, r.text)
        assert "border partner" in r.json()["error"]
    listed = {c["id"] for c in api("admin", "/collections").json()["collections"]}
    assert "incident_cells" not in listed


def test_the_cells_add_up_to_the_border_view_of_the_same_zone(api, server, cells_partner):
    days = 365
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    view = api("admin", f"/api/border?a={A}&b={B}&days={days}").json()
    cells = _all_cells(server, cells_partner, limit=7,
                       datetime=f"{start.isoformat(timespec='seconds')}/..")
    assert cells, "the demo has incidents in the zone"
    assert len({c["id"] for c in cells}) == len(cells)
    props = [c["properties"] for c in cells]
    assert sum(p["count"] for p in props) == view["incidents"]["total"]
    by_side = Counter()
    for p in props:
        by_side[p["side"]] += p["count"]
    assert dict(by_side) == {k: v for k, v in view["incidents"]["by_side"].items() if v}
    hours = [sum(p["by_hour"][h] for p in props) for h in range(24)]
    assert hours == view["incidents"]["by_hour"]
    kinds = Counter()
    for p in props:
        kinds.update(p["by_category"])
    assert dict(kinds) == view["incidents"]["by_category"]
    # every hot cell of the view holds as many incidents as the cells at its place
    per_cell = Counter()
    for p in props:
        per_cell[(p["col"], p["row"])] += p["count"]
    size = props[0]["size_m"]
    assert size == view["parameters"]["hot_cell"]
    assert props[0]["crs"] == view["parameters"]["metric_crs"]
    for hot in view["hot_cells"]["features"]:
        corners = hot["geometry"]["coordinates"][0]
        lon = sum(c[0] for c in corners[:4]) / 4
        lat = sum(c[1] for c in corners[:4]) / 4
        near = {(c["properties"]["col"], c["properties"]["row"]) for c in cells
                if _contains(c["geometry"], lon, lat)}
        assert len(near) <= 1  # no cell when it is hot by its neighbours alone
        held = per_cell[near.pop()] if near else 0
        assert held == hot["properties"]["count"]


def _contains(polygon: dict, lon: float, lat: float) -> bool:
    ring = polygon["coordinates"][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return min(xs) <= lon <= max(xs) and min(ys) <= lat <= max(ys)


def test_the_period_and_the_box_narrow_the_cells(server, cells_partner, db):
    everything = _all_cells(server, cells_partner, limit=10000)
    total = sum(c["properties"]["count"] for c in everything)
    cut = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    later = _all_cells(server, cells_partner, limit=10000,
                       datetime=f"{cut.isoformat(timespec='seconds')}/..")
    earlier = _all_cells(server, cells_partner, limit=10000,
                         datetime=f"../{cut.isoformat(timespec='seconds')}")
    assert sum(c["properties"]["count"] for c in later) + \
        sum(c["properties"]["count"] for c in earlier) == total
    assert 0 < sum(c["properties"]["count"] for c in later) < total
    one = everything[0]["geometry"]["coordinates"][0]
    box = f"{one[0][0] + 1e-6},{one[0][1] + 1e-6},{one[2][0] - 1e-6},{one[2][1] - 1e-6}"
    inside = _all_cells(server, cells_partner, bbox=box)
    assert everything[0]["id"] in {c["id"] for c in inside}
    assert len(inside) < len(everything)


@pytest.mark.parametrize(("params", "status", "names"), [
    ({"width": "wide"}, 400, "width"),
    ({"tolerance": "1e999x"}, 400, "tolerance"),
    ({"width": "5000"}, 403, "2000"),
    ({"width": "0"}, 422, "width"),
    ({"datetime": "yesterday"}, 400, "datetime"),
    ({"colour": "red"}, 400, "colour"),
    ({"limit": "0"}, 400, "limit"),
    ({"after": "x"}, 400, "after"),
])
def test_bad_cells_requests_say_which_parameter(server, cells_partner, params, status, names):
    r = _get(server, cells_partner, "/collections/incident_cells/items", **params)
    assert r.status_code == status, r.text
    assert names in r.json()["error"]


def test_the_cells_revalidate_by_etag(server, cells_partner):
    first = _get(server, cells_partner, "/collections/incident_cells/items", limit=5)
    tag = first.headers["ETag"]
    again = requests.get(f"{server}/collections/incident_cells/items", params={"limit": 5},
                         timeout=60, headers={"Authorization": f"Bearer {cells_partner}",
                                              "If-None-Match": tag})
    assert again.status_code == 304


def test_the_policy_changes_what_the_partner_reads(server, db, cells_partner):
    with db.begin() as conn:
        set_partner_incidents(conn, "cells_partner", "points")
    try:
        assert _get(server, cells_partner, "/collections/incidents/items",
                    limit=1).status_code == 200
    finally:
        with db.begin() as conn:
            set_partner_incidents(conn, "cells_partner", "cells")
    assert _get(server, cells_partner, "/collections/incidents/items").status_code == 403
