"""Near repeat over HTTP on the small demo: the Knox table, classes and risk zones against
geo.nearrepeat run on incidents read here by SQL and projected with pyproj, the saved run,
what each role sees, and the bad-parameter corpus (400 naming it, nothing saved)."""

import datetime as dt

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from geo.nearrepeat import classify, knox_table, risk_zones

pytestmark = pytest.mark.db

COMMUNITY = "430102001001"  # about 570 incidents a year in the small demo
START, END = "2026-06-01", "2026-08-31"  # END is a date: the period ends at its last moment
CST = dt.timezone(dt.timedelta(hours=8))
URL = (f"/api/hotspots/near-repeat?jurisdiction={COMMUNITY}&from={START}&to={END}"
       "&space_bands=100,250,400&time_bands=7,14,30&permutations=19&seed=3&band=250,14")


def _incidents(db, code: str, start: str, end: str) -> tuple[np.ndarray, np.ndarray]:
    """(xy metres in UTM 49N, UTC datetime64[s]) of the incidents in ``code`` and the
    local days start..end, in time order (then x, then y), read here by SQL."""
    with db.connect() as conn:
        rows = conn.execute(text(
            "SELECT ST_X(i.geom), ST_Y(i.geom), i.occurred_at FROM incidents i, jurisdictions j "
            "WHERE j.code = :c AND ST_Intersects(j.geom, i.geom) AND i.occurred_at >= :a "
            "AND i.occurred_at < :b"),
            {"c": code, "a": dt.datetime.fromisoformat(start).replace(tzinfo=CST),
             "b": dt.datetime.fromisoformat(end).replace(tzinfo=CST) + dt.timedelta(days=1)}
        ).all()
    lon, lat, when = (np.array(c) for c in zip(*rows, strict=True))
    x, y = Transformer.from_crs(4326, 32649, always_xy=True).transform(lon, lat)
    t = np.array([np.datetime64(w.astimezone(dt.UTC).replace(tzinfo=None), "s") for w in when])
    order = np.lexsort((y, x, t))
    return np.column_stack([x, y])[order], t[order]


def _nan(table: list) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in table], dtype=float)


@pytest.fixture(scope="module")
def answer(api):
    r = api("police", URL)
    assert r.status_code == 200, r.text[:300]
    return r.json()


def test_the_knox_table_is_that_of_the_incidents_in_the_period(answer, db):
    xy, t = _incidents(db, COMMUNITY, START, END)
    assert answer["parameters"]["metric_crs"] == "EPSG:32649"  # the demo's UTM zone
    assert answer["parameters"]["incidents"] == len(t) > 50
    ref = knox_table(xy, t, [0, 100, 250, 400], [0, 7, 14, 30], permutations=19, seed=3)
    knox = answer["knox"]
    assert knox["space_edges"] == [0, 100, 250, 400] and knox["time_edges"] == [0, 7, 14, 30]
    assert knox["space_bands"] == ["0-100", "100-250", "250-400", ">400"]
    assert np.array_equal(knox["observed"], ref.observed)
    assert np.array(knox["observed"]).sum() == len(t) * (len(t) - 1) // 2  # every pair once
    assert np.allclose(_nan(knox["expected"]), ref.expected, equal_nan=True)
    assert np.allclose(_nan(knox["p_value"]), ref.p_value, equal_nan=True)
    assert np.allclose(_nan(knox["knox_ratio"]), ref.knox_ratio, equal_nan=True)
    assert knox["permutations"] == 19 and knox["seed"] == 3
    assert answer["summary"]["close_pairs"] == ref.observed[:-1].sum()


def test_classes_and_risk_zones_are_those_of_the_chosen_band(answer, db):
    xy, t = _incidents(db, COMMUNITY, START, END)
    labels = classify(xy, t, 250, 14)
    assert answer["classification"]["space_m"] == 250 and answer["classification"]["days"] == 14
    assert answer["classification"]["counts"] == {
        c: int((labels == c).sum()) for c in ("originator", "near_repeat", "isolated")}
    as_of = np.datetime64("2026-08-31T16:00:00")  # 1 September 00:00 +08:00
    zones = risk_zones(xy, t, as_of, 250, 14)
    features = answer["features"]
    assert answer["type"] == "FeatureCollection" and len(features) == len(zones) > 0
    assert answer["as_of"] == "2026-09-01T00:00:00+08:00"
    recent = (t >= as_of - np.timedelta64(14, "D")) & (t <= as_of)
    assert sum(f["properties"]["incidents"] for f in features) == recent.sum()
    to_lonlat = Transformer.from_crs(32649, 4326, always_xy=True)
    for feature, zone in zip(features, zones, strict=True):
        until = dt.datetime.fromisoformat(feature["properties"]["until"])
        assert until.utcoffset() == dt.timedelta(hours=8)
        assert np.datetime64(until.astimezone(dt.UTC).replace(tzinfo=None), "ms") == zone.until
        assert feature["properties"]["incidents"] == len(zone.incidents)
        shape = shapely.geometry.shape(feature["geometry"])  # lon/lat
        centres = np.column_stack(to_lonlat.transform(*xy[zone.incidents].T))
        assert shapely.contains_xy(shape, centres[:, 0], centres[:, 1]).all()
        ref = shapely.transform(zone.geometry, lambda p: np.column_stack(
            to_lonlat.transform(p[:, 0], p[:, 1])))
        assert shape.symmetric_difference(ref).area < 1e-3 * ref.area


def test_the_run_is_saved_listed_reopened_and_repeats_with_its_seed(answer, api):
    listed = api("police", f"/api/hotspots/runs?jurisdiction={COMMUNITY}").json()["runs"]
    mine = next(x for x in listed if x["id"] == answer["run"])
    assert mine["kind"] == "near_repeat" and mine["parameters"]["band"] == [250, 14]
    again = api("police", f"/api/hotspots/runs/{answer['run']}").json()
    assert again == {k: v for k, v in answer.items() if k != "run"}
    repeat = api("police", URL).json()
    assert repeat["knox"] == answer["knox"] and repeat["run"] != answer["run"]
    # a viewer sees the table and the counts, never circles drawn around incidents
    viewer = api("viewer", f"/api/hotspots/runs/{answer['run']}").json()
    assert viewer["features"] == [] and viewer["zones_withheld"]
    assert viewer["knox"] == answer["knox"]


@pytest.mark.parametrize("user", ["planner", "viewer"])
def test_aggregate_roles_get_the_table_but_no_zones(api, user, answer):
    r = api(user, URL)
    assert r.status_code == 200, r.text[:300]
    assert r.json()["features"] == [] and r.json()["zones_withheld"]
    assert r.json()["knox"] == answer["knox"]


def test_defaults_and_the_time_filters(api, db):
    r = api("police", f"/api/hotspots/near-repeat?jurisdiction={COMMUNITY}&from={START}"
                      f"&to={END}&permutations=0&hours=18-6&weekdays=6,7")
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert body["knox"]["space_edges"] == [0, 100, 200, 300]
    assert body["knox"]["time_edges"] == [0, 7, 14, 21, 28]
    assert body["classification"]["space_m"] == 100 and body["classification"]["days"] == 7
    assert all(v is None for row in body["knox"]["expected"] for v in row)
    xy, t = _incidents(db, COMMUNITY, START, END)
    local = t + np.timedelta64(8, "h")
    hour = (local - local.astype("datetime64[D]")).astype("timedelta64[h]").astype(int)
    weekday = (local.astype("datetime64[D]").astype(int) + 3) % 7 + 1  # 1970-01-01: Thu
    keep = ((hour >= 18) | (hour < 6)) & (weekday >= 6)
    assert body["parameters"]["incidents"] == keep.sum() > 0
    ref = knox_table(xy[keep], t[keep], permutations=0)
    assert np.array_equal(body["knox"]["observed"], ref.observed)


@pytest.mark.parametrize("user", ["viewer", "police", "planner", "partner"])
def test_outside_ones_jurisdiction_is_refused_as_for_hot_spots(api, user):
    period = f"from={START}&to={END}"
    hot = api(user, f"/api/hotspots?jurisdiction=430200&cell=500&{period}")
    near = api(user, f"/api/hotspots/near-repeat?jurisdiction=430200&{period}&permutations=0")
    assert hot.status_code == near.status_code == 403
    assert near.json()["error"].split(" ")[0] == hot.json()["error"].split(" ")[0]


BAD = [
    ("space_bands=300,200", "space_bands"), ("space_bands=0,100", "space_bands"),
    ("space_bands=100,abc", "space_bands"), ("space_bands=", "space_bands"),
    ("space_bands=100,inf", "space_bands"),
    ("space_bands=" + ",".join(str(k) for k in range(1, 1001)), "space_bands"),
    ("time_bands=-7,14", "time_bands"), ("time_bands=7,7", "time_bands"),
    ("permutations=1000", "permutations"), ("permutations=-1", "permutations"),
    ("permutations=1.5", "permutations"), ("seed=x", "seed"), ("seed=-3", "seed"),
    ("band=200", "band"), ("band=200,0", "band"), ("band=a,b", "band"),
    ("band=1e-300,14", "band"), ("band=20000,14", "band"), ("band=200,400", "band"),
    ("hours=25", "hours '25'"), ("hours=6-6", "hours"), ("weekdays=0-3", "weekdays '0-3'"),
    ("category=arson", "category"), ("cell=300", "'cell'"), ("jurisdiction=999999", "999999"),
    ("from=2026-09-01", "from"),
]


@pytest.mark.parametrize(("param", "named"), BAD)
def test_bad_parameters_are_refused_naming_them_and_nothing_is_saved(api, db, param, named):
    with db.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM hotspot_runs")).scalar_one()
    query = f"jurisdiction={COMMUNITY}&from={START}&to={END}&permutations=0"
    key = param.split("=")[0]
    query = "&".join(p for p in query.split("&") if p.split("=")[0] != key)
    r = api("police", f"/api/hotspots/near-repeat?{query}&{param}")
    assert r.status_code == 400, r.text[:300]
    assert named in r.json()["error"]
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hotspot_runs")).scalar_one() == before


def test_a_run_too_large_for_one_request_is_refused_naming_what_to_change():
    from layers.hotspots import BadHotspotRequest
    from layers.nearrepeat import MAX_CLOSE_PAIRS, NearRepeatQuery, check_size

    rng = np.random.default_rng(0)
    crowd = rng.uniform(0, 50, (10_000, 2))  # every pair within 100 m: 49,995,000 pairs
    assert 10_000 * 9_999 // 2 > MAX_CLOSE_PAIRS
    with pytest.raises(BadHotspotRequest, match="^space_bands: 49,995,000 pairs"):
        check_size(crowd, NearRepeatQuery(space_bands=(100,), permutations=0))
    from scipy.spatial.distance import pdist

    assert check_size(crowd[:2_000], NearRepeatQuery(space_bands=(1, 5), permutations=0)) \
        == (pdist(crowd[:2_000]) <= 5).sum()
    assert check_size(crowd[:5_000], NearRepeatQuery(space_bands=(100,), permutations=0)) \
        == 5_000 * 4_999 // 2
    with pytest.raises(BadHotspotRequest, match="^permutations: 999 permutations"):
        check_size(crowd[:5_000], NearRepeatQuery(space_bands=(100,), permutations=999))
