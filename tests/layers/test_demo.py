"""The generated demo: deterministic, and shaped like the issue describes."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from layers import LAYERS
from layers.demo import default_end, generate
from layers.registry import KEY_AREA_CATEGORIES

from ..conftest import DEMO_END


@pytest.fixture(scope="module")
def small():
    return generate("small", 1, end=DEMO_END)


def test_same_seed_same_data_other_seed_other_data(small):
    again = generate("small", 1, end=DEMO_END)
    other = generate("small", 2, end=DEMO_END)
    for name in LAYERS:
        assert small[name].geometry.equals(again[name].geometry)
        pd.testing.assert_frame_equal(small[name].drop(columns="geometry"),
                                      again[name].drop(columns="geometry"))
    assert not small["incidents"].geometry.equals(other["incidents"].geometry)


def test_three_adjacent_cities_with_irregular_borders(small):
    jur = small["jurisdictions"].to_crs(32649)
    cities = jur[jur.level == "city"].geometry.values
    assert len(cities) == 3
    for i in range(3):
        # not rectangles: far from their bounding box, many vertices
        assert cities[i].area < 0.9 * shapely.envelope(cities[i]).area
        assert shapely.get_num_coordinates(cities[i]) > 30
        for j in range(i + 1, 3):
            shared = shapely.intersection(cities[i].boundary, cities[j].boundary)
            assert shared.length > 1000, (i, j)  # metres of common border
            assert shapely.intersection(cities[i], cities[j]).area < 1.0  # no overlap


def test_hierarchy_levels_and_communities_tile_their_city(small):
    jur = small["jurisdictions"]
    assert set(jur.level) == {"province", "city", "district", "street", "community"}
    codes = set(jur.code)
    assert all(p in codes for p in jur.parent_code.dropna())
    comm = jur[jur.level == "community"].to_crs(32649)
    assert shapely.coverage_is_valid(comm.geometry.values)


def test_arterials_cross_city_borders(small):
    jur = small["jurisdictions"]
    cities = jur[jur.level == "city"].geometry
    borders = shapely.intersection_all([shapely.union_all(cities.boundary.values)])
    roads = small["roads"]
    arterials = roads[roads["class"].isin(["arterial", "motorway"])].geometry
    inner = shapely.difference(borders, jur[jur.level == "province"].geometry.iloc[0]
                               .boundary.buffer(1e-5))
    assert shapely.intersects(arterials.values, inner).sum() >= 3


def test_every_key_area_category_and_realistic_cameras(small):
    assert set(small["key_areas"].category) == set(KEY_AREA_CATEGORIES)
    cams = small["cameras"]
    assert 0 < (cams.status == "offline").mean() < 0.2
    assert cams.bearing.between(0, 360, inclusive="left").all()
    assert ((cams.fov > 0) & (cams.fov <= 360)).all() and (cams.fov == 360).any()
    assert cams.range_m.between(1, 1000).all()
    # clustered around key areas: half of them within 150 m of one
    areas = small["key_areas"].to_crs(32649).geometry
    near = shapely.STRtree(areas.values).query(cams.to_crs(32649).geometry.values,
                                               predicate="dwithin", distance=150.0)
    assert len(np.unique(near[0])) > 0.45 * len(cams)


def test_checkpoints_at_border_crossings(small):
    kinds = small["checkpoints"].kind
    assert {"checkpoint", "police_station", "e_gate", "security_post"} <= set(kinds)
    assert small["checkpoints"].name.str.startswith("边界").sum() >= 2


def test_grids_cover_part_of_the_communities_without_overlap(small):
    grids = small["grids"].to_crs(32649)
    jur = small["jurisdictions"]
    communities = jur[jur.level == "community"]
    gridded = set(grids.jurisdiction_code)
    assert 0 < len(gridded) < len(communities)  # others left for auto-generation
    assert shapely.intersection_all(grids.geometry.values[:2]).area < 1.0
    for code in gridded:
        # the grids of each community form a valid coverage (no gap, no overlap)
        assert shapely.coverage_is_valid(
            small["grids"][small["grids"].jurisdiction_code == code].geometry.values), code
        union = shapely.union_all(grids[grids.jurisdiction_code == code].geometry.values)
        community = communities[communities.code == code].to_crs(32649).geometry.iloc[0]
        assert abs(union.area - community.area) < 1e-6 * community.area + 1.0
    assert "dedicated" in set(grids.kind) or len(grids) < 5


def test_incidents_follow_the_documented_process(small):
    inc = small["incidents"]
    t = inc.occurred_at.dt.tz_convert("Asia/Shanghai")
    assert t.min() >= pd.Timestamp("2025-11-01", tz="Asia/Shanghai")
    assert t.max() < pd.Timestamp("2026-11-01", tz="Asia/Shanghai")
    by_day = t.dt.day_of_week.value_counts()
    assert by_day[5] > 1.25 * by_day[1]  # Saturday over Tuesday
    by_hour = t.dt.hour.value_counts()
    assert by_hour[21] > 3 * by_hour[4]
    # the emerging cluster: its area has far more incidents in the last 3 months
    xy = inc.to_crs(32649).geometry
    last = (t >= pd.Timestamp("2026-08-01", tz="Asia/Shanghai")).values
    cells = (np.floor(xy.x / 500).astype(int) * 100000 + np.floor(xy.y / 500).astype(int))
    growth = pd.Series(last).groupby(cells.values).agg(["sum", "count"])
    growth = growth[growth["count"] > 30]
    share = growth["sum"] / growth["count"]
    assert share.max() > 0.6  # a cell whose incidents are mostly recent: it emerged


def test_the_year_ends_on_the_last_day_asked_for(small):
    """Another last day moves the incidents' times (whole days) and nothing else: the
    twelve months end that day, the last month holds incidents, none lies after it."""
    end = dt.date(2026, 12, 16)
    shifted = generate("small", 1, end=end)
    t = shifted["incidents"].occurred_at.dt.tz_convert("Asia/Shanghai")
    assert t.max() < pd.Timestamp(end + dt.timedelta(days=1), tz="Asia/Shanghai")
    assert t.min() >= pd.Timestamp(end - dt.timedelta(days=364), tz="Asia/Shanghai")
    recent = t >= pd.Timestamp(end - dt.timedelta(days=29), tz="Asia/Shanghai")
    assert recent.sum() > 0.05 * len(t)
    for name in LAYERS:
        if name != "incidents":
            assert small[name].geometry.equals(shifted[name].geometry), name
    # the same places (in another order: incidents are sorted by time)
    xy = [np.sort(shapely.get_coordinates(f["incidents"].geometry.values).view("f8,f8"), axis=0)
          for f in (small, shifted)]
    assert np.array_equal(xy[0], xy[1])


def test_by_default_the_year_ends_yesterday_in_china():
    now = dt.datetime(2026, 12, 1, 17, 30, tzinfo=dt.UTC)  # 01:30 on the 2nd in CST
    assert default_end(now) == dt.date(2026, 12, 1)
    assert default_end(dt.datetime(2026, 12, 1, 15, 59, tzinfo=dt.UTC)) == \
        dt.date(2026, 11, 30)


@pytest.mark.db
def test_loaded_demo_derives_fields(db, demo_small, small):
    assert demo_small == {name: len(small[name]) for name in demo_small}
    with db.connect() as conn:
        q = lambda sql: conn.execute(text(sql)).scalar_one()  # noqa: E731
        assert q("SELECT count(*) FROM households WHERE jurisdiction_code IS NULL") == 0
        linked = q("SELECT count(*) FROM households WHERE grid_code IS NOT NULL")
        assert linked > 0
        assert q("SELECT sum(households) FROM grids") == linked
        assert q("SELECT sum(population) FROM grids") == q(
            "SELECT sum(persons) FROM households WHERE grid_code IS NOT NULL")
        # households inside a grid are linked to exactly that grid (brute force check)
        assert q("""SELECT count(*) FROM households h JOIN grids g ON g.code = h.grid_code
                    WHERE NOT ST_Intersects(g.geom, h.geom)""") == 0
        assert q("SELECT count(*) FROM households WHERE unit_code IS NOT NULL") > 0.5 * linked
        assert q("SELECT min(area_m2) FROM grids") > 100
        assert q("SELECT count(*) FROM audit WHERE actor = 'demo'") >= len(LAYERS)
