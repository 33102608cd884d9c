import numpy as np
import shapely

from geo.validate import coerce_type, geometry_problems


def _one(geom, declared="Point"):
    return geometry_problems(np.array([geom], dtype=object), declared)[0]


def test_good_geometries_pass():
    good = [shapely.Point(113, 28), shapely.box(113, 28, 113.01, 28.01)]
    assert geometry_problems(np.array(good[:1], dtype=object), "Point") == [None]
    assert geometry_problems(np.array(good, dtype=object), "PointOrPolygon") == [None, None]


def test_each_problem_is_named():
    assert _one(None) == "geometry is missing"
    assert _one(shapely.Point()) == "geometry is empty"
    assert "LineString" in _one(shapely.LineString([(0, 0), (1, 1)]))
    assert "NaN" in _one(shapely.Point(np.nan, 1))
    assert "off the planet" in _one(shapely.Point(500000, 3100000))
    bowtie = shapely.from_wkt("POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))")
    assert "Self-intersection" in _one(bowtie, "Polygon")


def test_coerce_type_unwraps_single_part_multis_and_promotes_polygons():
    multi_point = shapely.MultiPoint([(1, 2)])
    two_points = shapely.MultiPoint([(1, 2), (3, 4)])
    out = coerce_type(np.array([multi_point, two_points], dtype=object), "Point")
    assert out[0].geom_type == "Point"
    assert out[1].geom_type == "MultiPoint"  # left for the check to refuse
    poly = shapely.box(0, 0, 1, 1)
    assert coerce_type(np.array([poly], dtype=object), "MultiPolygon")[0].geom_type == (
        "MultiPolygon")


def test_points_round_exactly_as_geos_pointwise_rounding():
    from geo.validate import points_to_grid, to_served

    rng = np.random.default_rng(3)
    xy = np.vstack([rng.uniform([-180, -90], [180, 90], (20_000, 2)),
                    # halves of the grid step, where rounding rules differ
                    (rng.integers(-1_800_000_000, 1_800_000_000, (5_000, 2)) + 0.5) / 1e7,
                    [[0.0, -0.0], [-1e-7 / 2, 1e-7 / 2], [179.99999995, -89.99999995]]])
    points = shapely.points(xy)
    for grid in (1e-7, 1e-3, 0.5, 10.0):
        library = shapely.get_coordinates(shapely.set_precision(points, grid,
                                                                mode="pointwise"))
        assert np.array_equal(shapely.get_coordinates(points_to_grid(points, grid)), library)
    mixed = np.array([shapely.Point(1.000000049, 2.00000005), None, shapely.Point(),
                      shapely.box(0, 0, 1.00000004, 1)], dtype=object)
    served = to_served(mixed)
    assert served[0].equals_exact(shapely.Point(1.0, 2.0000001), 0.0)
    assert served[1] is None and served[2].is_empty
    assert served[3].equals(shapely.box(0, 0, 1, 1))
