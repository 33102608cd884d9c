"""The shared border of mismatched neighbours, its zone, crossings, patrol sectors,
routes and hours, on hand-made pairs with known answers."""

import math

import networkx as nx
import numpy as np
import pytest
import shapely
import shapely.ops

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
    edges = graph.number_of_edges()
    stops = np.array([[3, 2], [198, 305], [400, 0], [1050, 1001], [400, -900]])
    route = patrol_route(graph, stops)
    assert route.reached == [0, 1, 2]
    assert route.missed == [(3, "not_joined", pytest.approx(1.0)),  # an unconnected road
                            (4, "no_road", pytest.approx(900.0))]  # nothing within 500 m
    assert graph.number_of_edges() == edges  # the caller's graph is left as it was
    network = shapely.union_all(streets)
    assert network.buffer(1e-6).contains(route.line)
    for x, y in stops[:3]:
        assert route.line.distance(shapely.Point(x, y)) < 3.5
    # each stop goes to the nearest point of its nearest street: (3, 0), (200, 305), then
    # (3,0) -> (200,305) is 197 + 305 m and (200,305) -> (400,0) is 200 + 305 m
    assert route.line.length == pytest.approx(1007)


def test_a_stop_in_the_middle_of_a_long_road_is_reached_on_it():
    # the crossing road's vertices are 2 km apart: the stop is on the road, far from both
    graph = road_graph(np.array([shapely.LineString([(-1000, 0), (1000, 0)]),
                                 shapely.LineString([(-1000, 0), (-1000, 900)]),
                                 shapely.LineString([(-1000, 900), (1000, 900)])],
                                dtype=object))
    route = patrol_route(graph, np.array([[0, 0], [0, 900]]))
    assert route.reached == [0, 1] and route.missed == []
    assert route.line.length == pytest.approx(1000 + 900 + 1000)


def test_stops_without_roads_say_why():
    piece = road_graph(np.array([shapely.LineString([(0, 0), (100, 0)])], dtype=object))
    alone = patrol_route(piece, np.array([[50, 10], [50, 900]]))
    assert alone.line.is_empty and alone.reached == []  # one place is not a route
    assert alone.missed == [(0, "not_joined", pytest.approx(10)),
                            (1, "no_road", pytest.approx(900))]
    none = patrol_route(road_graph(np.empty(0, dtype=object)), np.array([[0, 0], [1, 1]]))
    assert none.missed == [(0, "no_roads", None), (1, "no_roads", None)]


def _street_grid(seed: int, n: int = 7, spacing: float = 100.0) -> list[tuple]:
    """The blocks of an n x n street grid, a third of them closed, still connected."""
    rng = np.random.default_rng(seed)
    while True:
        blocks = [((i * spacing, j * spacing), ((i + di) * spacing, (j + dj) * spacing))
                  for i in range(n) for j in range(n) for di, dj in ((1, 0), (0, 1))
                  if i + di < n and j + dj < n]
        kept = [b for b in blocks if rng.random() > 1 / 3]
        if nx.is_connected(nx.Graph(kept)):
            return kept


def test_route_lengths_match_dijkstra_with_the_stops_made_vertices_of_their_streets():
    from scipy.sparse.csgraph import dijkstra

    rng = np.random.default_rng(7)
    blocks = _street_grid(7)
    on = rng.choice(len(blocks), size=8, replace=False)
    t = rng.uniform(0.1, 0.9, size=8)
    feet = [tuple(np.add(blocks[k][0], s * np.subtract(blocks[k][1], blocks[k][0])))
            for k, s in zip(on, t, strict=True)]
    # the stops lie up to 20 m off their street, square to it
    off = rng.uniform(-20, 20, size=8)
    stops = np.array([np.add(f, o * np.array([[0, -1], [1, 0]]) @ np.subtract(*blocks[k][::-1])
                             / 100) for f, o, k in zip(feet, off, on, strict=True)])
    route = patrol_route(road_graph(np.array([shapely.LineString(b) for b in blocks],
                                             dtype=object), snap=0), stops)
    assert route.reached == list(range(8)) and route.missed == []
    # reference: each foot a vertex of its block, shortest paths by scipy's Dijkstra
    points = sorted({p for b in blocks for p in b} | set(feet))
    index = {p: i for i, p in enumerate(points)}
    weights = np.zeros((len(points), len(points)))
    for k, (p, q) in enumerate(blocks):
        chain = [p, *sorted((f for f, j in zip(feet, on, strict=True) if j == k),
                            key=lambda f: math.dist(p, f)), q]
        for u, v in zip(chain[:-1], chain[1:], strict=True):
            weights[index[u], index[v]] = weights[index[v], index[u]] = math.dist(u, v)
    far = dijkstra(weights, directed=False, indices=[index[f] for f in feet])
    expected = sum(far[i, index[feet[i + 1]]] for i in range(7))
    assert route.line.length == pytest.approx(expected, abs=0.8)  # nodes to 0.1 m


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
    assert all(p.unreached == [] for p in plan)
    assert all(p.hours.startswith(("18", "19", "20", "21")) for p in plan)


# Two crossing roads joined 1100 m beyond A's side of a 1200 m zone (within the detour of
# one zone width), a third joined to them 1300 m beyond (farther than the detour).
DETOUR_A = shapely.box(-6000, 0, 0, 3000)
DETOUR_B = shapely.box(0, 0, 6000, 3000)
DETOUR_ROADS = np.array([
    shapely.LineString([(-2300, 400), (800, 400)]),
    shapely.LineString([(-2500, 1500), (800, 1500)]),
    shapely.LineString([(-2500, 2600), (800, 2600)]),
    shapely.LineString([(-2300, 400), (-2300, 1500)]),  # joins at x = -2300
    shapely.LineString([(-2500, 1500), (-2500, 2600)]),  # joins at x = -2500
], dtype=object)


def _detour_plan(**kw):
    from geo.border import plan_patrols

    line = shared_border(DETOUR_A, DETOUR_B)
    side_a, side_b = border_zone(DETOUR_A, DETOUR_B, line, 1200)
    xy = np.array([[c.point.x, c.point.y]
                   for c in crossings(DETOUR_ROADS, line, DETOUR_A, DETOUR_B)])
    assert xy[:, 1].tolist() == [400, 1500, 2600]
    (patrol,) = plan_patrols(line, {"A": side_a, "B": side_b}, {"A": 1, "B": 0},
                             DETOUR_ROADS, xy, [False] * 3, np.empty((0, 2)),
                             np.empty(0, dtype=int), np.empty(0), [], 1200, **kw)
    return patrol


def test_a_route_leaves_the_zone_by_at_most_its_width_to_join_crossing_roads():
    patrol = _detour_plan()
    # start (0, 0) and the crossings at y = 400 and 1500 are joined through x = -2300:
    # 2300 m out, 1100 m along the joining road, 2300 m back
    assert (patrol.stops, patrol.reached) == (5, 3)
    assert patrol.route.length == pytest.approx(2300 + 1100 + 2300)
    assert patrol.route.bounds[0] == pytest.approx(-2300)
    # the road at x = -2500 is 1300 m beyond the zone: not used, and the stops only it
    # joins say so
    assert [(u.kind, u.point, u.reason) for u in patrol.unreached] == [
        ("crossing", (0.0, 2600.0), "not_joined"), ("end", (0.0, 2999.5), "not_joined")]
    assert patrol.unreached[1].distance == pytest.approx(399.5)
    wider = _detour_plan(detour=1400)
    assert (wider.reached, wider.unreached) == (5, [])
    assert wider.route.length == pytest.approx(5700 + 2500 + 1100 + 2500)
    with pytest.raises(ValueError, match="detour"):
        _detour_plan(detour=-1)


# --- crossings of roads cut at the border (each city's data ends at its boundary) -------

ROAD = shapely.LineString([(500, 50), (1500, 50)])  # crosses at (1000.75, 50)
AT = (1000.75, 50)


def _found(roads, **kw):
    line = shared_border(A, B)
    return [(round(c.point.x, 1), round(c.point.y, 1), c.road)
            for c in crossings(np.array(roads, dtype=object), line, A, B, **kw)]


def test_a_road_cut_at_the_border_crosses_where_the_whole_road_does():
    line = shared_border(A, B)
    pieces = list(shapely.get_parts(shapely.ops.split(ROAD, line)))
    assert len(pieces) == 2 and pieces[0].coords[-1] == pytest.approx(AT)
    assert _found([ROAD]) == [(1000.8, 50, 0)]
    assert _found(pieces) == [(1000.8, 50, 0)]  # given to the piece on A's side
    assert _found(pieces[::-1]) == [(1000.8, 50, 1)]
    (whole,), (cut,) = crossings(np.array([ROAD]), line, A, B), \
        crossings(np.array(pieces), line, A, B)
    assert cut.point.distance(whole.point) < 1 and cut.at == pytest.approx(whole.at, abs=1)


@pytest.mark.parametrize("a_end, b_start", [
    (997.75, 1000.75),  # a 3 m gap, all on A's side
    (999, 1002),  # a 3 m gap across the border
    (1003, 998),  # 5 m of overlap
    (1005, 996),  # 9 m of overlap: within twice the tolerance
])
def test_pieces_with_a_small_gap_or_overlap_are_one_crossing(a_end, b_start):
    line = shared_border(A, B)
    (found,) = crossings(np.array([shapely.LineString([(500, 50), (a_end, 50)]),
                                   shapely.LineString([(b_start, 50), (1500, 50)])]),
                         line, A, B)
    assert found.point.distance(shapely.Point(AT)) < 0.1 and found.point.distance(line) < 1e-6
    assert (found.road, found.at) == (0, pytest.approx(a_end - 500))


def test_pieces_too_far_apart_or_from_the_border_are_not_joined():
    assert _found([shapely.LineString([(500, 50), (1008, 50)]),  # ends 15 m apart
                   shapely.LineString([(993, 50), (1500, 50)])]) == []
    assert _found([shapely.LineString([(500, 50), (989, 50)]),  # 12 m short of the border
                   shapely.LineString([(993, 50), (1500, 50)])]) == []
    # with a wider tolerance they are one road again
    assert len(_found([shapely.LineString([(500, 50), (1008, 50)]),
                       shapely.LineString([(993, 50), (1500, 50)])], tolerance=8)) == 1


def test_a_road_ending_at_the_border_with_nothing_beyond_is_a_dead_end():
    assert _found([shapely.LineString([(500, 50), AT])]) == []
    assert _found([shapely.LineString([AT, (1500, 50)])]) == []
    # two pieces meeting at the border from the same side (a road that turns back there)
    assert _found([shapely.LineString([(500, 50), AT]),
                   shapely.LineString([AT, (500, 90)])]) == []
    assert _found([shapely.LineString([(1500, 50), AT]),
                   shapely.LineString([AT, (1500, 90)])]) == []


def test_a_fork_at_the_border_with_one_road_beyond_is_one_crossing():
    # two of A's roads end at the border point where one road goes on into B: one
    # passage (each road end goes on at most once), given to the straight-on piece
    fork = [shapely.LineString([(600, -300), AT]), shapely.LineString([(500, 50), AT]),
            shapely.LineString([AT, (1500, 50)])]
    assert _found(fork) == [(1000.8, 50, 1)]
    assert _found(fork[::-1]) == [(1000.8, 50, 1)]
    # the same, seen from B: one of A's roads meets two of B's
    assert _found([fork[1], fork[2], shapely.LineString([AT, (1400, 400)])]) == \
        [(1000.8, 50, 0)]
    # a crossroads on the border cut into four pieces: two roads cross, as uncut
    line = shared_border(A, B)
    x = np.array([shapely.LineString([(600, -300), (1401.5, 400)]), ROAD])
    cut = np.array([p for r in x for p in shapely.get_parts(shapely.ops.split(r, line))])
    assert [p.coords[-1] for p in cut[[0, 2]]] == [pytest.approx(AT)] * 2
    whole = sorted(crossings(x, line, A, B), key=lambda c: c.road)
    pieces = crossings(cut, line, A, B)
    assert [c.road for c in whole] == [0, 1] and [c.road for c in pieces] == [0, 2]
    assert all(p.point.distance(w.point) < 1 for p, w in zip(pieces, whole, strict=True))


def test_a_whole_road_is_not_counted_again_with_a_piece_of_it():
    line = shared_border(A, B)
    a_piece, b_piece = shapely.get_parts(shapely.ops.split(ROAD, line))
    # the other city's copy of the road starts at the border; ours runs on across it
    assert _found([ROAD, b_piece]) == [(1000.8, 50, 0)]
    assert _found([a_piece, ROAD]) == [(1000.8, 50, 1)]
    # a road turning along the border as it crosses, ending 14 m on, 6 m from the border,
    # where a road of B's goes on: its end is near the border, but it crossed already
    slant = shapely.LineString([(500, 50), AT, (1007, 63)])
    assert _found([slant, shapely.LineString([(1008, 64), (1500, 64)])]) == [(1000.8, 50.3, 0)]
    # and the roads that cross as a whole are found as before
    assert _found(ROADS) == [(1000.8, 50, 0), (1000.2, 150, 3), (999, 200, 1),
                             (1000, 300, 1), (999.5, 250, 4)]


def test_multi_part_roads_cross_where_their_parts_meet():
    line = shared_border(A, B)
    parts = shapely.ops.split(ROAD, line)
    both = shapely.MultiLineString(list(shapely.get_parts(parts)))
    assert _found([shapely.LineString([(200, 20), (200, 480)]), both]) == [(1000.8, 50, 1)]
    # a multi-part road of one city's pieces meeting a road of the other
    ours = shapely.MultiLineString([[(500, 50), AT], [(500, 150), (1000.25, 150)]])
    theirs = shapely.MultiLineString([[AT, (1500, 50)], [(1000.25, 150), (1500, 150)]])
    assert _found([theirs, ours]) == [(1000.8, 50, 1), (1000.2, 150, 1)]


def _wiggly_border_and_roads(seed: int, n: int = 80):
    """Two neighbours sharing a wiggly edge, and roads across it: most cross once, some
    go into B and come back (crossing twice)."""
    rng = np.random.default_rng(seed)
    ys = np.arange(0, 1201, 20.0)
    edge = np.column_stack([1000 + 25 * np.sin(2 * np.pi * ys / 300) + rng.uniform(-3, 3, len(ys)),
                            ys])
    a = shapely.Polygon([(0, 0), *edge, (0, 1200)])
    b = shapely.Polygon([*edge, (2000, 1200), (2000, 0)])
    roads = []
    for _ in range(n):
        y0 = rng.uniform(100, 1000)
        x0 = rng.uniform(600, 900)
        if rng.random() < 0.3:
            dy, x1 = rng.uniform(60, 150), rng.uniform(1100, 1300)
            roads.append(shapely.LineString([(x0, y0), (x1, y0 + 10), (x1, y0 + dy),
                                             (x0, y0 + dy)]))
        else:
            x1, y1 = rng.uniform(1100, 1400), y0 + rng.uniform(-100, 100)
            mid = ((x0 + x1) / 2 + rng.uniform(-50, 50), (y0 + y1) / 2 + rng.uniform(-30, 30))
            roads.append(shapely.LineString([(x0, y0), mid, (x1, y1)]))
    return a, b, np.array(roads, dtype=object)


def _nudged(piece: shapely.LineString, line, by: float) -> shapely.LineString:
    """``piece`` with its end at the border moved ``by`` metres along its last segment
    (less than 0: short of the border, a gap; more: over it)."""
    xy = shapely.get_coordinates(piece)
    start = shapely.Point(xy[0]).distance(line) < shapely.Point(xy[-1]).distance(line)
    if start:
        xy = xy[::-1]
    step = xy[-1] - xy[-2]
    xy[-1] = xy[-1] + by * step / np.hypot(*step)
    return shapely.LineString(xy[::-1] if start else xy)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_roads_cut_at_a_wiggly_border_cross_where_the_whole_roads_do(seed):
    a, b, roads = _wiggly_border_and_roads(seed)
    line = shared_border(a, b)
    whole = crossings(roads, line, a, b)
    assert len(whole) > len(roads)  # the reference itself sees the roads that turn back
    cuts = [list(shapely.get_parts(shapely.ops.split(r, line))) for r in roads]
    rng = np.random.default_rng(seed)
    cases = {
        "pieces": ([p for c in cuts for p in c], 1.0),
        "multi-part": ([shapely.MultiLineString(c) for c in cuts], 1.0),
        # each piece's end moved up to 1.5 m short of or over the border
        "gaps and overlaps": ([_nudged(p, line, rng.uniform(-1.5, 1.5)) for c in cuts
                               for p in c], 2.0),
    }
    expected = sorted(line.project(c.point) for c in whole)
    for name, (pieces, within) in cases.items():
        found = crossings(np.array(pieces, dtype=object), line, a, b)
        got = sorted(line.project(c.point) for c in found)
        assert len(got) == len(expected), name
        assert np.abs(np.subtract(got, expected)).max() < within, name
        assert all(c.point.distance(line) < 1e-6 for c in found)
    multi = crossings(np.array(cases["multi-part"][0], dtype=object), line, a, b)
    for w in whole:  # each road crosses where its whole self does
        assert any(c.road == w.road and c.point.distance(w.point) < 1 for c in multi)
