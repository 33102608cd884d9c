"""Data clock and aoristic spreading against a minute-by-minute reference in local time
(zoneinfo), and the hour / weekday filter parsers at their edges."""

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from geo.clock import aoristic_clock, data_clock, parse_hours, parse_weekdays, time_mask

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _utc(*stamps):
    return np.array(stamps, dtype="datetime64[m]")


def test_data_clock_counts_in_local_time():
    # 2026-01-04 is a Sunday; 16:30 UTC is Monday 00:30 in Shanghai (UTC+8)
    clock = data_clock(_utc("2026-01-04T16:30", "2026-01-04T15:59", "2026-01-05T02:00",
                            "NaT"))
    assert clock.shape == (7, 24) and clock.sum() == 3
    assert clock[0, 0] == 1  # Monday 00:30
    assert clock[6, 23] == 1  # Sunday 23:59
    assert clock[0, 10] == 1  # Monday 10:00
    aware = pd.Series(pd.to_datetime(["2026-01-05T00:30+08:00"]))
    assert data_clock(aware)[0, 0] == 1


def _reference(starts, ends, tz):
    """Minute by minute: each minute of the span converted to local time with zoneinfo."""
    clock = np.zeros((7, 24))
    for s, e in zip(starts, ends, strict=True):
        s = s.astype(dt.datetime).replace(tzinfo=dt.UTC)
        e = e.astype(dt.datetime).replace(tzinfo=dt.UTC)
        minutes = int((e - s).total_seconds() // 60)
        if minutes == 0:
            local = s.astimezone(tz)
            clock[local.weekday(), local.hour] += 1
            continue
        for m in range(minutes):
            local = (s + dt.timedelta(minutes=m)).astimezone(tz)
            clock[local.weekday(), local.hour] += 1 / minutes
    return clock


def test_aoristic_matches_minute_by_minute_reference():
    rng = np.random.default_rng(7)
    n = 120
    starts = np.datetime64("2026-03-01T00:00") + rng.integers(0, 60 * 24 * 90, n).astype(
        "timedelta64[m]")
    spans = rng.choice([0, 1, 59, 60, 61, 600, 1440, 3000, 9000], n) + rng.integers(0, 90, n)
    ends = starts + spans.astype("timedelta64[m]")
    clock = aoristic_clock(starts, ends, "Asia/Shanghai")
    assert clock.sum() == pytest.approx(n, abs=1e-9)
    assert np.allclose(clock, _reference(starts, ends, SHANGHAI), atol=1e-9)


def test_aoristic_weights_sum_to_the_number_of_events_and_wrap_sunday_midnight():
    # Sunday 23:30 to Monday 00:30 local: half in each
    starts, ends = _utc("2026-01-04T15:30"), _utc("2026-01-04T16:30")
    clock = aoristic_clock(starts, ends)
    assert clock[6, 23] == pytest.approx(0.5) and clock[0, 0] == pytest.approx(0.5)
    assert clock.sum() == pytest.approx(1)


def test_spans_of_a_week_or_more_spread_evenly():
    starts = _utc("2026-01-04T15:17", "2026-02-01T00:00")
    ends = starts + np.array([7 * 1440, 30 * 1440], dtype="timedelta64[m]")
    clock = aoristic_clock(starts, ends)
    assert np.allclose(clock, 2 / 168)


def test_missing_end_and_empty_span_weigh_on_the_start_hour():
    starts = _utc("2026-01-05T02:10", "2026-01-05T02:10")
    ends = np.array(["NaT", "2026-01-05T02:10"], dtype="datetime64[m]")
    clock = aoristic_clock(starts, ends)
    assert clock[0, 10] == 2 and clock.sum() == 2


def test_end_before_start_is_an_error():
    with pytest.raises(ValueError, match="end before they start, the first at position 1"):
        aoristic_clock(_utc("2026-01-01T10:00", "2026-01-01T10:00"),
                       _utc("2026-01-01T11:00", "2026-01-01T09:59"))
    with pytest.raises(ValueError, match="2 starts but 1 ends"):
        aoristic_clock(_utc("2026-01-01T10:00", "2026-01-01T10:00"), _utc("2026-01-01T11:00"))


def test_parse_hours_wrapping_midnight():
    night = parse_hours("22-6")
    assert night == frozenset({22, 23, 0, 1, 2, 3, 4, 5})
    assert parse_hours("8-18") == frozenset(range(8, 18))
    assert parse_hours("0-24") == frozenset(range(24))
    assert parse_hours("7, 17-19") == frozenset({7, 17, 18})


def test_hours_filter_edges_in_local_time():
    # local 22:00, 05:59, 06:00, 21:59 on Tuesday 2026-01-06 (UTC+8)
    local = ["2026-01-06T22:00", "2026-01-06T05:59", "2026-01-06T06:00", "2026-01-06T21:59"]
    utc = np.array(local, dtype="datetime64[m]") - np.timedelta64(8, "h")
    assert time_mask(utc, hours="22-6").tolist() == [True, True, False, False]
    assert time_mask(utc, weekdays="2").tolist() == [True] * 4
    assert time_mask(utc, hours="22-6", weekdays="1,3-7").tolist() == [False] * 4
    assert time_mask(np.array(["NaT"], dtype="datetime64[m]"), hours="0-24").tolist() == [False]


def test_parse_weekdays():
    assert parse_weekdays("1-5") == frozenset(range(1, 6))
    assert parse_weekdays("1,2,5") == frozenset({1, 2, 5})
    assert parse_weekdays("6-1") == frozenset({6, 7, 1})
    assert parse_weekdays("3-3") == frozenset({3})


@pytest.mark.parametrize("text, message", [
    ("", "hours: empty"),
    ("22-", "'' is not a whole number"),
    ("25-3", "25 is outside 0-23"),
    ("8-25", "25 is outside 0-24"),
    ("6-6", "same hour"),
    ("a-6", "'a' is not a whole number"),
    ("1,,2", "empty item"),
    ("-3", "'' is not a whole number"),
])
def test_parse_hours_errors_name_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        parse_hours(text)


@pytest.mark.parametrize("text, message", [
    ("  ", "weekdays: empty"),
    ("0-5", "0 is outside 1-7"),
    ("1,8", "8 is outside 1-7"),
    ("mon", "'mon' is not a whole number"),
    ("1,", "empty item"),
])
def test_parse_weekdays_errors_name_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        parse_weekdays(text)


def test_unknown_time_zone_is_named():
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        data_clock(_utc("2026-01-01T00:00"), "Mars/Olympus")


def test_instants_before_the_first_monday_of_1970_wrap_into_the_week():
    # Thursday 08:00:30 and 07:59:59 in Shanghai, before Monday 1970-01-05; the second
    # spans 1 s of 07:xx and 9 s of 08:xx
    starts = np.array(["1970-01-01T00:00:30", "1969-12-31T23:59:59"], dtype="datetime64[s]")
    clock = aoristic_clock(starts, starts + np.timedelta64(10, "s"))
    assert clock[3, 8] == pytest.approx(1.9) and clock[3, 7] == pytest.approx(0.1)
    assert clock.sum() == pytest.approx(2)
