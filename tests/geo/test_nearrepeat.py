"""Near-repeat Knox tables against brute force over all pairs, a hand example, and
patterns with and without space-time clustering."""

import numpy as np
import pytest
import shapely
from scipy.spatial.distance import pdist

from geo import nearrepeat
from geo.nearrepeat import band_edges, classify, knox_table, risk_zones, to_days


def _band(value, edges):
    """Band by plain comparisons: first band whose upper edge holds the value."""
    for k in range(1, len(edges)):
        if value <= edges[k]:
            return k - 1
    return len(edges) - 1


def brute_table(xy, t, s_edges, t_edges):
    n = len(xy)
    d = pdist(xy)  # condensed: pairs (0,1), (0,2), ... (1,2), ...
    table = np.zeros((len(s_edges), len(t_edges)), dtype=np.int64)
    k = 0
    for i in range(n):
        for j in range(i + 1, n):
            table[_band(d[k], s_edges), _band(abs(t[i] - t[j]), t_edges)] += 1
            k += 1
    return table


def test_hand_example_knox_table():
    # P0-P1 exactly 100 m and 7 days: the first cell (upper edges inclusive)
    xy = np.array([[0, 0], [60, 80], [0, 200], [1000, 0]], float)
    t = np.array([0, 7, 8, 30], float)
    r = knox_table(xy, t, [0, 100, 200], [0, 7, 14], permutations=0)
    assert r.observed.tolist() == [[1, 0, 0],
                                   [1, 1, 0],
                                   [0, 0, 3]]
    assert r.permutations == 0 and np.isnan(r.expected).all()


@pytest.mark.parametrize("lattice", [True, False])
def test_counts_equal_brute_force_over_all_pairs(lattice):
    rng = np.random.default_rng(3)
    n = 160
    if lattice:  # many pairs exactly on 100/200/300 m and 7/14/21 days
        xy = rng.integers(0, 12, (n, 2)) * 50.0
        t = rng.integers(0, 40, n).astype(float)
    else:
        xy = rng.uniform(0, 800, (n, 2))
        t = rng.uniform(0, 60, n)
    s_edges, t_edges = band_edges(100, 3), band_edges(7, 3)
    r = knox_table(xy, t, s_edges, t_edges, permutations=0)
    expected = brute_table(xy, t, s_edges, t_edges)
    assert r.observed.tolist() == expected.tolist()
    assert r.observed.sum() == n * (n - 1) // 2
    if lattice:
        d = pdist(xy)
        assert (d == 100).any() and (d == 300).any()


@pytest.mark.parametrize("layout", ["wide", "tall", "dense"])
def test_more_incidents_than_a_strip_equal_brute_force(layout):
    # more incidents than one strip of the pair search, on a lattice: long runs of
    # equal coordinates cut by strip ends, pairs exactly on the band edges; "tall" is
    # searched along y, "dense" has a strip narrower than the last band
    rng = np.random.default_rng(9)
    n = nearrepeat.STRIP + 500
    xy = np.column_stack([rng.integers(0, 40, n) * 25.0, rng.integers(0, 30, n) * 20.0])
    if layout == "tall":
        xy = xy[:, ::-1].copy()
    elif layout == "dense":
        xy[300:] = rng.integers(0, 3, (n - 300, 2)) * 30.0
    t = rng.integers(0, 200, n).astype(float)
    s_edges, t_edges = np.array([0.0, 50, 100]), np.array([0.0, 7, 14])
    expected = np.zeros((3, 3), dtype=np.int64)
    for a in range(0, n, 512):  # rows a:a+512 against every later incident
        rows = np.arange(a, min(a + 512, n))[:, None]
        d = np.hypot(xy[rows, 0] - xy[None, :, 0], xy[rows, 1] - xy[None, :, 1])
        dt = np.abs(t[rows] - t[None, :])
        space = (d[..., None] > s_edges[1:]).sum(-1)  # bands by plain comparisons
        time_ = (dt[..., None] > t_edges[1:]).sum(-1)
        later = np.arange(n)[None, :] > rows
        expected += np.bincount((space * 3 + time_)[later], minlength=9).reshape(3, 3)
    r = knox_table(xy, t, s_edges, t_edges, permutations=0)
    assert r.observed.tolist() == expected.tolist()
    assert r.observed[:-1].sum() > 50_000, r.observed


def test_uneven_edges_and_coincident_points():
    xy = np.array([[0, 0], [0, 0], [0, 30], [0, 75], [0, 75]], float)
    t = np.array([0, 0, 2, 3, 9], float)
    s_edges, t_edges = [0, 30, 75], [0, 2, 3]
    r = knox_table(xy, t, s_edges, t_edges, permutations=0)
    assert r.observed.tolist() == brute_table(xy, t, s_edges, t_edges).tolist()


def test_permutations_match_a_brute_force_loop_with_the_same_seed():
    rng = np.random.default_rng(11)
    n, perms, seed = 70, 19, 5
    xy = rng.integers(0, 8, (n, 2)) * 40.0
    t = rng.integers(0, 30, n).astype(float)
    s_edges, t_edges = band_edges(100, 2), band_edges(7, 2)
    r = knox_table(xy, t, s_edges, t_edges, permutations=perms, seed=seed)
    observed = brute_table(xy, t, s_edges, t_edges)
    perm_rng = np.random.default_rng(seed)
    sims = np.stack([brute_table(xy, t[perm_rng.permutation(n)], s_edges, t_edges)
                     for _ in range(perms)])
    assert r.observed.tolist() == observed.tolist()
    assert np.allclose(r.expected, sims.mean(axis=0), rtol=0, atol=1e-12)
    assert np.array_equal(r.p_value, ((sims >= observed).sum(axis=0) + 1) / (perms + 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = observed / sims.mean(axis=0)
    assert np.allclose(r.knox_ratio, ratio, equal_nan=True)
    threaded = knox_table(xy, t, s_edges, t_edges, permutations=perms, seed=seed, workers=2)
    assert np.array_equal(threaded.expected, r.expected)
    assert np.array_equal(threaded.p_value, r.p_value)


def test_knox_ratio_is_nan_where_nothing_is_expected():
    xy = np.array([[0, 0], [10, 0], [5000, 0]], float)
    t = np.array([0, 1, 2], float)
    r = knox_table(xy, t, [0, 100], [0, 0.5, 7], permutations=9, seed=0)
    # no permutation gives a time difference <= 0.5 day
    assert (r.expected[:, 0] == 0).all() and np.isnan(r.knox_ratio[:, 0]).all()
    assert np.isfinite(r.knox_ratio[0, 1])


def _clustered(rng, clusters=30, size=10, background=600, extent=5000.0):
    centres = rng.uniform(0, extent, (clusters, 2))
    starts = rng.uniform(0, 350, clusters)
    xy = np.vstack([c + rng.uniform(-35, 35, (size, 2)) for c in centres])
    t = np.concatenate([s + rng.uniform(0, 5, size) for s in starts])
    return (np.vstack([xy, rng.uniform(0, extent, (background, 2))]),
            np.concatenate([t, rng.uniform(0, 365, background)]))


def test_space_time_clusters_are_significant_in_the_first_cell():
    xy, t = _clustered(np.random.default_rng(21))
    r = knox_table(xy, t, band_edges(100, 3), band_edges(7, 3), permutations=199, seed=1)
    assert r.p_value[0, 0] <= 0.01
    assert r.knox_ratio[0, 0] > 3


def test_planted_near_repeats_are_found_in_their_cell_and_nowhere_else():
    # originators uniform over 5 km x 5 km and a year; half of them are followed by one
    # incident within 100 m (uniform in the disc) and 0-7 days later
    rng = np.random.default_rng(7)
    m = 1500
    xy0, t0 = rng.uniform(0, 5000, (m, 2)), rng.uniform(0, 365, m)
    k = rng.random(m) < 0.5
    r, a = 100 * np.sqrt(rng.random(k.sum())), rng.uniform(0, 2 * np.pi, k.sum())
    xy = np.vstack([xy0, xy0[k] + np.column_stack([r * np.cos(a), r * np.sin(a)])])
    t = np.concatenate([t0, t0[k] + rng.uniform(0, 7, k.sum())])
    res = knox_table(xy, t, band_edges(100, 3), band_edges(7, 4), permutations=99, seed=2)
    assert res.knox_ratio[0, 0] > 2 and res.p_value[0, 0] < 0.05
    # far away in space and time (200 m and 14 days on): no interaction
    far = res.knox_ratio[2:, 2:]
    assert (np.abs(far - 1) < 0.15).all(), far
    assert (np.abs(res.knox_ratio[-1] - 1) < 0.05).all()  # beyond 300 m: every time band


def test_uniform_pattern_is_not():
    rng = np.random.default_rng(22)
    n = 3000
    xy, t = rng.uniform(0, 5000, (n, 2)), rng.uniform(0, 365, n)
    r = knox_table(xy, t, band_edges(100, 3), band_edges(7, 3), permutations=199, seed=1)
    assert r.p_value[0, 0] > 0.01
    assert 0.8 < r.knox_ratio[0, 0] < 1.2
    close = r.observed[:-1, :-1].sum() / r.expected[:-1, :-1].sum()
    assert 0.9 < close < 1.1


def test_datetimes_are_days():
    t = np.array(["2026-01-01T00:00", "2026-01-08T00:00", "2026-01-08T12:00"],
                 dtype="datetime64[m]")
    days = to_days(t)
    assert days[1] - days[0] == 7 and days[2] - days[0] == 7.5
    xy = np.zeros((3, 2))
    r = knox_table(xy, t, [0, 100], [0, 7, 14], permutations=0)
    assert r.observed[0].tolist() == [2, 1, 0]


@pytest.mark.parametrize("kwargs, message", [
    ({"space_edges": [0, 200, 100]}, "space edges"),
    ({"time_edges": [1, 7]}, "time edges"),
    ({"time_edges": [0]}, "time edges"),
    ({"permutations": -1}, "permutations"),
])
def test_bad_parameters_name_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        knox_table(np.zeros((3, 2)), np.zeros(3), **kwargs)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="3 locations but 2 times"):
        knox_table(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        knox_table(np.zeros((3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="NaT"):
        to_days(np.array(["2026-01-01", "NaT"], dtype="datetime64[D]"))


def brute_classes(xy, t, space_m, days):
    n = len(xy)
    out = []
    for i in range(n):
        before = after = False
        for j in range(n):
            if j == i or np.hypot(*(xy[i] - xy[j])) > space_m or abs(t[i] - t[j]) > days:
                continue
            if t[j] < t[i] or (t[j] == t[i] and j < i):
                before = True
            else:
                after = True
        out.append("near_repeat" if before else "originator" if after else "isolated")
    return out


def test_classify_matches_brute_force():
    rng = np.random.default_rng(4)
    n = 250
    xy = rng.integers(0, 30, (n, 2)) * 50.0
    t = rng.integers(0, 60, n).astype(float)
    labels = classify(xy, t, 100.0, 7.0)
    assert labels.tolist() == brute_classes(xy, t, 100.0, 7.0)
    assert set(labels) == {"originator", "near_repeat", "isolated"}


def test_classify_more_incidents_than_a_strip_matches_brute_force():
    # pairs found in several strips of the search: an incident's links in one strip
    # must not undo its near-repeat label from another
    rng = np.random.default_rng(12)
    n = nearrepeat.STRIP + 900
    xy = rng.integers(0, 80, (n, 2)) * 50.0
    t = rng.integers(0, 120, n).astype(float)
    before, after = np.zeros(n, bool), np.zeros(n, bool)
    for a in range(0, n, 512):  # rows a:a+512 against every incident, vectorised
        rows = np.arange(a, min(a + 512, n))[:, None]
        cols = np.arange(n)[None, :]
        linked = (np.hypot(xy[rows, 0] - xy[None, :, 0], xy[rows, 1] - xy[None, :, 1])
                  <= 100) & (np.abs(t[rows] - t[None, :]) <= 7) & (cols != rows)
        first = (t[None, :] < t[rows]) | ((t[None, :] == t[rows]) & (cols < rows))
        before[rows[:, 0]] = (linked & first).any(axis=1)
        after[rows[:, 0]] = (linked & ~first).any(axis=1)
    expected = np.where(before, "near_repeat", np.where(after, "originator", "isolated"))
    labels = classify(xy, t, 100.0, 7.0)
    assert labels.tolist() == expected.tolist()
    assert min((labels == c).sum() for c in ("originator", "near_repeat", "isolated")) > 100


def test_classify_hand_example():
    xy = np.array([[0, 0], [100, 0], [200, 0], [5000, 0]], float)
    t = np.array([0, 7, 14, 1], float)
    # 0 -> 1 -> 2 within 100 m and 7 days (edges inclusive); 1 is both: near repeat
    assert classify(xy, t, 100, 7).tolist() == ["originator", "near_repeat",
                                                "near_repeat", "isolated"]
    assert classify(xy, t, 99.9, 7).tolist() == ["isolated"] * 4


def test_risk_zones_merge_overlaps_and_keep_the_latest_end():
    xy = np.array([[0, 0], [150, 0], [1000, 0], [0, 0], [0, 0]], float)
    t = np.array([10, 12, 13, 1, 15], float)  # 1: too old; 15: after as_of
    zones = risk_zones(xy, t, as_of=14, space_m=100, days=7)
    assert [z.until for z in zones] == [20, 19]
    assert [sorted(z.incidents.tolist()) for z in zones] == [[2], [0, 1]]
    merged = zones[1].geometry
    assert isinstance(merged, shapely.Polygon)
    assert merged.contains(shapely.Point(75, 0)) and merged.contains(shapely.Point(-99, 0))
    single = zones[0].geometry.area
    assert single == pytest.approx(np.pi * 100**2, rel=0.01)
    assert single < merged.area < 2 * single


def test_risk_zones_with_datetimes():
    t = np.array(["2026-03-01T08:00", "2026-03-05T20:00"], dtype="datetime64[m]")
    xy = np.array([[0, 0], [500, 0]], float)
    zones = risk_zones(xy, t, np.datetime64("2026-03-06T00:00"), 200, 14)
    assert [z.until for z in zones] == [np.datetime64("2026-03-19T20:00"),
                                        np.datetime64("2026-03-15T08:00")]
    assert risk_zones(xy, t, np.datetime64("2026-04-01"), 200, 14) == []


def test_zone_aware_timestamps_are_their_utc_instants():
    import pandas as pd

    shanghai = pd.Series(pd.DatetimeIndex(["2026-01-01T08:00", "2026-01-08T08:00"])
                         .tz_localize("Asia/Shanghai"))
    assert to_days(shanghai).tolist() == to_days(
        np.array(["2026-01-01", "2026-01-08"], dtype="datetime64[D]")).tolist()
    mixed = np.array([shanghai[0], pd.Timestamp("2026-01-08T00:00", tz="UTC")], dtype=object)
    assert np.diff(to_days(mixed)).tolist() == [7.0]


def test_too_many_bands_is_refused():
    with pytest.raises(ValueError, match="at most 1000"):
        knox_table(np.zeros((3, 2)), np.zeros(3), space_edges=band_edges(1, 2000))
