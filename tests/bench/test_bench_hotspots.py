"""Hot spots: the Gi* pipeline (1M points into 250k cells, counted, scored, FDR,
classes) against GeoPandas ``sjoin`` + libpysal ``lat2W`` + esda ``G_Local``; emerging
hot spots against esda's Gi* on the same space-time weights plus pymannkendall per
cell; and emerging hot spots on 100k cells x 52 weeks alone (goal <= 10 s)."""

import time

import geopandas as gpd
import numpy as np
import pytest
import shapely
from scipy import sparse

from geo.emerging import emerging_hotspots, mann_kendall
from geo.hotspots import benjamini_hochberg, classify, count_points, gi_star, square_cells
from geo.hotspots import two_sided_p as p_two_sided

from .conftest import bench_line, median_time, report

pytestmark = pytest.mark.bench

SIDE = 500  # cells per side: 250 000 cells of 100 m
POINTS = 1_000_000


def _points(rng, n, extent):
    """Incidents: a uniform background and a few dense clusters."""
    background = rng.uniform(0, extent, (n * 3 // 4, 2))
    centres = rng.uniform(0, extent, (40, 2))
    clustered = centres[rng.integers(0, 40, n - len(background))] + rng.normal(
        0, extent / 200, (n - len(background), 2))
    return np.vstack([background, clustered])


def test_gi_star_pipeline_vs_geopandas_libpysal_esda():
    import esda
    from libpysal.weights import lat2W

    rng = np.random.default_rng(0)
    extent = SIDE * 100.0
    xy = _points(rng, POINTS, extent)

    def ours():
        lattice = square_cells(shapely.box(0, 0, extent, extent), 100.0)
        counts = count_points(lattice, xy)
        z = gi_star(lattice, counts)
        return counts, z, classify(z, benjamini_hochberg(p_two_sided(z)))

    ours_time = median_time(ours, repeat=3)
    counts, z, _classes = ours()

    t0 = time.perf_counter()
    lattice = square_cells(shapely.box(0, 0, extent, extent), 100.0)
    # lat2W numbers cells row by row from the top; lay ours out the same way
    cells = lattice.cells.assign(order=(SIDE - 1 - lattice.cells["row"]) * SIDE
                                 + lattice.cells["col"]).sort_values("order")
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]))
    joined = gpd.sjoin(points, cells.reset_index(drop=True), predicate="within")
    y = np.bincount(joined["index_right"], minlength=len(cells)).astype(float)
    w = lat2W(SIDE, SIDE, rook=False)
    g = esda.G_Local(y, w, transform="B", star=True, permutations=0)
    theirs = time.perf_counter() - t0
    assert np.allclose(np.sort(g.Zs), np.sort(z), atol=1e-9)  # same scores, cell order aside
    report(f"Gi* pipeline, {POINTS:,} points into {len(counts):,} cells", ours_time,
           "GeoPandas sjoin + libpysal lat2W + esda G_Local", theirs)


def _cube(rng, cells: int, steps: int):
    side = int(round(np.sqrt(cells)))
    lattice = square_cells(shapely.box(0, 0, side * 100.0, side * 100.0), 100.0)
    cube = rng.poisson(0.3, (steps, len(lattice.cells))).astype(float)
    return lattice, cube


def test_emerging_vs_esda_and_pymannkendall_on_10k_cells():
    import esda
    import pymannkendall
    from libpysal.weights import WSP

    rng = np.random.default_rng(1)
    lattice, cube = _cube(rng, 10_000, 52)
    ours = median_time(lambda: emerging_hotspots(lattice, cube), repeat=3)
    result = emerging_hotspots(lattice, cube)

    t0 = time.perf_counter()
    steps, n = cube.shape
    rows, cols = lattice.cells["row"].to_numpy(), lattice.cells["col"].to_numpy()
    index = lattice.index
    a, b = [], []
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            r, c = rows + dr, cols + dc
            ok = (r >= 0) & (r < index.shape[0]) & (c >= 0) & (c < index.shape[1])
            j = np.full(n, -1)
            j[ok] = index[r[ok], c[ok]]
            ok &= j >= 0
            for t in range(steps):
                for u in (t - 1, t):
                    if u >= 0:
                        a.append(t * n + np.flatnonzero(ok))
                        b.append(u * n + j[ok])
    a, b = np.concatenate(a), np.concatenate(b)
    w = WSP(sparse.csr_matrix((np.ones(len(a)), (a, b)), shape=(steps * n,) * 2)).to_W(
        silence_warnings=True)
    g = esda.G_Local(cube.ravel(), w, transform="B", star=True, permutations=0)
    z = g.Zs.reshape(steps, n)
    trend = np.array([pymannkendall.original_test(z[:, i]).z for i in range(n)])
    theirs = time.perf_counter() - t0
    assert np.allclose(z, result["z"], atol=1e-9)
    assert np.allclose(trend, mann_kendall(result["z"].T)[1], atol=1e-9)
    report("emerging hot spots, 10k cells x 52 steps", ours,
           "esda G_Local (space-time weights) + pymannkendall per cell", theirs)


def test_emerging_on_100k_cells_by_52_steps():
    rng = np.random.default_rng(2)
    lattice, cube = _cube(rng, 100_000, 52)
    t0 = time.perf_counter()
    result = emerging_hotspots(lattice, cube)
    elapsed = time.perf_counter() - t0
    kinds, counts = np.unique(result["category"], return_counts=True)
    bench_line(f"emerging hot spots, {cube.shape[1]:,} cells x {cube.shape[0]} steps: "
          f"{elapsed:.2f} s (goal <= 10 s); {dict(zip(kinds, counts, strict=True))}")
