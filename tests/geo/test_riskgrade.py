"""Risk grading of places on a hand example, the cut points and the edge cases.

The hand example (metres): a jurisdiction 1000 x 1000, a risk terrain of four
500 x 500 cells, two grids (the south and north halves) and five key areas; every
part of every score is worked out in the comments and the levels follow.
"""

import math

import numpy as np
import pytest
import shapely

from geo.riskgrade import (
    LEVELS,
    MAX_POINTS,
    catchments,
    grade_places,
    incident_load,
    level_of,
    terrain_mean,
)

AREA = shapely.box(0, 0, 1000, 1000)
# rrs: south-west 1, south-east 2, north-west 4, north-east 1
CELLS = np.array([shapely.box(0, 0, 500, 500), shapely.box(500, 0, 1000, 500),
                  shapely.box(0, 500, 500, 1000), shapely.box(500, 500, 1000, 1000)])
RRS = np.array([1.0, 2.0, 4.0, 1.0])
PLACES = np.array([
    shapely.box(0, 0, 1000, 500),  # G1 grid, south half
    shapely.box(0, 500, 1000, 1000),  # G2 grid, north half
    shapely.box(100, 100, 200, 200),  # K1 school
    shapely.Point(500, 750),  # K2 hospital given as a point, on the cells' edge x=500
    shapely.box(900, 900, 1000, 1000),  # K3 market in the jurisdiction's corner
    shapely.box(600, 600, 700, 700),  # K4 park
    shapely.box(200, 700, 300, 800),  # K5 entertainment
], dtype=object)
CATEGORIES = [None, None, "school", "hospital", "market", "park", "entertainment"]
REACH = np.array([0, 0, 50, 50, 50, 50, 50], dtype=float)
INCIDENTS = np.array([
    (150, 150, 2),  # a: in K1, G1
    (120, 230, 3),  # b: 30 m north of K1 (its catchment), G1
    (260, 150, 1),  # c: 60 m east of K1 (outside its catchment), G1
    (700, 200, 1), (800, 300, 2), (900, 100, 1),  # d, e, f: G1
    (510, 760, 5),  # g: 10 m from K2, G2
    (950, 950, 4),  # h: in K3, G2
    (1020, 950, 5),  # i: 20 m from K3 but outside the jurisdiction: never counted
    *[(250, 750, 3)] * 5,  # j: five in K5, G2
], dtype=float)
# uncovered shares; K2 (a point) has no area whose coverage could be measured
UNCOVERED = np.array([0.4, 1.0, 0.0, np.nan, 0.2, 0.0, 1.0])


def _hand_example(rrs=True):
    zones = catchments(PLACES, REACH, AREA)
    count, weighted = incident_load(zones, INCIDENTS[:, :2], INCIDENTS[:, 2])
    mean = terrain_mean(zones, CELLS, RRS) if rrs else None
    grown = catchments(PLACES, REACH)
    outside = 1 - shapely.area(zones) / np.where(shapely.area(grown) > 0,
                                                 shapely.area(grown), 1)
    return count, weighted, mean, outside, grade_places(
        CATEGORIES, count, weighted, 365.0, mean, UNCOVERED, outside,
        None if rrs else ("无警情可拟合", "no incidents to fit"))


def test_the_parts_of_the_hand_example():
    count, weighted, mean, outside, _ = _hand_example()
    # G1: a b c d e f, severities 2+3+1+1+2+1; G2: g h j*5 = 5+4+15; K1: a b = 2+3;
    # K2: g; K3: h (i is outside the jurisdiction); K4: none; K5: j*5
    assert count.tolist() == [6, 7, 2, 1, 1, 0, 5]
    assert weighted.tolist() == [10, 24, 5, 5, 4, 0, 15]
    # G1 half on rrs 1, half on rrs 2; G2 half on 4, half on 1; K2's circle split by x=500
    # into halves of rrs 4 and 1; K1, K3, K4 on rrs 1 cells; K5 on the rrs 4 cell
    assert mean == pytest.approx([1.5, 2.5, 1.0, 2.5, 1.0, 1.0, 4.0])
    # K3's catchment (the market and 50 m around) is cut to the jurisdiction: of a
    # 100 m square grown by 50 m (10000 + 4 x 5000 + pi 50² m²) what is within the
    # jurisdiction is 150 x 150 less the rounded corner (2500 - pi 50²/4)
    full, kept = 30000 + math.pi * 2500, 22500 - (2500 - math.pi * 2500 / 4)
    assert outside[4] == pytest.approx(1 - kept / full, abs=0.005)
    assert outside[[0, 1, 2, 3, 5, 6]] == pytest.approx(0)


def test_the_levels_of_the_hand_example():
    *_, grades = _hand_example()
    # points: incidents 40 x severity-weighted a year (365 days) / 20 at a key area,
    # / 60 in a grid, at most 40; terrain 25 ln(rrs) / ln 4; coverage 15 x uncovered;
    # category (grid 10)
    # G1: 40x10/60=6.67 + 25 ln1.5/ln4=7.31 + 15x0.4=6 + 10   = 29.98 -> 30.0, level 2
    # G2: 40x24/60=16 + 25 ln2.5/ln4=16.52 + 15 + 10          = 57.52 -> 57.5, level 3
    # K1: 2x5=10 + 0 + 0 + school 20                          = 30.0, level 2
    # K2: (10 + 16.52 + hospital 16) / (40+25+20) x 100       = 50.02 -> 50.0, level 3
    # K3: 2x4=8 + 0 + 15x0.2=3 + market 16                    = 27.0, level 2
    # K4: 0 + 0 + 0 + park 10                                 = 10.0, level 1
    # K5: 2x15=30 + 25 + 15 + entertainment 16                = 86.0, level 4
    assert [g.score for g in grades] == [30.0, 57.5, 30.0, 50.0, 27.0, 10.0, 86.0]
    assert [g.level for g in grades] == [2, 3, 2, 3, 2, 1, 4]
    for g in grades:
        present = [r for r in g.reasons if r["points"] is not None]
        assert g.score == pytest.approx(round(100 * sum(r["points"] for r in present)
                                              / sum(r["max_points"] for r in present), 1))


def test_reasons_carry_the_figures():
    *_, grades = _hand_example()
    k1 = {r["factor"]: r for r in grades[2].reasons}
    assert list(k1) == ["incidents", "terrain", "coverage", "category"]
    assert k1["incidents"]["value"] == {"count": 2, "weighted": 5.0, "per_year": 5.0}
    assert k1["incidents"]["points"] == 10
    assert k1["incidents"]["text_zh"].startswith("近365天警情2起（严重度加权5")
    assert "2 incidents in the last 365 days" in k1["incidents"]["text_en"]
    assert k1["category"]["value"] == "school" and k1["category"]["points"] == 20
    k2 = {r["factor"]: r for r in grades[3].reasons}
    assert k2["coverage"]["points"] is None and "面积为0" in k2["coverage"]["text_zh"]
    assert k2["terrain"]["value"] == pytest.approx(2.5)
    k3 = {r["factor"]: r for r in grades[4].reasons}
    assert "辖区外" in k3["incidents"]["text_zh"] and "outside" in k3["incidents"]["text_en"]
    for g in grades:
        for r in g.reasons:
            assert set(r) == {"factor", "value", "points", "max_points", "text_zh", "text_en"}


def test_without_terrain_the_part_is_left_out_not_invented():
    *_, grades = _hand_example(rrs=False)
    # K1: (10 + 0 + 20) / (40 + 15 + 20) = 40.0; K4: 10 / 75 = 13.3; K5: 61 / 75 = 81.3
    assert [grades[i].score for i in (2, 5, 6)] == [40.0, 13.3, 81.3]
    terrain = {r["factor"]: r for r in grades[2].reasons}["terrain"]
    assert terrain["points"] is None and "无警情可拟合" in terrain["text_zh"]
    assert "no incidents to fit" in terrain["text_en"]


def test_a_shorter_period_is_a_yearly_rate():
    zones = catchments(PLACES[2:3], 50.0, AREA)
    count, weighted = incident_load(zones, INCIDENTS[:, :2], INCIDENTS[:, 2])
    # 5 severity-weighted in 73 days is 25 a year: full incident points
    grade = grade_places(["school"], count, weighted, 73.0, None, np.array([0.0]))[0]
    assert grade.reasons[0]["value"]["per_year"] == 25 and grade.reasons[0]["points"] == 40


@pytest.mark.parametrize(("score", "level"), [
    (0, 1), (24.9, 1), (25.0, 2), (44.9, 2), (45.0, 3), (64.9, 3), (65.0, 4), (100, 4)])
def test_a_score_on_a_cut_point_takes_the_higher_level(score, level):
    assert level_of(score) == level


def test_the_cut_points_are_the_levels_table():
    assert [(lv.from_score, lv.to_score) for lv in LEVELS] == [
        (0, 25), (25, 45), (45, 65), (65, 100)]
    assert [lv.name_zh for lv in LEVELS] == ["低", "一般", "较大", "重大"]
    assert sum(MAX_POINTS.values()) == 100
    with pytest.raises(ValueError):
        level_of(100.1)
    with pytest.raises(ValueError):
        level_of(float("nan"))


@pytest.mark.parametrize(("weighted", "score", "level"), [
    # a grid: 10 + 40 x weighted / 60 (one year) + nothing else
    (52.44, 45.0, 3),  # 10 + 34.96 = 44.96 is shown as 45.0: graded as shown, level 3
    (52.41, 44.9, 2),  # 10 + 34.94 = 44.94 is shown as 44.9: level 2
])
def test_the_rounded_score_is_graded(weighted, score, level):
    grade = grade_places([None], np.array([1]), np.array([weighted]), 365.0,
                         np.array([1.0]), np.array([0.0]))[0]
    assert (grade.score, grade.level) == (score, level)


def test_no_incidents_and_no_places():
    zones = catchments(PLACES, REACH, AREA)
    count, weighted = incident_load(zones, np.empty((0, 2)), np.empty(0))
    assert count.tolist() == [0] * len(PLACES) and weighted.sum() == 0
    grades = grade_places(CATEGORIES, count, weighted, 365.0, None, UNCOVERED)
    assert all(g.reasons[0]["points"] == 0 for g in grades)
    assert grade_places([], np.zeros(0), np.zeros(0), 30.0, None, np.zeros(0)) == []
    with pytest.raises(ValueError, match="days"):
        grade_places([None], np.zeros(1), np.zeros(1), 0.0, None, np.zeros(1))


def test_a_place_of_no_area():
    flat = shapely.Polygon([(100, 100), (300, 100), (200, 100)])  # collinear: area 0
    zones = catchments(np.array([flat], dtype=object), 0.0, AREA)
    count, _ = incident_load(zones, np.array([[200.0, 100.0], [200.0, 101.0]]),
                             np.array([1.0, 1.0]))
    assert count.tolist() == [1]  # on the place, not a metre off it
    # no area to weigh by: the plain mean of the cells it touches (rrs 1 only)
    assert terrain_mean(zones, CELLS, RRS).tolist() == [1.0]
    grade = grade_places([None], count, np.array([1.0]), 365.0, np.array([1.0]),
                         np.array([np.nan]))[0]
    assert grade.reasons[2]["points"] is None
    # (40 x 1/60 = 0.67 + 0 + 10) / (40 + 25 + 20) = 12.55 -> 12.6
    assert grade.score == 12.6 and grade.level == 1


def test_a_place_outside_every_terrain_cell_leaves_the_terrain_out():
    far = np.array([shapely.box(2000, 2000, 2100, 2100)], dtype=object)
    mean = terrain_mean(far, CELLS, RRS)
    assert np.isnan(mean[0])
    grade = grade_places(["park"], np.zeros(1), np.zeros(1), 365.0, mean,
                         np.array([0.0]))[0]
    assert grade.reasons[1]["points"] is None and "不覆盖" in grade.reasons[1]["text_zh"]
    assert grade.score == round(100 * 10 / 75, 1)
