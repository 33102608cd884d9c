"""Incidents as counts per cell: a hand example, and the round trip through stand-ins.

The round trip is checked against :func:`geo.hotspots.count_points` on the lattice of
:func:`geo.hotspots.square_cells` (the border's hot cells): stand-ins at the cells'
centres fall in the cells their points fell in, for any lattice laid over any area.
"""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.cellshare import cell_of, expand, tally
from geo.hotspots import count_points, square_cells


def test_a_hand_example():
    # cells of 100 m: (0, 0) holds two points of side "a" and one of "b"; (-1, 2) one of "a"
    xy = np.array([[10.0, 10.0], [99.9, 0.0], [50.0, 50.0], [-0.1, 250.0]])
    side = ["a", "a", "b", "a"]
    hour = np.array([23, 1, 5, 25])  # 25 is read as 1 (o'clock the next day)
    category = ["theft", "fight", "theft", "theft"]
    severity = np.array([2.0, 3.0, 1.0, 4.0])
    got = tally(xy, side, hour, category, severity, 100.0)
    assert [(t.col, t.row, t.side, t.count, t.severity) for t in got] == [
        (0, 0, "a", 2, 5.0), (0, 0, "b", 1, 1.0), (-1, 2, "a", 1, 4.0)]
    assert got[0].by_hour[23] == 1 and got[0].by_hour[1] == 1 and sum(got[0].by_hour) == 2
    assert got[2].by_hour[1] == 1
    assert got[0].by_category == {"fight": 1, "theft": 1}
    back = expand(got, 100.0)
    assert back.xy.tolist() == [[50.0, 50.0]] * 3 + [[-50.0, 250.0]]
    assert back.side.tolist() == ["a", "a", "b", "a"]
    assert sorted(back.hour[:2].tolist()) == [1, 23]
    assert sorted(back.category[:2].tolist()) == ["fight", "theft"]
    assert back.severity.tolist() == [2.5, 2.5, 1.0, 4.0]


def test_nothing_gives_nothing():
    empty = np.empty((0, 2))
    assert tally(empty, [], np.empty(0), [], np.empty(0), 250.0) == []
    back = expand([], 250.0)
    assert back.xy.shape == (0, 2) and len(back.side) == 0


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 400), st.sampled_from([50.0, 250.0, 333.0]))
def test_stand_ins_fall_in_the_cells_their_points_fell_in(seed, n, size):
    rng = np.random.default_rng(seed)
    origin = rng.uniform(-1e6, 1e6, 2)
    area = shapely.Point(*origin).buffer(rng.uniform(size, 20 * size))
    xy = origin + rng.uniform(-25 * size, 25 * size, (n, 2))
    side = rng.choice(["a", "b"], n).tolist()
    hour = rng.integers(0, 24, n)
    category = rng.choice(["theft", "fight", "fraud"], n).tolist()
    severity = rng.integers(1, 6, n).astype(float)
    got = tally(xy, side, hour, category, severity, size)
    back = expand(got, size)
    lattice = square_cells(area, size)
    assert count_points(lattice, back.xy).tolist() == count_points(lattice, xy).tolist()
    assert np.array_equal(cell_of(back.xy, size), cell_of(xy, size)[np.lexsort(
        (np.array(side), cell_of(xy, size)[:, 0], cell_of(xy, size)[:, 1]))])
    assert np.bincount(back.hour, minlength=24).tolist() == \
        np.bincount(hour, minlength=24).tolist()
    assert sorted(back.category.tolist()) == sorted(category)
    assert np.isclose(back.severity.sum(), severity.sum())
    for code in ("a", "b"):
        assert (back.side == code).sum() == side.count(code)
