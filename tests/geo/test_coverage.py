"""Fields of view against a brute-force line-of-sight test on sample points."""

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.coverage import field_of_view, fields_of_view, sector


def visible_by_brute_force(x, y, bearing, fov, reach, buildings, points):
    """Per point: within range and angle, and the sight line crosses no footprint
    (footprints holding the camera ignored)."""
    buildings = [b for b in buildings if not b.intersects(shapely.Point(x, y).buffer(0.01))]
    out = []
    for px, py in points:
        d = math.hypot(px - x, py - y)
        angle = math.degrees(math.atan2(px - x, py - y)) % 360
        off = abs((angle - bearing + 180) % 360 - 180)
        if d > reach or (fov < 360 and off > fov / 2):
            out.append(False)
            continue
        sight = shapely.LineString([(x, y), (px, py)])
        out.append(not any(sight.intersects(b) for b in buildings))
    return np.array(out)


def agreement(view, x, y, bearing, fov, reach, buildings, n=4000, seed=0):
    rng = np.random.default_rng(seed)
    pts = rng.uniform((x - reach, y - reach), (x + reach, y + reach), (n, 2))
    ours = shapely.contains_xy(view, pts[:, 0], pts[:, 1])
    theirs = visible_by_brute_force(x, y, bearing, fov, reach, buildings, pts)
    return (ours == theirs).mean(), ours.sum()


def test_a_camera_behind_a_building_sees_around_it_not_through_it():
    block = shapely.box(40, -20, 60, 20)
    view = field_of_view(0, 0, 90, 90, 150, np.array([block], dtype=object))
    assert not view.contains(shapely.Point(100, 0))  # behind the block
    assert view.contains(shapely.Point(100, 80))  # beside its shadow
    assert not view.intersects(block.buffer(-0.01))
    share, seen = agreement(view, 0, 0, 90, 90, 150, [block])
    assert share > 0.995 and seen > 0


def test_a_dome_between_two_blocks():
    blocks = [shapely.box(-60, -30, -20, 30), shapely.Polygon([(20, -10), (60, -40), (70, 20)])]
    view = field_of_view(0, 0, 0, 360, 120, np.array(blocks, dtype=object))
    share, seen = agreement(view, 0, 0, 0, 360, 120, blocks, seed=1)
    assert share > 0.995
    assert view.contains(shapely.Point(0, 100)) and not view.contains(shapely.Point(-100, 0))


def test_a_camera_on_a_wall_is_not_hidden_by_its_own_building():
    home = shapely.box(-10, -10, 0, 10)  # the camera sits on its east wall
    other = shapely.box(30, 30, 50, 40)
    view = field_of_view(0, 0, 90, 120, 100, np.array([home, other], dtype=object))
    assert view.area > 0.5 * sector(0, 0, 90, 120, 100).area
    share, _ = agreement(view, 0, 0, 90, 120, 100, [home, other], seed=2)
    assert share > 0.995


def test_many_random_blocks_agree_with_line_of_sight():
    rng = np.random.default_rng(3)
    centres = rng.uniform(-150, 150, (40, 2))
    blocks = [shapely.affinity.rotate(shapely.box(cx - 6, cy - 4, cx + 6, cy + 4),
                                      rng.uniform(0, 180))
              for cx, cy in centres if math.hypot(cx, cy) > 15]
    view = field_of_view(0, 0, 200, 110, 160, np.array(blocks, dtype=object))
    share, seen = agreement(view, 0, 0, 200, 110, 160, blocks, n=6000, seed=4)
    assert share > 0.99 and seen > 100


def test_offline_cameras_watch_nothing_but_are_listed():
    cameras = gpd.GeoDataFrame({"bearing": [0, 90], "fov": [90, 360], "range_m": [50, 30],
                                "status": ["online", "offline"]},
                               geometry=[shapely.Point(0, 0), shapely.Point(100, 0)])
    views = fields_of_view(cameras)
    assert list(views["online"]) == [True, False]
    assert views.geometry.iloc[0].area > 0 and views.geometry.iloc[1].is_empty


@pytest.mark.parametrize("fov,reach", [(0, 10), (400, 10), (90, 0), (90, float("nan"))])
def test_bad_camera_parameters(fov, reach):
    with pytest.raises(ValueError):
        sector(0, 0, 0, fov, reach)
