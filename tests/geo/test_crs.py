import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer

from geo.crs import (
    LocalMetres,
    Projection,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    in_china,
    metric_crs,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

# Published reference points of the GCJ-02 formula (eviltransform's test fixture):
# (WGS 84 lat, lon) -> (GCJ-02 lat, lon) for Shanghai, Shenzhen and Beijing.
REFERENCE = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),
]
GEOD = Geod(ellps="WGS84")


@pytest.mark.parametrize(("wgs", "gcj"), REFERENCE)
def test_forward_matches_published_reference(wgs, gcj):
    lon, lat = wgs84_to_gcj02(np.array([wgs[1]]), np.array([wgs[0]]))
    assert lon[0] == pytest.approx(gcj[1], abs=1e-9)
    assert lat[0] == pytest.approx(gcj[0], abs=1e-9)


def test_round_trip_within_half_a_metre_across_china():
    rng = np.random.default_rng(7)
    lon = rng.uniform(75, 134, 20000)
    lat = rng.uniform(18, 53, 20000)
    glon, glat = wgs84_to_gcj02(lon, lat)
    _, _, shift = GEOD.inv(lon, lat, glon, glat)
    assert shift.max() > 100  # the offset is real: hundreds of metres
    back_lon, back_lat = gcj02_to_wgs84(glon, glat)
    _, _, error = GEOD.inv(lon, lat, back_lon, back_lat)
    assert error.max() < 0.5
    assert error.max() < 0.01  # in fact far better


def test_no_offset_outside_china():
    lon, lat = np.array([2.35, -74.0]), np.array([48.85, 40.7])
    assert not in_china(lon, lat).any()
    glon, glat = wgs84_to_gcj02(lon, lat)
    np.testing.assert_array_equal(glon, lon)
    np.testing.assert_array_equal(glat, lat)


def test_metric_crs_utm_and_cgcs2000():
    assert metric_crs(112.98, 28.02).to_epsg() == 32649
    assert metric_crs(-70.0, -33.0).to_epsg() == 32719
    assert metric_crs(112.98, 28.02, "cgcs2000").to_epsg() == 4547  # CM 114E
    assert metric_crs(112.98, 28.02).axis_info[0].unit_name == "metre"


@pytest.mark.parametrize("args", [(200.0, 10.0), (10.0, 95.0), (float("nan"), 1.0)])
def test_metric_crs_refuses_off_planet_centres(args):
    with pytest.raises(ValueError, match="on the planet"):
        metric_crs(*args)


def test_metric_crs_refuses_unknown_kind_and_cgcs_outside_china():
    with pytest.raises(ValueError, match="unknown metric CRS kind"):
        metric_crs(112.0, 28.0, "mercator")
    with pytest.raises(ValueError, match="outside the CGCS2000"):
        metric_crs(10.0, 50.0, "cgcs2000")


# BD-09 (Baidu). Forward reference: wandergis/coordtransform README (gcj02tobd09 of
# (116.404, 39.915)) and the test suite of its Rust port wyxloading/coordtransform-rs
# (tests/tests.rs: gcj02_to_bd09 and wgs84_to_bd09 of the same point).
BD_REFERENCE = [
    (gcj02_to_bd09, (116.404, 39.915), (116.41036949371029, 39.92133699351021)),
    (wgs84_to_bd09, (116.404, 39.915), (116.41662724378733, 39.922699552216216)),
]
# The same sources' bd09togcj02 (116.404, 39.915) -> this, by the one-step approximate
# inverse; ours inverts exactly, so it agrees only to about a metre.
BD_APPROX_INVERSE = ((116.404, 39.915), (116.39762729119315, 39.90865673957631))


@pytest.mark.parametrize(("convert", "source", "expected"), BD_REFERENCE)
def test_bd09_forward_matches_published_reference(convert, source, expected):
    lon, lat = convert(np.array([source[0]]), np.array([source[1]]))
    assert lon[0] == pytest.approx(expected[0], abs=1e-12)
    assert lat[0] == pytest.approx(expected[1], abs=1e-12)


def test_bd09_inverse_beats_the_one_step_approximation():
    (blon, blat), (alon, alat) = BD_APPROX_INVERSE
    glon, glat = bd09_to_gcj02(np.array([blon]), np.array([blat]))
    _, _, gap = GEOD.inv(glon, glat, [alon], [alat])
    assert gap[0] < 2.0  # the published one-step inverse is close ...
    flon, flat = gcj02_to_bd09(glon, glat)
    _, _, ours = GEOD.inv(flon, flat, [blon], [blat])
    flon, flat = gcj02_to_bd09(np.array([alon]), np.array([alat]))
    _, _, theirs = GEOD.inv(flon, flat, [blon], [blat])
    assert ours[0] < 1e-4 < theirs[0]  # ... but only ours maps back onto the BD-09 point


def _china_grid():
    lon, lat = np.meshgrid(np.linspace(73.5, 134.5, 123), np.linspace(18.0, 53.5, 72))
    return lon.ravel(), lat.ravel()


@pytest.mark.parametrize(("forward", "inverse", "least_shift"), [
    (gcj02_to_bd09, bd09_to_gcj02, 300.0),
    (wgs84_to_bd09, bd09_to_wgs84, 300.0),
])
def test_bd09_round_trip_within_half_a_metre_across_china(forward, inverse, least_shift):
    lon, lat = _china_grid()
    blon, blat = forward(lon, lat)
    _, _, shift = GEOD.inv(lon, lat, blon, blat)
    assert shift.min() > least_shift  # Baidu's offset is everywhere hundreds of metres
    back_lon, back_lat = inverse(blon, blat)
    _, _, error = GEOD.inv(lon, lat, back_lon, back_lat)
    assert error.max() < 0.5
    assert error.max() < 0.001  # in fact far better


def test_bd09_identity_outside_china_like_gcj02():
    lon, lat = np.array([2.35, -74.0, 151.2]), np.array([48.85, 40.7, -33.87])
    for convert in (gcj02_to_bd09, bd09_to_gcj02, wgs84_to_bd09, bd09_to_wgs84,
                    wgs84_to_gcj02, gcj02_to_wgs84):
        olon, olat = convert(lon, lat)
        np.testing.assert_array_equal(olon, lon)
        np.testing.assert_array_equal(olat, lat)


@pytest.mark.parametrize("convert", [gcj02_to_bd09, bd09_to_gcj02, wgs84_to_bd09,
                                     bd09_to_wgs84])
def test_bd09_keeps_shapes_and_nan(convert):
    lon = np.array([[116.404, np.nan], [121.47, 113.26]])
    lat = np.array([[39.915, 31.23], [np.nan, 23.13]])
    olon, olat = convert(lon, lat)
    assert olon.shape == olat.shape == (2, 2)
    # a point with a NaN coordinate is not in China: left as it is, as the GCJ-02 ones do
    np.testing.assert_array_equal(olon[~np.isfinite(lat)], lon[~np.isfinite(lat)])
    np.testing.assert_array_equal(np.isnan(olon), np.isnan(lon))
    np.testing.assert_array_equal(np.isnan(olat), np.isnan(lat))
    assert np.isfinite(olon[1, 1]) and abs(olon[1, 1] - 113.26) > 1e-3
    slon, slat = convert(116.404, 39.915)  # scalars in, 0-d arrays out
    assert np.ndim(slon) == np.ndim(slat) == 0
    assert float(slon) == pytest.approx(olon[0, 0])


# Projection: checked against pyproj Transformers built directly.
def _pyproj(source, target, x, y):
    return Transformer.from_crs(source, target, always_xy=True).transform(x, y)


@pytest.mark.parametrize(("lon", "lat", "kind", "epsg"), [
    (112.98, 28.02, "utm", 32649), (112.98, 28.02, "cgcs2000", 4547),
    (-70.0, -33.0, "utm", 32719),
])
def test_projection_around_matches_pyproj_for_points(lon, lat, kind, epsg):
    proj = Projection.around(lon, lat, kind)
    assert proj.crs.to_epsg() == epsg and proj.source.to_epsg() == 4326
    rng = np.random.default_rng(3)
    lons, lats = lon + rng.uniform(-0.3, 0.3, 500), lat + rng.uniform(-0.3, 0.3, 500)
    x, y = proj.project_xy(lons, lats)
    ex, ey = _pyproj(4326, epsg, lons, lats)
    np.testing.assert_array_equal(x, ex)
    np.testing.assert_array_equal(y, ey)
    blon, blat = proj.unproject_xy(x, y)
    np.testing.assert_array_equal((blon, blat), _pyproj(epsg, 4326, x, y))
    np.testing.assert_allclose(blon, lons, atol=1e-9)
    sx, sy = proj.project_xy(lon, lat)  # scalars in, scalars out
    assert (sx, sy) == _pyproj(4326, epsg, lon, lat)


def test_projection_moves_geometries_like_pyproj_moves_their_coordinates():
    proj = Projection.around(112.98, 28.02)
    square = shapely.box(112.9, 28.0, 112.95, 28.04)
    geoms = np.array([square, shapely.Point(112.98, 28.02),
                      shapely.LineString([(112.9, 28.0), (113.0, 28.1)]),
                      shapely.MultiPolygon([square, shapely.box(113.0, 28.1, 113.1, 28.2)])],
                     dtype=object)
    moved = proj.project(geoms)
    assert isinstance(moved, np.ndarray) and moved.shape == (4,)
    assert list(shapely.get_type_id(moved)) == list(shapely.get_type_id(geoms))
    coords = shapely.get_coordinates(geoms)
    expected = np.column_stack(_pyproj(4326, 32649, coords[:, 0], coords[:, 1]))
    np.testing.assert_array_equal(shapely.get_coordinates(moved), expected)
    one = proj.project(square)  # a single geometry stays a single geometry
    assert isinstance(one, shapely.Polygon)
    assert one.equals_exact(moved[0], 0)
    assert one.area == pytest.approx(abs(GEOD.geometry_area_perimeter(square)[0]), rel=2e-3)
    back = proj.unproject(moved)
    np.testing.assert_allclose(shapely.get_coordinates(back), coords, atol=1e-9)
    assert len(proj.project(np.empty(0, dtype=object))) == 0


def test_projection_between_two_given_crss():
    proj = Projection(4326, source=3857)  # web mercator metres -> lon/lat
    x, y = np.array([12577000.0, 12578000.0]), np.array([3252000.0, 3253000.0])
    np.testing.assert_array_equal(proj.project_xy(x, y), _pyproj(3857, 4326, x, y))
    line = shapely.LineString(np.column_stack([x, y]))
    np.testing.assert_array_equal(shapely.get_coordinates(proj.project(line)),
                                  np.column_stack(_pyproj(3857, 4326, x, y)))


def test_projection_over_uses_the_centroid_zone():
    # a shape straddling 114E: its centroid (113.2E) is in UTM 49, CGCS2000 CM 114E
    shape = shapely.box(111.0, 28.0, 115.4, 28.5)
    assert Projection.over(shape).crs.to_epsg() == 32649
    assert Projection.over(shape, "cgcs2000").crs.to_epsg() == 4547
    with pytest.raises(ValueError, match="unknown metric CRS kind"):
        Projection.over(shape, "mercator")


def test_local_metres_is_a_projection_whose_proj_transformers_agree():
    plane = LocalMetres(112.98, 28.02)
    assert isinstance(plane, Projection)
    assert plane.crs.axis_info[0].unit_name == "metre"
    rng = np.random.default_rng(5)
    lons, lats = 112.98 + rng.uniform(-0.05, 0.05, 300), 28.02 + rng.uniform(-0.05, 0.05, 300)
    x, y = plane.project_xy(lons, lats)
    np.testing.assert_allclose(x, (lons - 112.98) * plane.kx, rtol=0, atol=1e-9)
    px, py = plane.transformer.transform(lons, lats)
    np.testing.assert_allclose((px, py), (x, y), rtol=0, atol=1e-6)
    np.testing.assert_allclose(plane.inverse_transformer.transform(x, y), (lons, lats),
                               rtol=0, atol=1e-11)
    # metres along the axes match the ellipsoid's to well under 0.1 % over a few km
    _, _, east = GEOD.inv(112.98, 28.02, 113.0, 28.02)
    assert plane.project_xy(113.0, 28.02)[0] == pytest.approx(east, rel=1e-4)
    _, _, north = GEOD.inv(112.98, 28.02, 112.98, 28.04)
    assert plane.project_xy(112.98, 28.04)[1] == pytest.approx(north, rel=1e-4)
