"""Near repeat: the Knox table of 200 000 incidents (a city of 30 km x 30 km over one
year) with 99 permutations (goal <= 10 s), against a straightforward NumPy version
that, for each permutation, bins every close pair again with np.searchsorted and
np.bincount (same KD-tree pairs, same seed: the same expected counts); and the
single-threshold Knox test (100 m, 7 days) against PySAL pointpats' ``Knox`` with the
same number of permutations, on the incidents of a 6 km x 6 km window of the city
(pointpats holds every pair of incidents within 7 days as Python sets: all 200 000
would take hours and tens of gigabytes)."""

import time

import numpy as np
import pytest
from pointpats.spacetime import Knox
from scipy.spatial import cKDTree

from geo.nearrepeat import knox_table

from .conftest import bench_line, report

pytestmark = [pytest.mark.bench, pytest.mark.slow]

N = 200_000
PERMUTATIONS = 99
EXTENT = 30_000.0
SPACE = np.array([0.0, 100, 200, 300])
TIME = np.array([0.0, 7, 14, 21, 28])


def _incidents(rng):
    """Three quarters scattered over the city, a quarter in 200 neighbourhoods; dates."""
    background = rng.uniform(0, EXTENT, (N * 3 // 4, 2))
    centres = rng.uniform(0, EXTENT, (200, 2))
    clustered = centres[rng.integers(0, 200, N - len(background))] + rng.normal(
        0, 300, (N - len(background), 2))
    return np.vstack([background, clustered]), np.floor(rng.uniform(0, 365, N))


def _band(values, edges):
    return np.maximum(np.searchsorted(edges, values, side="left") - 1, 0)


def straightforward(xy, t, seed):
    """Per permutation: time bands of all close pairs again, counted with bincount."""
    pairs = cKDTree(xy).query_pairs(SPACE[-1], output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    d = np.hypot(*(xy[i] - xy[j]).T)
    i, j, d = i[d <= SPACE[-1]], j[d <= SPACE[-1]], d[d <= SPACE[-1]]
    code = _band(d, SPACE) * len(TIME)
    cells = (len(SPACE) - 1) * len(TIME)

    def table(times):
        return np.bincount(code + _band(np.abs(times[i] - times[j]), TIME),
                           minlength=cells).reshape(len(SPACE) - 1, len(TIME))

    rng = np.random.default_rng(seed)
    observed = table(t)
    sims = np.stack([table(t[rng.permutation(len(t))]) for _ in range(PERMUTATIONS)])
    return observed, sims.mean(axis=0)


def test_knox_200k_incidents_99_permutations_vs_straightforward_numpy():
    xy, t = _incidents(np.random.default_rng(0))
    timings, cpu = {}, {}
    for workers in (1, 2):
        t0, c0 = time.perf_counter(), time.process_time()
        result = knox_table(xy, t, SPACE, TIME, permutations=PERMUTATIONS, seed=1,
                            workers=workers)
        timings[workers], cpu[workers] = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    observed, expected = straightforward(xy, t, seed=1)
    theirs, theirs_cpu = time.perf_counter() - t0, time.process_time() - c0
    assert np.array_equal(result.observed[:-1], observed)  # close rows; beyond is derived
    assert np.allclose(result.expected[:-1], expected, rtol=0, atol=1e-9)
    close = int(result.observed[:-1].sum())
    report(f"near-repeat Knox table, {N:,} incidents ({close:,} pairs within "
           f"{SPACE[-1]:.0f} m) x {PERMUTATIONS} permutations, 1 thread", timings[1],
           "straightforward NumPy (searchsorted + bincount of every pair per permutation)",
           theirs)
    bench_line(f"  CPU time (wall time counts other load on the machine): safegrid "
               f"{cpu[1]:.2f} s, straightforward NumPy {theirs_cpu:.2f} s")
    bench_line(f"  with 2 threads: {timings[2]:.2f} s wall, {cpu[2]:.2f} s CPU (goal <= 10 s); "
               f"first cell Knox ratio {result.knox_ratio[0, 0]:.2f}, "
               f"p {result.p_value[0, 0]:.2f} (times drawn at random: no near repeats)")


WINDOW = 6_000.0
DELTA, TAU = 100.0, 7.0


def test_knox_single_threshold_vs_pointpats_on_a_window():
    xy, t = _incidents(np.random.default_rng(0))
    inside = (xy < WINDOW).all(axis=1)
    xy, t = xy[inside], t[inside]
    t0, c0 = time.perf_counter(), time.process_time()
    ours = knox_table(xy, t, [0, DELTA], [0, TAU], permutations=PERMUTATIONS, seed=1)
    mine, mine_cpu = time.perf_counter() - t0, time.process_time() - c0
    np.random.seed(1)  # pointpats permutes with NumPy's global generator
    t0, c0 = time.perf_counter(), time.process_time()
    theirs = Knox(xy, t.reshape(-1, 1), DELTA, TAU, permutations=PERMUTATIONS)
    ref, ref_cpu = time.perf_counter() - t0, time.process_time() - c0
    assert ours.observed.tolist() == theirs.observed.tolist()
    analytic = theirs.expected[0, 0]  # NS x NT / pairs: the exact permutation mean
    assert abs(ours.expected[0, 0] - analytic) < 4 * np.sqrt(analytic / PERMUTATIONS)
    report(f"Knox test, one threshold ({DELTA:.0f} m, {TAU:.0f} days), {len(xy):,} incidents "
           f"of a {WINDOW / 1000:.0f} km x {WINDOW / 1000:.0f} km window of the city "
           f"({ours.observed[0].sum():,} pairs within {DELTA:.0f} m) x {PERMUTATIONS} "
           "permutations", mine, "pointpats.spacetime.Knox", ref)
    bench_line(f"  CPU time: safegrid {mine_cpu:.2f} s, pointpats {ref_cpu:.2f} s; the same "
               f"table (close in both: {ours.observed[0, 0]:,} pairs); expected "
               f"{ours.expected[0, 0]:.1f} (permutation mean) vs {analytic:.1f} (pointpats, "
               f"NS x NT / pairs); p {ours.p_value[0, 0]:.2f} vs {theirs.p_sim:.2f}")
