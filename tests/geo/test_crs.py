import numpy as np
import pytest
from pyproj import Geod

from geo.crs import (
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
