"""The incident reader on hand-placed incidents (inside a transaction that is rolled back):
each place, period and category selects what a by-hand count of the placed ones says."""

import datetime as dt

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from geo.crs import metric_crs
from layers.incidents import read_incidents

pytestmark = pytest.mark.db

LON, LAT = 100.5, 30.0  # far from the demo
CODE = "990300"
CST = dt.timezone(dt.timedelta(hours=8))
# metres east and north of (LON, LAT), time, category, severity (None: not recorded)
PLACED = [
    (100.0, 100.0, dt.datetime(2026, 1, 5, 8, 30, tzinfo=CST), "fraud", 3),
    (500.0, 500.0, dt.datetime(2026, 2, 10, 23, 0, tzinfo=CST), "fire", None),
    (1500.0, 500.0, dt.datetime(2026, 1, 20, tzinfo=CST), "fraud", 2),  # outside the city
    (900.0, 900.0, dt.datetime(2026, 3, 1, tzinfo=CST), "dispute", 5),  # at the period's end
]


@pytest.fixture
def placed(db, demo_small):
    """A connection in a transaction holding a 1 km square city and PLACED; the CRS."""
    crs = metric_crs(LON, LAT)
    x0, y0 = Transformer.from_crs(4326, crs, always_xy=True).transform(LON, LAT)
    back = Transformer.from_crs(crs, 4326, always_xy=True)

    def lonlat(geom: shapely.Geometry) -> shapely.Geometry:
        return shapely.transform(geom, lambda xy: np.column_stack(
            back.transform(xy[:, 0] + x0, xy[:, 1] + y0)))

    with db.connect() as conn:
        outer = conn.begin()
        conn.execute(text(
            "INSERT INTO jurisdictions (geom, code, name, level) VALUES "
            "(ST_Multi(ST_GeomFromText(:g, 4326)), :c, '测试市', 'city')"),
            {"g": lonlat(shapely.box(0, 0, 1000, 1000)).wkt, "c": CODE})
        for x, y, when, category, severity in PLACED:
            conn.execute(text(
                "INSERT INTO incidents (geom, occurred_at, category, severity) VALUES "
                "(ST_GeomFromText(:g, 4326), :t, :c, :s)"),
                {"g": lonlat(shapely.Point(x, y)).wkt, "t": when, "c": category,
                 "s": severity})
        yield conn, crs, (x0, y0), lonlat
        outer.rollback()


def _expected(keep: list[int]) -> dict:
    return {"xy": [PLACED[i][:2] for i in keep],
            "epoch": [PLACED[i][2].timestamp() for i in keep],
            "category": [PLACED[i][3] for i in keep],
            "severity": [PLACED[i][4] or 1 for i in keep]}


def _got(incidents, origin) -> dict:
    order = np.lexsort((incidents.xy[:, 1], incidents.xy[:, 0]))
    return {"xy": [tuple(np.round(p - origin, 3)) for p in incidents.xy[order]],
            "epoch": incidents.epoch[order].tolist(),
            "category": incidents.category[order].tolist(),
            "severity": incidents.severity[order].tolist()}


def test_a_jurisdiction_and_period_select_the_incidents_placed_in_them(placed):
    conn, crs, origin, _lonlat = placed
    got = read_incidents(conn, crs, jurisdiction=CODE, start=dt.datetime(2026, 1, 1, tzinfo=CST),
                         end=dt.datetime(2026, 3, 1, tzinfo=CST))
    assert _got(got, origin) == _expected([0, 1])
    assert got.crs == crs.to_string() and got.xy.shape == (2, 2)
    assert got.when.dtype == np.dtype("datetime64[s]")
    fraud = read_incidents(conn, crs, jurisdiction=CODE, category="fraud")
    assert _got(fraud, origin) == _expected([0])


def test_an_area_or_a_box_selects_what_lies_in_it(placed):
    conn, crs, origin, lonlat = placed
    wide = lonlat(shapely.box(-10, -10, 2000, 1000))
    everything = read_incidents(conn, crs, area=wide)
    assert _got(everything, origin) == _expected([0, 1, 3, 2])
    in_box = read_incidents(conn, crs, box=shapely.bounds(lonlat(shapely.box(0, 0, 600, 600))),
                            start=dt.datetime(2026, 2, 1, tzinfo=CST))
    assert _got(in_box, origin) == _expected([1])
    square = shapely.box(origin[0], origin[1], origin[0] + 1000, origin[1] + 1000)
    assert _got(everything.inside(square), origin) == _expected([0, 1, 3])


def test_nothing_found_is_empty_arrays_and_one_place_is_required(placed):
    conn, crs, _origin, _lonlat = placed
    none = read_incidents(conn, crs, jurisdiction=CODE, category="traffic")
    assert len(none) == 0 and none.xy.shape == (0, 2) and none.when.shape == (0,)
    with pytest.raises(ValueError, match="exactly one"):
        read_incidents(conn, crs, jurisdiction=CODE, box=(0, 0, 1, 1))


def test_hours_and_weekdays_keep_the_incidents_at_those_local_times(placed):
    conn, crs, origin, lonlat = placed
    wide = lonlat(shapely.box(-10, -10, 2000, 1000))
    # PLACED local times: Mon 08:30, Tue 23:00, Tue 00:00, Sun 00:00
    night = read_incidents(conn, crs, area=wide, hours="22-6")
    assert _got(night, origin) == _expected([1, 3, 2])
    assert _got(read_incidents(conn, crs, area=wide, hours="8"), origin) == _expected([0])
    working = read_incidents(conn, crs, area=wide, weekdays="1-5")
    assert _got(working, origin) == _expected([0, 1, 2])
    both = read_incidents(conn, crs, jurisdiction=CODE, hours="22-6", weekdays="1-5")
    assert _got(both, origin) == _expected([1])
    none = read_incidents(conn, crs, area=wide, hours="9-17", weekdays="6,7")
    assert len(none) == 0 and none.xy.shape == (0, 2)


@pytest.mark.parametrize(("hours", "weekdays", "named"), [
    ("25", None, "hours '25': 25 is outside 0-23"), ("6-6", None, "hours"),
    ("", None, "hours: empty"), (None, "0-3", "weekdays '0-3'"), (None, "mon", "weekdays")])
def test_unreadable_hours_or_weekdays_are_refused_naming_them(placed, hours, weekdays, named):
    from layers.incidents import BadTimeFilter

    conn, crs, _origin, _lonlat = placed
    with pytest.raises(BadTimeFilter, match=named) as caught:
        read_incidents(conn, crs, jurisdiction=CODE, hours=hours, weekdays=weekdays)
    assert caught.value.http_status == 400
