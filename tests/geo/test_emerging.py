"""Emerging hot spots: Mann-Kendall against pymannkendall, the space-time neighbourhood
against an explicit weights matrix, every category on a constructed series."""

import numpy as np
import pytest
import shapely
from scipy import sparse

from geo.emerging import CATEGORIES, categorise, emerging_hotspots, mann_kendall, space_time_gi
from geo.hotspots import count_points, gi_star_sparse, square_cells


def test_mann_kendall_equals_pymannkendall():
    import pymannkendall

    rng = np.random.default_rng(0)
    series = np.vstack([rng.normal(0, 1, 30), np.arange(30) + rng.normal(0, 3, 30),
                        rng.integers(0, 4, 30).astype(float),  # many ties
                        np.r_[np.zeros(20), np.ones(10)], np.zeros(30)])
    s, z, p = mann_kendall(series)
    for row, (si, zi, pi) in zip(series, zip(s, z, p, strict=True), strict=True):
        ref = pymannkendall.original_test(row)
        assert si == ref.s and zi == pytest.approx(ref.z, abs=1e-12)
        assert pi == pytest.approx(ref.p, abs=1e-12)


def test_space_time_gi_equals_gi_with_an_explicit_neighbour_matrix():
    lattice = square_cells(shapely.Polygon([(0, 0), (800, 0), (900, 600), (0, 500)]), 100)
    rng = np.random.default_rng(1)
    steps, n = 6, len(lattice.cells)
    cube = rng.poisson(2, (steps, n)).astype(float)
    window = 2
    ours = space_time_gi(lattice, cube, "queen", window)
    # every bin's neighbours, written out: queen cells (itself included) in the same
    # and the `window` previous steps
    rows, cols = lattice.cells["row"].to_numpy(), lattice.cells["col"].to_numpy()
    near = (np.abs(rows[:, None] - rows[None]) <= 1) & (np.abs(cols[:, None] - cols[None]) <= 1)
    pairs = []
    for t in range(steps):
        for u in range(max(0, t - window), t + 1):
            i, j = np.nonzero(near)
            pairs.append((t * n + i, u * n + j))
    a = np.concatenate([p[0] for p in pairs])
    b = np.concatenate([p[1] for p in pairs])
    w = sparse.csr_matrix((np.ones(len(a)), (a, b)), shape=(steps * n, steps * n))
    expected = gi_star_sparse(cube.ravel(), w).reshape(steps, n)
    assert np.allclose(ours, expected, atol=1e-9, rtol=0)


SERIES = {
    "new_hot_spot": [0] * 9 + [3],
    "consecutive_hot_spot": [0] * 7 + [3, 3, 3],
    "intensifying_hot_spot": [2.0 + 0.3 * t for t in range(10)],
    "persistent_hot_spot": [3, 2.5, 3, 2.5, 3, 2.5, 3, 2.5, 3, 2.6],
    "diminishing_hot_spot": [6.0 - 0.3 * t for t in range(10)],
    "sporadic_hot_spot": [3, 0, 0, 3, 0, 0, 3, 0, 0, 3],
    "oscillating_hot_spot": [3, -3, 0, 3, 0, -3, 0, 0, 0, 3],
    "historical_hot_spot": [3] * 9 + [0],
    "no_pattern": [0, 0, 3, 0, 0, 0, 0, 0, 0, 0],
}
SERIES.update({k.replace("hot", "cold"): [-v for v in s] for k, s in list(SERIES.items())
               if "hot" in k})


def test_every_category_on_a_constructed_series():
    names = list(SERIES)
    z = np.array([SERIES[k] for k in names], dtype=float)
    _s, trend_z, trend_p = mann_kendall(z)
    got = categorise(z, np.abs(z) >= 1.96, trend_z, trend_p)
    assert dict(zip(names, got, strict=True)) == {k: k for k in names}
    assert set(names) == set(CATEGORIES)


def test_a_cluster_appearing_in_the_last_month_is_a_new_hot_spot():
    lattice = square_cells(shapely.box(0, 0, 3000, 3000), 150)
    rng = np.random.default_rng(2)
    cube = np.stack([count_points(lattice, rng.uniform(0, 3000, (400, 2)))
                     for _ in range(12)]).astype(float)
    cube[-1] += count_points(lattice, rng.normal((2200, 800), 80, (300, 2)))
    result = emerging_hotspots(lattice, cube)
    centre = lattice.locate([[2200, 800]])[0]
    assert result["category"][centre] == "new_hot_spot"
    assert result["z"].shape == cube.shape
    far = lattice.locate([[500, 2500]])[0]
    assert result["category"][far] == "no_pattern"


def test_bad_cubes_are_refused():
    lattice = square_cells(shapely.box(0, 0, 500, 500), 100)
    with pytest.raises(ValueError, match="cells"):
        emerging_hotspots(lattice, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="two time steps"):
        emerging_hotspots(lattice, np.zeros((1, len(lattice.cells))))
