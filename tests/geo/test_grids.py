import geopandas as gpd
import libpysal
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo.grids import (
    coefficient_of_variation,
    partition,
    polsby_popper,
    regular_grid,
    rook_pairs,
)


def _lattice(n, seed=0, low=10, high=60):
    g = regular_grid(shapely.box(0, 0, n, n), 1.0)
    g["w"] = np.random.default_rng(seed).integers(low, high, len(g))
    return g


def _check_regions(units, labels, weight="w"):
    """Independent checks: every region dissolves (shapely) to one polygon."""
    assert len(labels) == len(units)
    for label in np.unique(labels):
        union = shapely.union_all(units.geometry.values[labels == label])
        assert union.geom_type == "Polygon", label
    return pd.Series(units[weight].to_numpy()).groupby(labels).sum()


def test_lattice_regions_are_contiguous_balanced_and_compact():
    units = _lattice(40)
    labels = partition(units, "w", 1000)
    sums = _check_regions(units, labels)
    assert len(sums) == round(units.w.sum() / 1000)
    assert coefficient_of_variation(sums.values) <= 0.10
    regions = units.assign(r=labels).dissolve("r").geometry.values
    assert np.median(polsby_popper(regions)) > 0.4


def test_irregular_units_stay_contiguous():
    rng = np.random.default_rng(3)
    area = shapely.Point(0, 0).buffer(1000)
    cells = shapely.get_parts(shapely.voronoi_polygons(
        shapely.multipoints(rng.uniform(-1000, 1000, (800, 2))), extend_to=area))
    cells = shapely.intersection(cells, area)
    import geopandas as gpd

    units = gpd.GeoDataFrame({"w": rng.integers(0, 30, len(cells))}, geometry=cells)
    units = units[units.area > 0].reset_index(drop=True)
    labels = partition(units, "w", 400)
    sums = _check_regions(units, labels)
    assert coefficient_of_variation(sums.values) <= 0.15


def test_rook_pairs_match_libpysal_rook():
    units = _lattice(12)
    pairs = {tuple(p) for p in rook_pairs(units.geometry.values)}
    w = libpysal.weights.Rook.from_dataframe(units, use_index=False, silence_warnings=True)
    reference = {(i, j) for i, nbrs in w.neighbors.items() for j in nbrs if i < j}
    assert pairs == reference
    queen = libpysal.weights.Queen.from_dataframe(units, use_index=False,
                                                  silence_warnings=True)
    assert len(reference) < sum(len(v) for v in queen.neighbors.values()) / 2  # no corners


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(3, 18), seed=st.integers(0, 10_000), target=st.integers(50, 2000))
def test_any_lattice_gives_contiguous_regions(n, seed, target):
    units = _lattice(n, seed, 0, 40)
    labels = partition(units, "w", target)
    sums = _check_regions(units, labels)
    expected = max(1, min(n * n, round(units.w.sum() / target)))
    assert len(sums) <= expected
    assert set(labels) == set(range(len(sums)))


def test_bad_arguments_are_refused():
    units = _lattice(3)
    with pytest.raises(ValueError, match="target"):
        partition(units, "w", 0)
    units.loc[0, "w"] = -1
    with pytest.raises(ValueError, match="non-negative"):
        partition(units, "w", 10)


def test_regular_grids_cover_the_area():
    area = shapely.Point(0, 0).buffer(100)
    for shape in ("square", "hex"):
        cells = regular_grid(area, 10, shape)
        union = shapely.union_all(cells.geometry.values)
        assert union.symmetric_difference(area).area < 1e-6 * area.area
        assert shapely.coverage_is_valid(cells.geometry.values)
    hexes = regular_grid(shapely.box(-1000, -1000, 1000, 1000), 10, "hex")
    full = hexes.area.max()
    assert full == pytest.approx(3 * np.sqrt(3) / 2 * 100, rel=1e-6)
    with pytest.raises(ValueError, match="shape"):
        regular_grid(area, 10, "triangle")


def test_polsby_popper_reference_shapes():
    disc = shapely.Point(0, 0).buffer(1, quad_segs=256)
    square = shapely.box(0, 0, 1, 1)
    pp = polsby_popper(np.array([disc, square]))
    assert pp[0] == pytest.approx(1, abs=1e-4)
    assert pp[1] == pytest.approx(np.pi / 4)


def test_grid_plan_follows_streets_and_tiles_the_area():
    from geo.grids import grid_plan, street_blocks

    rng = np.random.default_rng(5)
    area = shapely.Polygon([(0, 0), (2000, 0), (2300, 1500), (200, 1800)])
    roads = np.array([shapely.LineString([(-100, 700), (2500, 900)]),
                      shapely.LineString([(1000, -100), (1100, 2000)]),
                      shapely.LineString([(1000, 1100), (2400, 1400)]),
                      shapely.LineString([(400, 300), (600, 500)])], dtype=object)  # dead end
    blocks = street_blocks(area, roads)
    assert len(blocks) == 5  # crossing streets and a side street; a dead end cuts nothing
    homes = np.vstack([rng.normal((500, 400), 80, (900, 2)), rng.uniform(0, 2000, (600, 2))])
    homes = homes[shapely.contains_xy(area, homes[:, 0], homes[:, 1])]
    plan = grid_plan(area, roads, homes, 300)
    assert (plan.geom_type == "Polygon").all()
    assert shapely.coverage_is_valid(plan.geometry.values)
    union = shapely.union_all(plan.geometry.values)
    assert union.symmetric_difference(area).area < 1e-6 * area.area
    assert plan.points.sum() == len(homes) and plan.weight.sum() == len(homes)
    assert len(plan) == round(len(homes) / 300)
    assert coefficient_of_variation(plan.weight.values) <= 0.10
    # grid boundaries follow the streets: a block light enough is never cut
    light = [b for b in blocks
             if shapely.contains_xy(b, homes[:, 0], homes[:, 1]).sum() <= 300 / 3]
    assert light
    for block in light:
        shares = shapely.area(shapely.intersection(plan.geometry.values, block)) / block.area
        assert shares.max() > 0.999


def test_coverage_problems_name_each_kind():
    from geo.grids import coverage_problems

    area = shapely.box(0, 0, 100, 100)
    good = [shapely.box(0, 0, 50, 100), shapely.box(50, 0, 100, 100)]
    assert len(coverage_problems(area, np.array(good, dtype=object))) == 0
    cases = {
        "gap": [shapely.box(0, 0, 40, 100), shapely.box(50, 0, 100, 100)],
        "overlap": [shapely.box(0, 0, 60, 100), shapely.box(50, 0, 100, 100)],
        "sliver": [shapely.box(0, 0, 50.2, 100), shapely.box(50, 0, 100, 100)],
        "outside": [shapely.box(-10, 0, 50, 100), shapely.box(50, 0, 100, 100)],
        "invalid": [shapely.from_wkt("POLYGON ((0 0, 50 100, 50 0, 0 100, 0 0))"),
                    shapely.box(50, 0, 100, 100)],
    }
    for kind, grids in cases.items():
        found = coverage_problems(area, np.array(grids, dtype=object))
        assert kind in set(found.kind), (kind, list(found.kind))
    gap = coverage_problems(area, np.array(cases["gap"], dtype=object))
    assert gap[gap.kind == "gap"].area.sum() == pytest.approx(1000)
    unmatched = [shapely.Polygon([(0, 0), (50, 0), (50, 50), (50, 100), (0, 100)]),
                 shapely.box(50, 0, 100, 100)]
    found = coverage_problems(area, np.array(unmatched, dtype=object))
    assert list(found.kind) == ["unmatched_edge"] * len(found) and len(found) >= 1


def test_grid_plan_balances_households_clustered_in_one_compound():
    from geo.grids import grid_plan

    rng = np.random.default_rng(2)
    area = shapely.box(0, 0, 4000, 1500)  # one street block, no roads
    homes = rng.normal((3100, 700), 12, (192, 2))  # one compound of ~50 m
    plan = grid_plan(area, np.array([], dtype=object), homes, 120)
    assert len(plan) == 2
    assert plan.weight.min() >= 0.9 * 96  # split inside the compound, not 0 / 192
    assert shapely.coverage_is_valid(plan.geometry.values)


def _town(seed):
    """An area with streets and ~600 rectangular buildings of 1-30 floors in clusters."""
    rng = np.random.default_rng(seed)
    area = shapely.Polygon([(0, 0), (2400, 0), (2600, 1800), (300, 2000)])
    roads = np.array([shapely.LineString([(-100, 900), (2700, 1000)]),
                      shapely.LineString([(1200, -100), (1300, 2100)]),
                      shapely.LineString([(1300, 1500), (2700, 1600)])], dtype=object)
    centres = np.vstack([rng.normal((700, 500), 150, (300, 2)),
                         rng.uniform(0, 2500, (300, 2))])
    width, depth = rng.uniform(15, 40, len(centres)), rng.uniform(10, 20, len(centres))
    boxes = shapely.box(centres[:, 0] - width / 2, centres[:, 1] - depth / 2,
                        centres[:, 0] + width / 2, centres[:, 1] + depth / 2)
    inside = shapely.within(boxes, area)
    heights = rng.choice([np.nan, 3.0, 6.2, 10.0, 18.0, 45.0, 90.0], inside.sum())
    return area, roads, gpd.GeoDataFrame({"height_m": heights}, geometry=boxes[inside])


def test_floor_area_counts_floors_of_three_metres_rounded_half_up():
    from geo.grids import floor_area

    heights = np.array([np.nan, 1.4, 1.5, 4.4, 4.5, 7.5, 9.0, 100.0])
    assert floor_area(np.full(8, 100.0), heights).tolist() == \
        [100, 100, 100, 100, 200, 300, 300, 3300]


@pytest.mark.parametrize("seed", [1, 7, 11])
def test_grid_plan_by_building_floor_area_is_balanced_contiguous_and_tiles(seed):
    from geo.grids import floor_area, grid_plan

    area, roads, buildings = _town(seed)
    spots = buildings.representative_point()
    weights = floor_area(buildings.area.to_numpy(), buildings.height_m.to_numpy())
    target = weights.sum() / 12
    plan = grid_plan(area, roads, shapely.get_coordinates(spots.values), target,
                     weights=weights)
    # contiguous: one polygon each; no gap, no overlap
    assert (plan.geom_type == "Polygon").all()
    assert shapely.coverage_is_valid(plan.geometry.values)
    union = shapely.union_all(plan.geometry.values)
    assert union.symmetric_difference(area).area < 1e-6 * area.area
    assert plan.area.sum() == pytest.approx(area.area, rel=1e-9)
    assert len(plan) == 12
    # balanced as households are (the same tolerance)
    assert coefficient_of_variation(plan.weight.values) <= 0.10
    # the weights it reports are those a spatial join finds
    joined = gpd.sjoin(gpd.GeoDataFrame({"w": weights}, geometry=spots.values),
                       plan.reset_index(names="grid"), predicate="within")
    reference = joined.groupby("grid").w.sum().reindex(range(len(plan)), fill_value=0)
    np.testing.assert_allclose(plan.weight.values, reference.values, rtol=1e-9)
    assert (plan.points.values == joined.groupby("grid").size()
            .reindex(range(len(plan)), fill_value=0).values).all()


def test_grid_plan_by_area_gives_grids_of_near_equal_area():
    from geo.grids import grid_plan

    area, roads, _ = _town(3)
    plan = grid_plan(area, roads, np.empty((0, 2)), area.area / 9, per_area=1.0)
    assert len(plan) == 9 and (plan.geom_type == "Polygon").all()
    assert shapely.coverage_is_valid(plan.geometry.values)
    np.testing.assert_allclose(plan.weight.values, plan.area.values, rtol=1e-9)
    assert plan.area.sum() == pytest.approx(area.area, rel=1e-9)
    assert coefficient_of_variation(plan.area.values) <= 0.05


def test_grid_plan_refuses_weights_it_cannot_use():
    from geo.grids import grid_plan

    area = shapely.box(0, 0, 100, 100)
    points = np.array([[10.0, 10.0], [50.0, 50.0]])
    none = np.array([], dtype=object)
    with pytest.raises(ValueError, match="one value per point"):
        grid_plan(area, none, points, 10, weights=np.array([1.0]))
    with pytest.raises(ValueError, match="non-negative"):
        grid_plan(area, none, points, 10, weights=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="per_area"):
        grid_plan(area, none, points, 10, per_area=float("nan"))


def test_a_light_region_grows_through_empty_land_to_take_weight():
    # All the weight in the left column; region 1 starts as one empty cell on the right.
    units = regular_grid(shapely.box(0, 0, 10, 10), 1.0)
    units["w"] = np.where(units.col == 0, 10, 0)
    start = np.where((units.col == 9) & (units.row == 9), 1, 0)
    labels = partition(units, "w", 50, initial=start)
    sums = _check_regions(units, labels)
    assert sorted(sums.values) == [50, 50]
