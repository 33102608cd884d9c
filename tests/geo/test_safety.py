"""The safety index on a hand example (the formula of geo.safety, worked by hand)."""

import numpy as np
import pytest

from geo.safety import levels, percentile_rank, safety_scores


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
