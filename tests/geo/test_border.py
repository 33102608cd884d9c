"""The shared border of mismatched neighbours, its zone, crossings, patrol sectors,
routes and hours, on hand-made pairs with known answers."""

import numpy as np
import pytest
import shapely

from geo.border import (
    NotNeighbours,
    border_zone,
    crossing_cover,
    crossings,
    patrol_route,
    patrol_sectors,
    road_graph,
    shared_border,
    suggest_hours,
)

# A's east edge and B's west edge both run from (1000, 0) to (1000, 500) but wander by
# up to 2 m: gaps and overlaps between them
A = shapely.Polygon([(0, 0), (1000, 0), (1001.5, 100), (999, 200), (1000, 300), (1002, 400),
                     (1000, 500), (0, 500)])
B = shapely.Polygon([(1000, 0), (2000, 0), (2000, 500), (1000, 500), (999.5, 350),
                     (1001, 250), (998.5, 150)])

ROADS = np.array([
    shapely.LineString([(500, 50), (1500, 50)]),  # crosses once
    shapely.LineString([(500, 200), (1200, 200), (1200, 300), (500, 300)]),  # twice
    shapely.LineString([(500, 450), (1001, 450), (500, 480)]),  # touches, turns back
    shapely.LineString([(500, 150), (1500, 150)]),  # through an overlap
    shapely.LineString([(500, 250), (1500, 250)]),  # through a gap
    shapely.LineString([(200, 20), (200, 480)]),  # never near the border
], dtype=object)


def test_the_border_of_mismatched_neighbours_is_one_line_of_their_length():
    assert A.overlaps(B) and not A.touches(B)  # they really are mismatched
    line = shared_border(A, B)
    assert line.geom_type == "LineString"
    east = shapely.LineString(A.exterior.coords[1:7])  # A's side of the border
    assert line.length == pytest.approx(east.length, abs=1.5)  # ends: within tolerance/10
    assert east.buffer(1e-6).contains(line)
    assert shapely.hausdorff_distance(line, B.boundary.intersection(
        shapely.box(998, 0, 1002, 500))) < 3


def test_non_neighbours_are_refused_with_their_distance():
    far = shapely.box(1100, 0, 1500, 500)
    with pytest.raises(NotNeighbours, match="98 m apart"):
        shared_border(A, far)
    with pytest.raises(NotNeighbours, match="share no border"):
        shared_border(A, shapely.box(1000, 500, 1100, 600), tolerance=5)  # a corner only


def test_the_zone_is_width_either_side_within_each_jurisdiction():
    line = shared_border(A, B)
    side_a, side_b = border_zone(A, B, line, 100)
    assert side_a.area == pytest.approx(100 * 500, rel=0.01)
    assert side_b.area == pytest.approx(100 * 500, rel=0.01)
    assert side_a.intersection(side_b).area < 1e-6
    assert A.buffer(1e-6).contains(side_a) and B.buffer(1e-6).contains(side_b)
    with pytest.raises(ValueError):
        border_zone(A, B, line, 0)


def test_crossings_count_passages_not_contacts():
    line = shared_border(A, B)
    found = crossings(ROADS, line, A, B)
    per_road = np.bincount([c.road for c in found], minlength=len(ROADS))
    assert per_road.tolist() == [1, 2, 0, 1, 1, 0]
    ys = sorted(round(c.point.y) for c in found)
    assert ys == [50, 150, 200, 250, 300]
    assert all(c.point.distance(line) < 1e-6 for c in found)


def test_crossings_are_covered_by_a_near_checkpoint_or_a_camera_that_sees_them():
    from geo.coverage import field_of_view

    line = shared_border(A, B)
    found = crossings(ROADS, line, A, B)
    points = np.array([[c.point.x, c.point.y] for c in found])
    block = shapely.box(1010, 140, 1020, 160)  # hides the y=150 crossing from camera 2
    views = np.array([field_of_view(1020, 250, 0, 360, 40, np.array([block], dtype=object)),
                      field_of_view(1030, 150, 0, 360, 60, np.array([block], dtype=object))],
                     dtype=object)
    cover = crossing_cover(points, np.array([[1000.0, 60.0]]), ["卡点1"], views,
                           ["CAM-1", "CAM-2"])
    by_y = {round(p[1]): c for p, c in zip(points, cover, strict=True)}
    assert by_y[50] == (True, ["卡点1"])
    assert by_y[250] == (True, ["CAM-1"])
    assert by_y[150] == (False, [])  # the camera is in range, the block hides it
    assert by_y[200] == (True, ["CAM-2"])  # 59 m away, seen past the block's corner
    assert by_y[300] == (False, [])  # 54 m from camera 1, beyond its 40 m


def test_patrol_sectors_balance_length_and_risk():
    line = shared_border(A, B)
    rng = np.random.default_rng(0)
    risky = np.column_stack([np.full(300, 1000.0), rng.uniform(0, 120, 300)])
    sectors = patrol_sectors(line, 4, risky, per_metre=0.5)
    loads = [s.workload for s in sectors]
    assert max(loads) / min(loads) <= 1.25
    assert sum(loads) == pytest.approx(0.5 * line.length + 300, rel=1e-6)
    lengths = [s.end - s.start for s in sectors]
    assert min(lengths) < 0.5 * max(lengths)  # the risky stretch is cut shorter
    assert sum(lengths) == pytest.approx(line.length)
    assert sectors[0].start == 0 and sectors[-1].end == pytest.approx(line.length)


def test_routes_run_on_the_road_network_through_their_stops():
    streets = [shapely.LineString([(x, 0), (x, 400)]) for x in range(0, 401, 100)]
    streets += [shapely.LineString([(0, y), (400, y)]) for y in range(0, 401, 100)]
    streets.append(shapely.LineString([(1000, 1000), (1100, 1000)]))  # a separate piece
    graph = road_graph(np.array(streets, dtype=object))
    stops = np.array([[3, 2], [198, 305], [400, 0], [1050, 1001]])
    route, reached = patrol_route(graph, stops)
    assert reached == [0, 1, 2]  # the last stop is on an unconnected road
    network = shapely.union_all(streets)
    assert network.buffer(1e-6).contains(route)
    for x, y in stops[:3]:
        assert route.distance(shapely.Point(x, y)) < 6
    # shortest: (0,0) -> (200,300) is 500 m, then (200,300) -> (400,0) is 500 m
    assert route.length == pytest.approx(1000)


def test_patrol_hours_follow_the_incident_rhythm():
    assert suggest_hours(np.array([22, 23, 0, 1, 1, 2, 12])) == (22, 2)
    assert suggest_hours(np.array([9, 10, 10, 11, 12, 20]), length=3) == (9, 12)


def test_a_patrol_plan_gives_balanced_sectors_to_each_side_with_routes_on_its_roads():
    from geo.border import border_zone, plan_patrols

    line = shared_border(A, B)
    side_a, side_b = border_zone(A, B, line, 300)
    streets = [shapely.LineString([(x, -50), (x, 550)]) for x in range(700, 1301, 100)]
    streets += [shapely.LineString([(650, y), (1350, y)]) for y in range(0, 501, 100)]
    rng = np.random.default_rng(3)
    incidents = np.column_stack([rng.uniform(800, 1200, 200), rng.uniform(0, 150, 200)])
    hours = np.r_[np.full(150, 21), rng.integers(0, 24, 50)]
    found = crossings(np.array(streets, dtype=object), line, A, B)
    xy = np.array([[c.point.x, c.point.y] for c in found])
    plan = plan_patrols(line, {"A": side_a, "B": side_b}, {"A": 2, "B": 1},
                        np.array(streets, dtype=object), xy, [False] * len(xy), incidents,
                        hours, np.ones(200), [], 300)
    assert [(p.city, p.team) for p in plan] == [("A", 1), ("A", 2), ("B", 1)]
    loads = [p.sector.workload for p in plan]
    assert max(loads) / min(loads) <= 1.25
    assert sum(p.crossings for p in plan) == len(found) == sum(p.uncovered for p in plan)
    network = shapely.union_all(streets).buffer(1e-6)
    assert all(network.contains(p.route) and p.reached == p.stops for p in plan)
    assert all(p.hours.startswith(("18", "19", "20", "21")) for p in plan)
