"""The data clock over HTTP on the small demo: the 7 x 24 counts against a pandas groupby of
incidents read here by SQL and converted to Asia/Shanghai, the same inside one grid, the
hours and weekdays filters, and the refusals (unknown grid, another's grid, bad values)."""

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

pytestmark = pytest.mark.db

DISTRICT = "430102"
COMMUNITY = "430102001001"
PERIOD = "from=2026-03-01&to=2026-08-31"
GRID_IN, GRID_AWAY = "430102001001001", "430202001001001"  # grid codes: ours, 430200's


def _local(db, code: str, grid: str | None = None) -> pd.DatetimeIndex:
    """Local times (Asia/Shanghai) of the incidents of ``code`` (in grid ``grid``)."""
    inside = " AND ST_Contains(g.geom, i.geom)" if grid else ""
    with db.connect() as conn:
        times = conn.execute(text(
            "SELECT i.occurred_at FROM incidents i JOIN jurisdictions j ON j.code = :c "
            "AND ST_Intersects(j.geom, i.geom) LEFT JOIN grids g ON g.code = :g "
            "WHERE i.occurred_at >= '2026-03-01T00:00:00+08:00' "
            "AND i.occurred_at < '2026-09-01T00:00:00+08:00'" + inside),
            {"c": code, "g": grid}).scalars().all()
    return pd.DatetimeIndex(pd.to_datetime(times, utc=True)).tz_convert("Asia/Shanghai")


def _clock(local: pd.DatetimeIndex) -> np.ndarray:
    counts = pd.Series(1, index=local).groupby([local.day_of_week, local.hour]).sum()
    return counts.reindex(pd.MultiIndex.from_product([range(7), range(24)]),
                          fill_value=0).to_numpy().reshape(7, 24)


def _grid_id(db, code: str) -> int:
    with db.connect() as conn:
        return conn.execute(text("SELECT id FROM grids WHERE code = :c"),
                            {"c": code}).scalar_one()


def test_the_clock_counts_incidents_by_local_weekday_and_hour(api, db):
    r = api("police", f"/api/hotspots/clock?jurisdiction={DISTRICT}&{PERIOD}")
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    local = _local(db, DISTRICT)
    ref = _clock(local)
    assert len(local) > 500 and np.array_equal(body["counts"], ref)
    assert body["weekdays"][0] == "Monday" and body["hours"] == list(range(24))
    assert body["total"] == len(local)
    assert body["by_weekday"] == ref.sum(axis=1).tolist()
    assert body["by_hour"] == ref.sum(axis=0).tolist()
    assert body["parameters"]["time_zone"] == "Asia/Shanghai" and "grid" not in body


def test_a_grid_has_the_clock_of_the_incidents_inside_it(api, db):
    grid = _grid_id(db, GRID_IN)
    r = api("viewer", f"/api/hotspots/clock?jurisdiction={DISTRICT}&{PERIOD}&grid={grid}")
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    local = _local(db, DISTRICT, GRID_IN)
    assert 0 < len(local) < body["total"] == len(_local(db, DISTRICT))
    assert body["grid"]["id"] == grid and body["grid"]["code"] == GRID_IN
    assert np.array_equal(body["grid"]["counts"], _clock(local))
    assert body["grid"]["total"] == len(local)
    # the grid lies in the community: asked of the community, its clock is the same
    community = api("viewer", f"/api/hotspots/clock?jurisdiction={COMMUNITY}&{PERIOD}"
                              f"&grid={grid}").json()
    assert community["grid"]["counts"] == body["grid"]["counts"]


def test_hours_and_weekdays_filter_the_clock(api, db):
    r = api("police", f"/api/hotspots/clock?jurisdiction={DISTRICT}&{PERIOD}"
                      "&hours=22-6&weekdays=6-1")
    assert r.status_code == 200, r.text[:300]
    ref = _clock(_local(db, DISTRICT))
    kept = np.zeros((7, 24), dtype=bool)
    kept[np.ix_([5, 6, 0], [22, 23, 0, 1, 2, 3, 4, 5])] = True
    assert np.array_equal(r.json()["counts"], np.where(kept, ref, 0))
    assert r.json()["total"] == ref[kept].sum() > 0


@pytest.mark.parametrize(("user", "grid", "jurisdiction", "status", "named"), [
    ("police", "999999", COMMUNITY, 404, "999999"),
    ("police", "abc", COMMUNITY, 400, "grid"),
    ("police", "-1", COMMUNITY, 400, "grid"),
    ("police", GRID_AWAY, COMMUNITY, 404, "that you may see"),  # another city's grid
    ("admin", GRID_AWAY, COMMUNITY, 400, f"not in {COMMUNITY}"),
])
def test_unknown_or_unseen_grids_are_refused(api, db, user, grid, jurisdiction, status, named):
    if grid in (GRID_IN, GRID_AWAY):
        grid = str(_grid_id(db, grid))
    r = api(user, f"/api/hotspots/clock?jurisdiction={jurisdiction}&{PERIOD}&grid={grid}")
    assert r.status_code == status, r.text[:300]
    assert named in r.json()["error"]


@pytest.mark.parametrize(("param", "status", "named"), [
    ("hours=24", 400, "hours '24'"), ("weekdays=1-8", 400, "weekdays '1-8'"),
    ("category=arson", 400, "category"), ("cell=300", 400, "'cell'"),
    ("jurisdiction=430200", 403, "outside your jurisdiction"),
])
def test_bad_parameters_of_the_clock_are_refused_naming_them(api, param, status, named):
    query = f"jurisdiction={DISTRICT}&{PERIOD}"
    if param.startswith("jurisdiction"):
        query = PERIOD
    r = api("police", f"/api/hotspots/clock?{query}&{param}")
    assert r.status_code == status and named in r.json()["error"], r.text[:300]


def _minute_clock(starts: pd.DatetimeIndex, ends: pd.DatetimeIndex) -> np.ndarray:
    """Brute force: each incident's weight 1 spread over the seconds from start to end
    (local time), or all on the start's hour when it has no end."""
    table = np.zeros((7, 24))
    for start, end in zip(starts, ends, strict=True):
        if pd.isna(end) or end <= start:
            table[start.day_of_week, start.hour] += 1
            continue
        seconds = pd.date_range(start, end, freq="s", inclusive="left")
        np.add.at(table, (seconds.day_of_week, seconds.hour), 1 / len(seconds))
    return table


def test_incidents_known_only_between_two_times_are_spread_over_the_hours(db):
    """occurred_until (a burglary found in the morning) spreads an incident aoristically;
    checked in a transaction that is rolled back, so the demo stays as it is."""
    import datetime as dt

    from layers.clock import run_clock
    from layers.hotspots import HotspotQuery
    from layers.users import User

    cst = dt.timezone(dt.timedelta(hours=8))
    query = HotspotQuery(DISTRICT, dt.datetime(2026, 6, 1, tzinfo=cst),
                         dt.datetime(2026, 7, 1, tzinfo=cst))
    with db.connect() as conn, conn.begin() as work:
        conn.execute(text(
            "UPDATE incidents SET occurred_until = occurred_at + interval '9 hours 20 minutes' "
            "WHERE id % 2 = 0 AND occurred_at >= '2026-06-01T00:00:00+08:00' "
            "AND occurred_at < '2026-07-01T00:00:00+08:00'"))
        body = run_clock(conn, User(0, "tester", "admin", None, None), query)
        rows = conn.execute(text(
            "SELECT i.occurred_at, i.occurred_until FROM incidents i JOIN jurisdictions j "
            "ON j.code = :c AND ST_Intersects(j.geom, i.geom) "
            "WHERE i.occurred_at >= '2026-06-01T00:00:00+08:00' "
            "AND i.occurred_at < '2026-07-01T00:00:00+08:00'"), {"c": DISTRICT}).all()
        work.rollback()
    starts = pd.DatetimeIndex(pd.to_datetime([r[0] for r in rows], utc=True))
    ends = pd.DatetimeIndex(pd.to_datetime([r[1] for r in rows], utc=True))
    spans = int((~ends.isna()).sum())
    assert 20 < spans < len(rows)  # some spread, some not
    ref = _minute_clock(starts.tz_convert("Asia/Shanghai"), ends.tz_convert("Asia/Shanghai"))
    np.testing.assert_allclose(np.array(body["counts"], dtype=float), ref, atol=1e-6)
    assert body["total"] == pytest.approx(len(rows))
