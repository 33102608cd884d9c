import numpy as np
import pytest
from pyproj import Geod

from geo.crs import gcj02_to_wgs84, in_china, metric_crs, wgs84_to_gcj02

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
