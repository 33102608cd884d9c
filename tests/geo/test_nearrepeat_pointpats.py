"""The single-threshold Knox test against PySAL pointpats' ``Knox``
(pointpats.spacetime): the same 2 x 2 table of pairs close / not close in space and
time, the permutation mean equal to pointpats' analytic expectation NS * NT / pairs
(a time permutation gives each close-in-space pair the times of a uniformly drawn
pair of incidents), and the same pseudo p-value within Monte Carlo error.

pointpats counts a pair as close when its distance is at most ``delta`` and its time
difference at most ``tau`` (KD-tree ball queries), as our first bands ``[0, delta]``
and ``[0, tau]``; its permutations draw from NumPy's global generator, ours from
``default_rng(seed)``, so the permutation results are compared statistically.
"""

import numpy as np
import pytest
from pointpats.spacetime import Knox

from geo.nearrepeat import knox_table

DELTA, TAU = 100.0, 7.0


def planted(rng, originators, follow, extent=5000.0, days=365.0):
    """Originators uniform in space and time; each, with probability ``follow``, has
    one follow-up within 100 m (uniform in the disc) and 0-7 days after it."""
    xy = rng.uniform(0, extent, (originators, 2))
    t = rng.uniform(0, days, originators)
    k = rng.random(originators) < follow
    r, a = 100 * np.sqrt(rng.random(k.sum())), rng.uniform(0, 2 * np.pi, k.sum())
    follow_xy = xy[k] + np.column_stack([r * np.cos(a), r * np.sin(a)])
    return np.vstack([xy, follow_xy]), np.concatenate([t, t[k] + rng.uniform(0, 7, k.sum())])


def pointpats_knox(xy, t, permutations, seed):
    np.random.seed(seed)  # pointpats permutes with NumPy's global generator
    return Knox(xy, t.reshape(-1, 1), DELTA, TAU, permutations=permutations, keep=True)


@pytest.mark.parametrize("data", ["lattice", "uniform", "planted"])
def test_single_threshold_table_equals_pointpats(data):
    rng = np.random.default_rng(8)
    if data == "lattice":  # many pairs exactly 100 m and exactly 7 days apart
        xy, t = rng.integers(0, 12, (300, 2)) * 50.0, rng.integers(0, 40, 300).astype(float)
    elif data == "uniform":
        xy, t = rng.uniform(0, 1500, (400, 2)), rng.uniform(0, 120, 400)
    else:
        xy, t = planted(rng, 500, 0.3)
    ours = knox_table(xy, t, [0, DELTA], [0, TAU], permutations=0)
    theirs = Knox(xy, t.reshape(-1, 1), DELTA, TAU, permutations=0)
    assert ours.observed.tolist() == theirs.observed.tolist()
    assert ours.observed[0, 0] == theirs.statistic_ > 0
    if data == "lattice":
        d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))
        assert (d == DELTA).any() and (np.abs(t[:, None] - t[None]) == TAU).any()


def test_permutation_mean_is_pointpats_expected_count():
    xy, t = planted(np.random.default_rng(1), 600, 0.2)
    perms = 999
    ours = knox_table(xy, t, [0, DELTA], [0, TAU], permutations=perms, seed=2)
    theirs = pointpats_knox(xy, t, perms, seed=2)
    analytic = theirs.expected  # [[NS NT / pairs, ...]]: the exact permutation mean
    # the count of a cell over permutations varies at most like a Poisson count
    tolerance = 4 * np.sqrt(analytic[0, 0] / perms)
    assert abs(ours.expected[0, 0] - analytic[0, 0]) < tolerance
    assert abs(theirs.sim.mean() - analytic[0, 0]) < tolerance
    # the margins do not depend on the permutation: the rest of the table follows
    assert np.allclose(ours.expected.sum(axis=0), analytic.sum(axis=0), rtol=0, atol=1e-6)
    assert np.allclose(ours.expected.sum(axis=1), analytic.sum(axis=1), rtol=0, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 3, 5])
def test_permutation_p_value_agrees_with_pointpats(seed):
    # one in a hundred originators followed: weak interaction, p-values far from 0 and 1
    xy, t = planted(np.random.default_rng(seed), 600, 0.01)
    perms = 999
    ours = knox_table(xy, t, [0, DELTA], [0, TAU], permutations=perms, seed=seed)
    theirs = pointpats_knox(xy, t, perms, seed)
    p = theirs.p_sim
    assert 0.02 < p < 0.9
    # each estimate has a standard error sqrt(p (1 - p) / perms); 4 of their difference
    assert abs(ours.p_value[0, 0] - p) < 4 * np.sqrt(2 * p * (1 - p) / perms) + 1e-3


def test_strong_interaction_is_significant_in_both():
    xy, t = planted(np.random.default_rng(4), 800, 0.5)
    ours = knox_table(xy, t, [0, DELTA], [0, TAU], permutations=99, seed=1)
    theirs = pointpats_knox(xy, t, 99, seed=1)
    assert ours.p_value[0, 0] == theirs.p_sim == 0.01
    assert theirs.p_poisson < 1e-6
