"""The safety index on a hand example (the formula of geo.safety, worked by hand), and the
per-grid, per-month counts behind it against a brute-force count."""

import numpy as np
import pytest
import shapely

from geo.safety import grid_month_counts, levels, percentile_rank, safety_scores


def test_three_grids_by_hand():
    result = safety_scores(weighted_incidents=[0, 10, 20], residents=[900, 0, 1900],
                           trend_z=[0, 0, 0], hot_share=[0, 1, 0.5], key_areas=[0, 2, 1],
                           area_km2=[1, 1, 1])
    # rates per 1000 (residents + 100): 0, 100, 10 -> ranks 0, 1, 0.5; trend risk 0.5;
    # key areas per km2 0, 2, 1 -> ranks 0, 1, 0.5; weights .40/.15/.25/.10 over 0.90
    assert np.allclose(result["rate_per_1000"], [0, 100, 10])
    risks = np.array([0.15 * 0.5, 0.4 + 0.15 * 0.5 + 0.25 + 0.1,
                      0.4 * 0.5 + 0.15 * 0.5 + 0.25 * 0.5 + 0.1 * 0.5]) / 0.9
    assert np.allclose(result["score"], 100 * (1 - risks))
    assert list(result["level"]) == [1, 5, 3]


def test_camera_coverage_lowers_the_risk_when_known():
    base = dict(weighted_incidents=[5, 5], residents=[100, 100], trend_z=[0, 0],
                hot_share=[0, 0], key_areas=[0, 0], area_km2=[1, 1])
    watched = safety_scores(**base, coverage=[0.3, 0.02])
    assert watched["score"][0] - watched["score"][1] == pytest.approx(100 * 0.10)
    assert list(watched["risks"]["coverage"]) == [0.0, 1.0]


@pytest.mark.parametrize("score,level", [(100, 1), (80, 1), (79.9, 2), (50, 3), (20, 4),
                                         (19.9, 5), (0, 5)])
def test_levels_are_bands_of_twenty(score, level):
    assert levels(np.array([score]))[0] == level


def test_percentile_rank_ties_share_their_mean_rank():
    assert np.allclose(percentile_rank([5, 1, 5, 3]), [(2.5) / 3, 0, 2.5 / 3, 1 / 3])


def _brute_force(grids, xy, when, edges, severity):
    """Each point to the first grid that holds it (edges included), by a loop over all."""
    monthly = np.zeros((len(grids), len(edges) - 1), dtype=int)
    weighted = np.zeros(len(grids))
    for (x, y), t, s in zip(xy, when, severity, strict=True):
        point = shapely.Point(x, y)
        grid = next((g for g, poly in enumerate(grids) if poly.intersects(point)), None)
        month = next((m for m in range(len(edges) - 1) if edges[m] <= t < edges[m + 1]), None)
        if grid is not None and month is not None:
            monthly[grid, month] += 1
            weighted[grid] += s
    return monthly, weighted


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grid_month_counts_equal_a_brute_force_count(seed):
    rng = np.random.default_rng(seed)
    # a 4 x 3 block of 250 m grids (shared edges), one overlapping grid and one far away
    grids = [shapely.box(x, y, x + 250, y + 250) for x in range(0, 1000, 250)
             for y in range(0, 750, 250)]
    grids += [shapely.Polygon([(100, 100), (600, 150), (300, 600)]),
              shapely.box(5000, 5000, 5100, 5100)]
    n = 400
    xy = rng.uniform(-100, 1100, (n, 2))
    xy[:60] = rng.integers(0, 5, (60, 2)) * 250.0  # on shared edges and corners
    xy[60:80, 0] = rng.integers(0, 5, 20) * 250.0
    edges = np.arange("2025-01", "2026-01", dtype="datetime64[M]").astype("datetime64[s]")
    when = edges[0] + rng.integers(-5 * 86400, 370 * 86400, n).astype("timedelta64[s]")
    when[80:90] = edges[rng.integers(0, len(edges), 10)]  # at a month's first second
    severity = rng.integers(1, 6, n).astype(float)
    monthly, weighted = grid_month_counts(np.array(grids, dtype=object), xy, when, edges,
                                          severity)
    expected_monthly, expected_weighted = _brute_force(grids, xy, when, edges, severity)
    assert monthly.shape == (len(grids), len(edges) - 1)
    assert np.array_equal(monthly, expected_monthly)
    assert np.allclose(weighted, expected_weighted)
    assert 0 < monthly.sum() < n  # some fell outside every grid or the months


def test_grid_month_counts_of_no_incidents_are_zero():
    grids = np.array([shapely.box(0, 0, 1, 1)], dtype=object)
    edges = np.array(["2025-01-01", "2025-02-01"], dtype="datetime64[s]")
    monthly, weighted = grid_month_counts(grids, np.empty((0, 2)),
                                          np.empty(0, dtype="datetime64[s]"), edges, np.empty(0))
    assert monthly.tolist() == [[0]] and weighted.tolist() == [0.0]
