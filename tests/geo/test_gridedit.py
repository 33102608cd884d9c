"""Topology-safe edits on hand-made grids, and random edit sequences (hypothesis)."""

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo.gridedit import NEW, EditRefused, carve, merge, reshape, split
from geo.grids import regular_grid

AREA = shapely.box(0, 0, 300, 200)
TOL = {"tolerance": 0.5, "sliver": 0.5}


def six():
    """Six 100 m squares: ids 1-3 along the bottom, 4-6 along the top."""
    return {i + 1: g for i, g in enumerate(regular_grid(AREA, 100).geometry)}


def assert_tiles(grids: dict, area=AREA):
    geoms = np.array(list(grids.values()), dtype=object)
    assert shapely.coverage_is_valid(geoms)
    assert all(g.geom_type == "Polygon" and g.is_valid for g in geoms)
    union = shapely.union_all(geoms)
    assert union.symmetric_difference(area).area < 1e-6
    assert abs(sum(g.area for g in geoms) - area.area) < 1e-6


def apply(grids, result):
    out = {**grids, **result.changed}
    for gone in result.removed:
        out.pop(gone)
    if NEW in out:
        out[max(out) + 1] = out.pop(NEW)
    return out


def test_moving_a_shared_corner_takes_from_and_gives_to_neighbours():
    grids = six()
    # Drag grid 1's corner (100, 100), shared with 2, 4 and 5, to (130, 120).
    new = shapely.Polygon([(0, 0), (100, 0), (130, 120), (0, 100)])
    result = reshape(AREA, grids, 1, new, **TOL)
    assert set(result.changed) == {1, 2, 4, 5}
    out = apply(grids, result)
    assert_tiles(out)
    # grid 1 is exactly the drawn shape inside the area: the triangle it took from 2,
    # 4 and 5 left them, and nothing else moved
    assert out[1].symmetric_difference(new).area < 1e-9
    assert out[2].area == pytest.approx(10_000 - 0.5 * 25 * 100)  # gave (100,0)-(125,100)
    assert out[3].equals(grids[3]) and 3 not in result.changed


def test_area_given_up_goes_to_the_neighbour_with_the_longest_edge():
    grids = six()
    # Grid 2 shrinks to its left 40 m; the freed 60 x 100 strip touches 3 along 100 m,
    # 5 along 60 m: it goes to 3.
    result = reshape(AREA, grids, 2, shapely.box(100, 0, 140, 100), **TOL)
    out = apply(grids, result)
    assert_tiles(out)
    assert out[3].area == pytest.approx(16_000)
    assert out[5].equals(grids[5])


def test_vertex_within_half_a_metre_snaps_and_no_sliver_remains():
    grids = six()
    # The corner is dropped 0.3 m off; the edges nearly match the old ones.
    new = shapely.Polygon([(0, 0), (100.3, 0), (100.2, 100.3), (0, 100)])
    result = reshape(AREA, grids, 1, new, **TOL)
    assert result.changed == {}  # snapped back onto the existing corner: nothing changes


def test_outside_parts_are_clipped_and_mostly_outside_is_refused():
    grids = six()
    result = reshape(AREA, grids, 4, shapely.box(0, 100, 100, 260), **TOL)
    assert result.changed == {}  # the part beyond the area was clipped away
    with pytest.raises(EditRefused, match="outside its jurisdiction"):
        reshape(AREA, grids, 4, shapely.box(-50, 150, 60, 400), **TOL)


def test_swallowing_a_neighbour_is_refused_naming_it():
    with pytest.raises(EditRefused, match="swallow grid 2"):
        reshape(AREA, six(), 1, shapely.box(0, 0, 200, 100), **TOL)


def test_invalid_shape_is_refused():
    bowtie = shapely.Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])
    with pytest.raises(EditRefused, match="not a valid polygon"):
        reshape(AREA, six(), 1, bowtie, **TOL)


def test_cutting_a_neighbour_in_two_hands_the_small_piece_on():
    grids = six()
    # Grid 1 reaches through grid 2 along a 10 m band to grid 3: grid 2's top
    # (100..200 x 95..100) is cut off from its bottom and joins a neighbour.
    new = shapely.Polygon([(0, 0), (100, 0), (100, 80), (200, 80), (200, 90), (100, 90),
                           (100, 100), (0, 100)])
    out = apply(grids, reshape(AREA, grids, 1, new, **TOL))
    assert_tiles(out)


def test_split_and_merge():
    grids = six()
    result = split(AREA, grids, 2, shapely.LineString([(130, -5), (130, 105)]), **TOL)
    assert result.changed[NEW].area == pytest.approx(3_000)
    assert result.changed[2].area == pytest.approx(7_000)
    assert set(result.changed) == {2, NEW, 5}  # 5 gains the node at (130, 100)
    out = apply(grids, result)
    assert_tiles(out)
    with pytest.raises(EditRefused, match="1 part"):
        split(AREA, grids, 2, shapely.LineString([(130, 50), (130, 150)]), **TOL)
    merged = merge(grids, [1, 2, 5])
    assert merged.removed == (2, 5) and merged.changed[1].area == pytest.approx(30_000)
    assert_tiles(apply(grids, merged))
    with pytest.raises(EditRefused, match="no edge"):
        merge(grids, [1, 3])


def test_removing_a_grid_gives_its_area_away():
    grids = six()
    result = reshape(AREA, grids, 5, None, **TOL)
    assert result.removed == (5,)
    assert_tiles(apply(grids, result))


def test_a_new_grid_takes_its_area_from_those_it_covers():
    grids = six()
    result = reshape(AREA, grids, NEW, shapely.box(50, 50, 150, 150), **TOL)
    assert set(result.changed) == {NEW, 1, 2, 4, 5}
    assert_tiles(apply(grids, result))


# -- random sequences ------------------------------------------------------------------

HEX_CELLS = shapely.get_parts(regular_grid(
    shapely.Polygon([(0, 0), (420, -30), (500, 260), (180, 330), (-40, 200)]), 60,
    "hex").geometry.values)
HEX_AREA = shapely.coverage_union_all(HEX_CELLS)  # the cells' own outline (rounded)


def hex_grids():
    return {i + 1: g for i, g in enumerate(HEX_CELLS)}


edit_steps = st.lists(st.tuples(
    st.sampled_from(["reshape", "split", "merge", "remove", "restore"]),
    st.integers(0, 10_000), st.floats(-40, 40), st.floats(-40, 40), st.floats(0, 3.14)),
    min_size=1, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edit_steps)
def test_any_sequence_of_edits_keeps_a_valid_coverage(steps):
    grids = hex_grids()
    assert_tiles(grids, HEX_AREA)
    history = {k: [g] for k, g in grids.items()}
    for op, pick, dx, dy, angle in steps:
        keys = sorted(grids)
        key = keys[pick % len(keys)]
        geom = grids[key]
        try:
            if op == "reshape":  # move one vertex
                ring = list(geom.exterior.coords)[:-1]
                i = pick % len(ring)
                ring[i] = (ring[i][0] + dx, ring[i][1] + dy)
                result = reshape(HEX_AREA, grids, key, shapely.Polygon(ring), **TOL)
            elif op == "split":
                c = geom.centroid
                d = np.array([np.cos(angle), np.sin(angle)]) * 200
                line = shapely.LineString([(c.x - d[0], c.y - d[1]), (c.x + d[0], c.y + d[1])])
                result = split(HEX_AREA, grids, key, line, **TOL)
            elif op == "merge":
                near = [k for k in keys if k != key and
                        geom.intersection(grids[k]).length > 0]
                if not near:
                    continue
                result = merge(grids, [key, near[pick % len(near)]])
            elif op == "remove":
                if len(grids) < 2:
                    continue
                result = reshape(HEX_AREA, grids, key, None, **TOL)
            else:
                result = reshape(HEX_AREA, grids, key, history[key][0], **TOL)
        except EditRefused:
            continue  # refused edits change nothing: grids is untouched
        grids = apply(grids, result)
        for k, g in grids.items():
            history.setdefault(k, [g])
        assert_tiles(grids, HEX_AREA)


def test_carve_cuts_a_new_grid_out_of_the_grids_it_overlaps():
    grids = six()
    shape = shapely.box(80, 80, 130, 120)  # around the corner of 1, 2, 4 and 5
    result = carve(AREA, grids, shape, min_area=100, **TOL)
    assert set(result.changed) == {NEW, 1, 2, 4, 5}
    out = apply(grids, result)
    assert_tiles(out)
    assert out[max(out)].symmetric_difference(shape).area < 1e-9


@pytest.mark.parametrize("shape,words", [
    (shapely.box(-10, -10, 110, 110), "cover grid 1 entirely"),
    (shapely.box(40, 40, 45, 45), "too small"),
    (shapely.box(250, 50, 500, 60), "lies outside"),
    (shapely.Polygon([(10, 10), (90, 90), (90, 10), (10, 90)]), "not a valid polygon"),
    (shapely.box(10, 10, 90, 90).difference(shapely.box(40, 40, 60, 60)), "without holes"),
    (shapely.LineString([(10, 10), (90, 90)]), "one polygon"),
])
def test_carve_refusals_name_the_problem(shape, words):
    with pytest.raises(EditRefused, match=words):
        carve(AREA, six(), shape, min_area=100, **TOL)
