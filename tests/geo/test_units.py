"""Joint-household units: sizes, membership, non-overlap, heads, compactness."""

import itertools

import numpy as np
import pytest
import shapely

from geo.crs import LocalMetres
from geo.units import household_units, unit_count


def sse(xy, labels):
    """Summed squared distance of households to their unit's centre."""
    return sum(((xy[labels == j] - xy[labels == j].mean(axis=0)) ** 2).sum()
               for j in np.unique(labels))


def morton_chunks(xy, size=10):
    """The simple baseline: households in Z-order, cut every ``size``."""
    q = ((xy - xy.min(axis=0)) / np.ptp(xy, axis=0).max() * 65535).astype(np.uint64)
    key = np.zeros(len(xy), dtype=np.uint64)
    for bit in range(16):
        key |= ((q[:, 0] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(2 * bit)
        key |= ((q[:, 1] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(2 * bit + 1)
    labels = np.empty(len(xy), dtype=np.int64)
    labels[np.argsort(key, kind="stable")] = np.arange(len(xy)) // size
    return labels


@pytest.mark.parametrize("n,k", [(0, 0), (3, 1), (15, 1), (16, 2), (24, 2), (25, 3),
                                 (100, 10), (104, 10), (149, 15)])
def test_unit_count_keeps_sizes_in_bounds(n, k):
    assert unit_count(n) == k
    if n >= 5:
        assert 5 <= n // k and -(-n // k) <= 15


def test_two_separate_clusters_make_two_units_with_central_heads():
    rng = np.random.default_rng(3)
    a = rng.normal((0, 0), 5, (10, 2))
    b = rng.normal((300, 0), 5, (10, 2))
    xy = np.vstack([a, b])
    plan = household_units(xy, shapely.box(-50, -50, 350, 50))
    assert sorted(plan.sizes) == [10, 10]
    assert len(set(plan.labels[:10])) == 1 and len(set(plan.labels[10:])) == 1
    for j, head in enumerate(plan.heads):
        members = np.flatnonzero(plan.labels == j)
        centre = xy[members].mean(axis=0)
        nearest = members[np.argmin(np.linalg.norm(xy[members] - centre, axis=1))]
        assert head == nearest


@pytest.mark.parametrize("seed", range(6))
def test_random_grids_sizes_membership_and_no_overlap(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 420))
    area = shapely.Polygon([(0, 0), (500, 40), (520, 380), (60, 420)])
    xy = rng.uniform((0, 0), (520, 420), (4 * n, 2))
    xy = xy[shapely.contains_xy(area, xy[:, 0], xy[:, 1])][:n]
    plan = household_units(xy, area)
    assert plan.sizes.min() >= 5 and plan.sizes.max() <= 15
    assert plan.sizes.sum() == len(xy)
    for j, poly in enumerate(plan.polygons):
        assert poly.geom_type == "Polygon" and poly.is_valid
        assert area.buffer(1e-6).contains(poly)
        held = np.flatnonzero(shapely.contains_xy(poly, xy[:, 0], xy[:, 1]))
        assert np.array_equal(held, np.flatnonzero(plan.labels == j))  # exactly its own
        assert plan.labels[plan.heads[j]] == j
    left, right = shapely.STRtree(plan.polygons).query(plan.polygons, predicate="intersects")
    keep = left < right
    overlap = shapely.area(shapely.intersection(plan.polygons[left[keep]],
                                                plan.polygons[right[keep]]))
    assert overlap.max(initial=0) < 1e-6
    # compacter than cutting the Z-order curve every ten households
    assert sse(xy, plan.labels) < sse(xy, morton_chunks(xy))


def test_small_case_matches_the_brute_force_optimum():
    rng = np.random.default_rng(11)
    xy = np.vstack([rng.normal((0, 0), 20, (8, 2)), rng.normal((60, 10), 20, (8, 2))])
    plan = household_units(xy)
    assert sorted(plan.sizes) == [8, 8]
    best = min(sse(xy, np.isin(np.arange(16), c).astype(int))
               for c in itertools.combinations(range(16), 8) if 0 in c)
    assert sse(xy, plan.labels) == pytest.approx(best, rel=1e-9)


def test_households_at_one_address_stay_together():
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 200, (40, 2))
    xy[10:16] = xy[10]  # six households in one building entrance
    plan = household_units(xy, shapely.box(-10, -10, 210, 210))
    assert len(set(plan.labels[10:16])) == 1
    assert plan.sizes.min() >= 5 and plan.sizes.max() <= 15


def test_local_metres_round_trip_and_scale():
    plane = LocalMetres(113.0, 28.2)
    lonlat = np.array([[113.01, 28.21], [112.99, 28.19]])
    x, y = plane.project_xy(lonlat[:, 0], lonlat[:, 1])
    assert np.allclose(np.column_stack(plane.unproject_xy(x, y)), lonlat, atol=1e-12)
    # 0.01 degrees of latitude at 28.2 N is 1 108.6 m (WGS 84 meridian arc)
    assert y[0] == pytest.approx(1108.6, abs=0.5)
