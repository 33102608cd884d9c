"""Hot spots against independent references: esda's Gi*, scipy's FDR, brute force."""

import math

import numpy as np
import pytest
import shapely
from scipy import sparse, stats

from geo.hotspots import (
    benjamini_hochberg,
    classify,
    count_points,
    count_points_by,
    default_bandwidth,
    evaluate,
    gi_star,
    gi_star_sparse,
    hex_cells,
    kde,
    optimal_cell_size,
    square_cells,
    two_sided_p,
)

AREA = shapely.Polygon([(0, 0), (2000, 0), (2300, 1400), (800, 1900), (-200, 1000)])


@pytest.mark.parametrize("make,size", [(square_cells, 100.0), (hex_cells, 60.0)])
def test_points_are_counted_in_the_cell_that_contains_them(make, size):
    lattice = make(AREA, size)
    centres = shapely.centroid(lattice.cells.geometry.values)
    assert shapely.contains_xy(AREA, shapely.get_coordinates(centres)[:, 0],
                               shapely.get_coordinates(centres)[:, 1]).all()
    rng = np.random.default_rng(0)
    xy = rng.uniform((-300, -100), (2400, 2000), (20_000, 2))
    counts = count_points(lattice, xy)
    # brute force: a spatial index over the polygons themselves
    point_at, cell = shapely.STRtree(lattice.cells.geometry.values).query(
        shapely.points(xy), predicate="intersects")
    first = np.unique(point_at, return_index=True)[1]  # a point on an edge counts once
    assert np.array_equal(counts, np.bincount(cell[first], minlength=len(lattice.cells)))


def _esda_z(cells, y, weights):
    import esda

    return esda.G_Local(y, weights, transform="B", star=True, permutations=0).Zs


@pytest.mark.parametrize("make,size", [(square_cells, 100.0), (hex_cells, 70.0)])
def test_gi_star_equals_esda_with_queen_weights_from_the_polygons(make, size):
    from libpysal.weights import Queen

    lattice = make(AREA, size)
    rng = np.random.default_rng(1)
    y = rng.poisson(3, len(lattice.cells)).astype(float)
    ours = gi_star(lattice, y, "queen")
    w = Queen.from_dataframe(lattice.cells, use_index=False, silence_warnings=True)
    assert np.allclose(ours, _esda_z(lattice.cells, y, w), atol=1e-9, rtol=0)


@pytest.mark.parametrize("make,size,distance", [(square_cells, 100.0, 250.0),
                                                (hex_cells, 60.0, 200.0)])
def test_gi_star_equals_esda_with_a_distance_band(make, size, distance):
    from libpysal.weights import DistanceBand

    lattice = make(AREA, size)
    rng = np.random.default_rng(2)
    y = rng.gamma(2.0, 2.0, len(lattice.cells))
    centres = shapely.get_coordinates(shapely.centroid(lattice.cells.geometry.values))
    w = DistanceBand(centres, threshold=distance, binary=True, silence_warnings=True)
    assert np.allclose(gi_star(lattice, y, distance), _esda_z(lattice.cells, y, w),
                       atol=1e-9, rtol=0)
    assert np.allclose(gi_star_sparse(y, w.sparse), _esda_z(lattice.cells, y, w),
                       atol=1e-9, rtol=0)


def test_a_planted_cluster_is_a_hot_spot_and_nothing_else_is():
    lattice = square_cells(shapely.box(0, 0, 3000, 3000), 100)
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 3000, (3000, 2))
    planted = rng.normal((1500, 1500), 60, (600, 2))
    counts = count_points(lattice, np.vstack([xy, planted]))
    z = gi_star(lattice, counts)
    classes = classify(z, benjamini_hochberg(two_sided_p(z)))
    centre = lattice.locate([[1500, 1500]])[0]
    assert classes[centre] == "hot_99"
    hot = np.flatnonzero(np.char.startswith(classes.astype(str), "hot"))
    centres = shapely.get_coordinates(shapely.centroid(lattice.cells.geometry.values))
    assert np.hypot(*(centres[hot] - 1500).T).max() < 400  # all near the plant


def test_benjamini_hochberg_by_hand_and_against_scipy():
    p = np.array([0.01, 0.04, 0.03, 0.20])
    # sorted 0.01, 0.03, 0.04, 0.20 -> x 4/rank: 0.04, 0.06, 0.0533, 0.20 -> running
    # minimum from the top: 0.04, 0.0533, 0.0533, 0.20
    expected = np.array([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.20])
    assert np.allclose(benjamini_hochberg(p), expected)
    rng = np.random.default_rng(4)
    many = np.concatenate([rng.uniform(0, 1, 500), rng.uniform(0, 1e-4, 50)])
    assert np.allclose(benjamini_hochberg(many),
                       stats.false_discovery_control(many, method="bh"))


def test_classes_follow_sign_and_confidence():
    z = np.array([3.0, 2.0, 1.7, 0.5, -1.7, -2.0, -3.0])
    assert list(classify(z, two_sided_p(z))) == [
        "hot_99", "hot_95", "hot_90", "not_significant", "cold_90", "cold_95", "cold_99"]


def test_flat_data_has_no_hot_spots():
    lattice = square_cells(shapely.box(0, 0, 500, 500), 100)
    assert np.all(gi_star(lattice, np.full(len(lattice.cells), 4.0)) == 0)


@pytest.mark.parametrize("kernel", ["quartic", "gaussian"])
def test_kde_equals_a_direct_sum(kernel):
    lattice = square_cells(shapely.box(0, 0, 1000, 800), 50)
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 1000, (300, 2))
    h = 120.0
    ours = kde(lattice, xy, h, kernel)
    centres = shapely.get_coordinates(shapely.centroid(lattice.cells.geometry.values))
    expected = np.zeros(len(centres))
    for i, (cx, cy) in enumerate(centres):
        for x, y in xy:
            d = math.hypot(cx - x, cy - y)
            if kernel == "quartic" and d < h:
                expected[i] += 3 / (math.pi * h * h) * (1 - (d / h) ** 2) ** 2
            elif kernel == "gaussian" and d <= 4 * h:
                expected[i] += math.exp(-d * d / (2 * h * h)) / (2 * math.pi * h * h)
    assert np.allclose(ours, expected, rtol=1e-12, atol=1e-18)


def test_quartic_kernel_integrates_to_the_number_of_points():
    lattice = square_cells(shapely.box(-500, -500, 1500, 1500), 10)
    xy = np.array([[500.0, 500.0], [520.0, 480.0]])
    density = kde(lattice, xy, 200.0)
    assert density.sum() * 100 == pytest.approx(2, rel=1e-3)  # 10 m cells: 100 m² each


def test_default_bandwidth_follows_the_documented_rule():
    xy = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0], [3.0, 4.0]])  # mean centre (1.5, 2)
    sd = math.sqrt(np.mean(np.full(4, 1.5**2 + 2**2)))  # each point 2.5 m from the centre
    expected = 0.9 * min(sd, math.sqrt(1 / math.log(2)) * 2.5) * 4 ** -0.2
    assert default_bandwidth(xy) == pytest.approx(expected)


def test_optimal_cell_size_grows_with_sparser_points():
    area = shapely.box(0, 0, 10_000, 10_000)
    rng = np.random.default_rng(6)
    dense = optimal_cell_size(rng.uniform(0, 10_000, (20_000, 2)), area)
    sparse_ = optimal_cell_size(rng.uniform(0, 10_000, (500, 2)), area)
    assert dense == 100  # the 100-cells-across floor
    assert sparse_ > dense


def test_optimal_cell_size_of_incidents_all_at_one_place_is_the_coarse_size():
    """Repeat calls to one address have no nearest neighbour: 100 cells across, not NaN."""
    area = shapely.box(0, 0, 5_000, 2_000)
    assert optimal_cell_size(np.full((7, 2), 1234.5), area) == 50
    two = optimal_cell_size(np.array([[0.0, 0.0]] * 5 + [[0.0, 3_000.0]]), area)
    assert two == 3_000  # two places: the distance between them


def test_pai_pei_and_rri_on_a_hand_example():
    area = np.ones(10)
    test = np.array([4, 2, 3, 1, 0, 0, 0, 0, 0, 0], dtype=float)
    train = np.array([2, 2, 1, 1, 1, 1, 1, 1, 0, 0], dtype=float)
    chosen = np.zeros(10, dtype=bool)
    chosen[[0, 1]] = True
    result = evaluate(chosen, test, area, train)
    assert result["pai"] == pytest.approx((6 / 10) / (2 / 10))  # 3.0
    assert result["pei"] == pytest.approx(3.0 / ((7 / 10) / (2 / 10)))  # best 2: 4 + 3
    assert result["rri"] == pytest.approx((6 / 10) / (4 / 10))


@pytest.mark.parametrize("bad", [0, -5, float("nan")])
def test_bad_cell_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="cell size"):
        square_cells(AREA, bad)


def test_too_many_cells_are_refused():
    with pytest.raises(ValueError, match="more than"):
        square_cells(shapely.box(0, 0, 100_000, 100_000), 10)


def test_sparse_and_lattice_gi_agree():
    lattice = hex_cells(AREA, 80)
    y = np.random.default_rng(7).poisson(2, len(lattice.cells)).astype(float)
    from libpysal.weights import Queen

    w = Queen.from_dataframe(lattice.cells, use_index=False, silence_warnings=True)
    assert np.allclose(gi_star(lattice, y), gi_star_sparse(y, sparse.csr_matrix(w.sparse)))


def test_count_points_by_group_equals_counting_each_group():
    lattice = hex_cells(AREA, 90.0)
    rng = np.random.default_rng(8)
    xy = rng.uniform((-300, -100), (2400, 2000), (5000, 2))
    group = rng.integers(-1, 5, len(xy))  # -1 and 4: in no group of the four
    per = count_points_by(lattice, xy, group, 4)
    for g in range(4):
        assert np.array_equal(per[g], count_points(lattice, xy[group == g]))


@pytest.mark.parametrize("make", [square_cells, hex_cells])
def test_covering_cells_count_every_point_of_the_area(make):
    # a district with a ragged edge; points crowd within 30 m of it
    area = shapely.Polygon([(0, 0), (2300, 150), (2500, 1900), (1200, 2600), (-200, 1700)])
    rng = np.random.default_rng(7)
    edge = shapely.line_interpolate_point(area.exterior, rng.uniform(0, area.length, 3000))
    near = shapely.get_coordinates(edge) + rng.normal(0, 15, (3000, 2))
    near = near[shapely.contains_xy(area, near[:, 0], near[:, 1])]
    centred = make(area, 250)
    covering = make(area, 250, cover=True)
    assert (centred.locate(near) < 0).sum() > 0.2 * len(near)  # centres alone lose many
    at = covering.locate(near)
    assert (at >= 0).all()
    # each point lies in the (clipped) polygon of its cell, by brute force
    polys = covering.cells.geometry.values
    assert shapely.covers(polys[at], shapely.points(near)).all()
    assert count_points(covering, near).sum() == len(near)
    # the clipped cells cover the area exactly, without overlap
    assert shapely.coverage_is_valid(polys)
    assert abs(shapely.area(polys).sum() - area.area) < 1e-6 * area.area
    assert set(zip(centred.cells["row"], centred.cells["col"], strict=True)) <= \
        set(zip(covering.cells["row"], covering.cells["col"], strict=True))
