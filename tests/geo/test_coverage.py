"""Fields of view against a brute-force line-of-sight test on sample points."""

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.coverage import (
    FLOOR_SHARE,
    ROAD_CORRIDOR,
    coverage_ratio,
    field_of_view,
    fields_of_view,
    gap_risk,
    gaps,
    key_area_shapes,
    risk_density,
    roads_within,
    school_zones,
    sector,
    watched,
)
from geo.hotspots import square_cells


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


def test_a_building_reaching_far_beyond_the_range_hides_what_lies_behind_its_wall():
    # its far wall is 500 m away, beyond twice the range: its shadow must still be a
    # simple polygon and the view must stop at the near wall
    hall = shapely.box(30, -200, 500, 200)
    view = field_of_view(0, 0, 90, 90, 50, np.array([hall], dtype=object))
    assert view.is_valid and view.area > 0
    assert view.intersection(shapely.box(30.01, -100, 600, 100)).area < 1e-6
    share, seen = agreement(view, 0, 0, 90, 90, 50, [hall], seed=5)
    assert share > 0.995 and seen > 0


def test_a_camera_a_hand_from_a_long_wall_sees_nothing_behind_it():
    # the wall subtends almost 180 degrees from 0.33 m: the shadow must still reach
    # past the range everywhere behind the wall, not stop at the chord of its far corners
    block = shapely.box(-100, 0, 100, 10)
    view = field_of_view(0, -0.33, 0, 120, 50, np.array([block], dtype=object))
    assert view.intersection(shapely.box(-100, 0, 100, 100)).area < 1e-6
    assert view.area == pytest.approx(
        sector(0, -0.33, 0, 120, 50).intersection(shapely.box(-100, -60, 100, 0)).area,
        rel=1e-6)
    share, _ = agreement(view, 0, -0.33, 0, 120, 50, [block], seed=6)
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


# --- coverage of targets against brute force ------------------------------------------

def _scene(seed=5, n_blocks=60, n_cameras=14):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-250, 250, (n_blocks, 2))
    blocks = [shapely.affinity.rotate(shapely.box(cx - 9, cy - 6, cx + 9, cy + 6),
                                      rng.uniform(0, 180)) for cx, cy in centres]
    union = shapely.union_all(blocks)
    cams = []
    while len(cams) < n_cameras:
        x, y = rng.uniform(-220, 220, 2)
        if not union.contains(shapely.Point(x, y)):
            fov = 360.0 if rng.random() < 0.3 else float(rng.uniform(40, 120))
            cams.append((x, y, float(rng.uniform(0, 360)), fov, float(rng.uniform(40, 110))))
    frame = gpd.GeoDataFrame(
        {"bearing": [c[2] for c in cams], "fov": [c[3] for c in cams],
         "range_m": [c[4] for c in cams], "status": ["online"] * len(cams)},
        geometry=[shapely.Point(c[0], c[1]) for c in cams])
    return blocks, cams, frame


def seen_by_line_of_sight(cams, blocks, pts):
    """Per point: some camera (x, y, bearing, fov, range) has it within range and angle
    and its sight line crosses no footprint (but the one holding the camera)."""
    pts = np.asarray(pts, dtype=float)
    blocks = np.asarray(blocks, dtype=object)
    tree = shapely.STRtree(blocks) if len(blocks) else None
    seen = np.zeros(len(pts), dtype=bool)
    for x, y, bearing, fov, reach in cams:
        d = pts - (x, y)
        off = np.abs((np.degrees(np.arctan2(d[:, 0], d[:, 1])) - bearing + 180) % 360 - 180)
        near = np.flatnonzero((np.hypot(d[:, 0], d[:, 1]) <= reach)
                              & ((fov >= 360) | (off <= fov / 2)) & ~seen)
        if tree is None or len(near) == 0:
            seen[near] = True
            continue
        own = set(tree.query(shapely.Point(x, y).buffer(0.01), predicate="intersects"))
        lines = shapely.linestrings(np.stack([np.broadcast_to((x, y), (len(near), 2)),
                                              pts[near]], axis=1))
        line_at, block_at = tree.query(lines, predicate="intersects")
        blocked = np.zeros(len(near), dtype=bool)
        blocked[line_at[[b not in own for b in block_at]]] = True
        seen[near[~blocked]] = True
    return seen


def _seen_by_any(cams, blocks, pts):
    return seen_by_line_of_sight(cams, blocks, pts)


def lattice_in(polygon, spacing):
    """Points of a regular lattice (offset by a third of a step) inside ``polygon``."""
    x0, y0, x1, y1 = polygon.bounds
    gx = np.arange(x0 + spacing / 3, x1, spacing)
    gy = np.arange(y0 + spacing / 3, y1, spacing)
    pts = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
    return pts[shapely.contains_xy(polygon, pts[:, 0], pts[:, 1])]


def _sample_in(polygon, n, rng):
    x0, y0, x1, y1 = polygon.bounds
    pts = rng.uniform((x0, y0), (x1, y1), (n * 4, 2))
    return pts[shapely.contains_xy(polygon, pts[:, 0], pts[:, 1])][:n]


def test_area_and_length_coverage_within_a_point_of_line_of_sight():
    blocks, cams, frame = _scene()
    views = fields_of_view(frame, np.array(blocks, dtype=object)).geometry.values
    polygons = np.array([shapely.box(-200, -200, 0, 0), shapely.Point(60, 40).buffer(90),
                         shapely.box(-50, 50, 200, 120)], dtype=object)
    ratio = coverage_ratio(polygons, watched(polygons, views))
    for polygon, r in zip(polygons, ratio, strict=True):
        pts = lattice_in(polygon, 1.5)
        assert len(pts) > 5000
        assert abs(r - _seen_by_any(cams, blocks, pts).mean()) < 0.01
    roads = np.array([shapely.LineString([(-240, -30), (240, 10)]),
                      shapely.LineString([(20, -240), (-10, 0), (30, 240)])], dtype=object)
    ratio = coverage_ratio(roads, watched(roads, views))
    for road, r in zip(roads, ratio, strict=True):
        pts = shapely.get_coordinates(shapely.line_interpolate_point(
            road, np.linspace(0, 1, 3000), normalized=True))
        assert abs(r - _seen_by_any(cams, blocks, pts).mean()) < 0.01
    assert 0 < ratio.min() and ratio.max() < 1


def test_a_camera_inside_a_key_area_covers_it_from_within():
    area = shapely.box(0, 0, 100, 60)
    building = shapely.box(70, 20, 80, 40)  # inside the key area
    frame = gpd.GeoDataFrame({"bearing": [0.0], "fov": [360.0], "range_m": [45.0]},
                             geometry=[shapely.Point(50, 30)])
    views = fields_of_view(frame, np.array([building], dtype=object)).geometry.values
    ratio = coverage_ratio(np.array([area], dtype=object), watched([area], views))[0]
    pts = _sample_in(area, 4000, np.random.default_rng(7))
    brute = visible_by_brute_force(50, 30, 0, 360, 45, [building], pts).mean()
    assert abs(ratio - brute) < 0.01 and 0.5 < ratio < 1
    hidden = shapely.Point(95, 30)  # behind the building, within range
    assert not watched([area], views)[0].contains(hidden)


def test_gaps_are_the_uncovered_rest_and_risk_integrates_density():
    blocks, cams, frame = _scene(seed=8)
    views = fields_of_view(frame, np.array(blocks, dtype=object)).geometry.values
    target = np.array([shapely.box(-200, -200, 200, 200)], dtype=object)
    covered = watched(target, views)
    pieces, owner = gaps(target, covered)
    assert len(pieces) > 0 and set(owner) == {0}
    union = shapely.union_all(views)
    assert all(shapely.area(shapely.intersection(p, union)) < 1e-6 for p in pieces)
    lost = target[0].area - covered[0].area - shapely.area(pieces).sum()
    assert 0 <= lost < 25 * 50  # only slivers below the minimum gap area are dropped
    # risk: a uniform density gives area × density; a line counts its corridor
    lattice = square_cells(shapely.box(-300, -300, 300, 300), 50.0)
    density = np.full(len(lattice.cells), 2e-4)
    square = np.array([shapely.box(0, 0, 30, 40)], dtype=object)
    assert gap_risk(square, lattice.cells.geometry.values, density)[0] == \
        pytest.approx(1200 * 2e-4)
    line = np.array([shapely.LineString([(0, 0), (100, 0)])], dtype=object)
    assert gap_risk(line, lattice.cells.geometry.values, density, np.array([1.5]))[0] == \
        pytest.approx(100 * 2 * ROAD_CORRIDOR * 2e-4 * 1.5)


def test_risk_density_doubles_hot_cells_and_has_a_floor():
    density = np.array([0.0, 1.0, 3.0])
    out = risk_density(density, hot=np.array([False, False, True]))
    mean = (0 + 1 + 6) / 3
    assert out == pytest.approx([FLOOR_SHARE * mean, 1 + FLOOR_SHARE * mean,
                                 6 + FLOOR_SHARE * mean])


def test_school_zones_and_point_key_areas():
    school = np.array([shapely.box(0, 0, 100, 50)], dtype=object)
    zone = school_zones(school, 200)[0]
    assert zone.area == pytest.approx(100 * 50 + 2 * 200 * 150 + math.pi * 200 ** 2, rel=0.01)
    shapes = key_area_shapes(np.array([shapely.Point(0, 0), school[0]], dtype=object), 25)
    assert shapes[0].area == pytest.approx(math.pi * 625, rel=0.01)
    assert shapes[1].equals(school[0])
    with pytest.raises(ValueError):
        school_zones(school, -1)


def test_roads_within_clips_roads_to_each_area():
    roads = np.array([shapely.LineString([(-50, 10), (150, 10)])], dtype=object)
    areas = np.array([shapely.box(0, 0, 100, 100), shapely.box(500, 500, 600, 600)],
                     dtype=object)
    inside = roads_within(areas, roads)
    assert inside[0].length == pytest.approx(100) and inside[1].is_empty


def test_a_camera_in_a_courtyard_and_l_shaped_blocks_agree_with_line_of_sight():
    # a courtyard block (a footprint with a hole) with the camera inside the hole
    court = shapely.Polygon([(-40, -40), (40, -40), (40, 40), (-40, 40)],
                            [[(-20, -20), (20, -20), (20, 20), (-20, 20)]])
    view = field_of_view(0, 0, 0, 360, 100, np.array([court], dtype=object))
    share, seen = agreement(view, 0, 0, 0, 360, 100, [court], seed=11)
    assert share > 0.995 and view.area == pytest.approx(40 * 40, rel=0.01)
    # concave footprints seen from inside their notch and from outside
    ell = shapely.Polygon([(10, 10), (60, 10), (60, 20), (20, 20), (20, 60), (10, 60)])
    other = shapely.Polygon([(-50, 30), (-20, 30), (-20, 70), (-30, 70), (-30, 40),
                             (-50, 40)])
    for x, y, bearing in ((30, 30, 225), (80, 80, 225), (-35, 55, 180)):
        view = field_of_view(x, y, bearing, 120, 90, np.array([ell, other], dtype=object))
        share, _ = agreement(view, x, y, bearing, 120, 90, [ell, other], seed=abs(x))
        assert share > 0.995
