"""Camera siting: candidates, coverage options against line of sight, greedy vs optimum."""

import itertools

import geopandas as gpd
import numpy as np
import pytest
import shapely
from scipy import sparse

from geo.coverage import coverage_ratio, fields_of_view, gaps, watched
from geo.hotspots import square_cells
from geo.siting import CameraModel, candidate_sites, coverage_options, demand_points, max_cover
from tests.geo.test_coverage import visible_by_brute_force


def test_candidates_include_crossings_without_a_shared_vertex():
    roads = np.array([shapely.LineString([(0, 0), (100, 0)]),
                      shapely.LineString([(50, -50), (50, 50)])], dtype=object)
    sites = candidate_sites(roads, spacing=1000)
    assert any(np.allclose(s, (50, 0)) for s in sites)
    ring = np.array([shapely.box(200, 200, 260, 230)], dtype=object)
    sites = candidate_sites(roads, ring, spacing=30, area=shapely.box(-10, -60, 300, 300))
    on_ring = sites[shapely.intersects_xy(ring[0].boundary.buffer(1e-6), sites[:, 0],
                                          sites[:, 1])]
    assert len(on_ring) >= 180 / 30
    assert len(np.unique(np.round(sites, 3), axis=0)) == len(sites)


def test_options_see_what_line_of_sight_sees():
    rng = np.random.default_rng(1)
    blocks = [shapely.box(cx - 8, cy - 5, cx + 8, cy + 5) for cx, cy in
              rng.uniform(-120, 120, (25, 2))]
    free = ~shapely.contains_xy(shapely.union_all(blocks), *rng.uniform(-100, 100, (2, 40)))
    sites = rng.uniform(-100, 100, (40, 2))[free][:10]
    demand = rng.uniform(-150, 150, (3000, 2))
    model = CameraModel(fov=80, range_m=70, bearings=6)
    matrix, options = coverage_options(sites, model, demand, np.array(blocks, dtype=object))
    assert matrix.shape == (len(sites) * 6, 3000)
    for row in range(0, matrix.shape[0], 5):
        site, bearing = int(options[row, 0]), options[row, 1]
        x, y = sites[site]
        brute = visible_by_brute_force(x, y, bearing, 80, 70, blocks, demand)
        ours = matrix[row].toarray().ravel() > 0
        assert (ours == brute).mean() > 0.995


def _brute_optimum(matrix, weights, k):
    best = 0.0
    dense = matrix.toarray() > 0
    for combo in itertools.combinations(range(matrix.shape[0]), k):
        best = max(best, weights[dense[list(combo)].any(axis=0)].sum())
    return best


@pytest.mark.parametrize("seed", range(6))
def test_greedy_with_swaps_is_near_the_brute_force_optimum(seed):
    rng = np.random.default_rng(seed)
    matrix = sparse.csr_matrix(rng.random((14, 60)) < 0.15)
    weights = rng.exponential(1.0, 60)
    choice = max_cover(matrix, weights, 3)
    best = _brute_optimum(matrix, weights, 3)
    assert choice.total >= 0.98 * best
    assert choice.total <= best + 1e-9
    covered = (matrix[choice.options].toarray() > 0).any(axis=0)
    assert choice.total == pytest.approx(weights[covered].sum())
    assert choice.gains == sorted(choice.gains, reverse=True)


def test_lazy_greedy_picks_what_plain_greedy_picks():
    rng = np.random.default_rng(9)
    matrix = sparse.csr_matrix(rng.random((200, 500)) < 0.03)
    weights = rng.random(500)
    lazy = max_cover(matrix, weights, 12, improve=False)
    covered, plain = np.zeros(500, bool), []
    dense = matrix.toarray() > 0
    for _ in range(12):
        gain = (dense & ~covered) @ weights
        j = int(np.argmax(gain))
        plain.append(j)
        covered |= dense[j]
    assert lazy.total == pytest.approx(weights[covered].sum())
    assert max_cover(matrix, weights, 12).total >= lazy.total - 1e-12


def test_options_that_add_nothing_are_not_chosen():
    matrix = sparse.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]]))
    choice = max_cover(matrix, np.ones(3), 3)
    assert choice.options == [0] and choice.gains == [2.0]
    with pytest.raises(ValueError):
        max_cover(matrix, np.ones(3), 0)


def test_siting_gain_is_confirmed_by_recomputing_coverage():
    rng = np.random.default_rng(4)
    blocks = np.array([shapely.box(cx - 10, cy - 7, cx + 10, cy + 7) for cx, cy in
                       rng.uniform(0, 400, (50, 2))], dtype=object)
    existing = gpd.GeoDataFrame({"bearing": [45.0], "fov": [90.0], "range_m": [80.0]},
                                geometry=[shapely.Point(100, 100)])
    target = np.array([shapely.box(0, 0, 400, 400)], dtype=object)
    views = fields_of_view(existing, blocks).geometry.values
    covered = watched(target, views)
    before = coverage_ratio(target, covered)[0]
    pieces, _ = gaps(target, covered)
    pieces = np.array([shapely.difference(p, shapely.union_all(blocks)) for p in pieces],
                      dtype=object)
    lattice = square_cells(target[0], 50.0)
    xy, w, ground, _ = demand_points(pieces, lattice, np.ones(len(lattice.cells)), spacing=5)
    roads = np.array([shapely.LineString([(0.7, y), (399.3, y + 3.1)])
                      for y in (61.3, 201.7, 337.9)],
                     dtype=object)
    model = CameraModel(fov=90, range_m=60, bearings=8)
    sites = candidate_sites(roads, spacing=20)
    matrix, options = coverage_options(sites, model, xy, blocks)
    choice = max_cover(matrix, w, 5)
    assert len(choice.options) == 5
    chosen = options[choice.options]
    added = gpd.GeoDataFrame({"bearing": chosen[:, 1], "fov": 90.0, "range_m": 60.0},
                             geometry=[shapely.Point(*sites[int(s)]) for s in chosen[:, 0]])
    new_views = fields_of_view(added, blocks).geometry.values
    after = coverage_ratio(target, watched(target, np.concatenate([views, new_views])))[0]
    claimed_m2 = choice.total  # weights are ground × density 1
    measured_m2 = (after - before) * target[0].area
    assert measured_m2 == pytest.approx(claimed_m2, rel=0.05)
    assert after > before


@pytest.mark.parametrize("kwargs", [{"fov": 0}, {"fov": 400}, {"range_m": 0},
                                    {"range_m": 5000}, {"bearings": 0}])
def test_bad_camera_models(kwargs):
    with pytest.raises(ValueError):
        CameraModel(**kwargs)


def test_many_candidates_are_thinned_evenly():
    roads = np.array([shapely.LineString([(0, y), (2000, y)]) for y in range(0, 2000, 50)],
                     dtype=object)
    every = candidate_sites(roads, spacing=10)
    thinned = candidate_sites(roads, spacing=10, max_sites=500)
    assert len(every) > 5000 and 100 < len(thinned) <= 500
    # spread over the whole area, not bunched at one end
    assert thinned[:, 0].min() < 200 and thinned[:, 0].max() > 1800
    assert thinned[:, 1].min() < 200 and thinned[:, 1].max() > 1750
