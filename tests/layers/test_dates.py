"""Dates and date-times people give (query parameters, command options): one parser in
layers.validate, the same answers and the same 400 for the API and the command line."""

import datetime as dt

import pytest

from layers.errors import BadRequest
from layers.validate import LOCAL_TZ, YEARS, instant, period_end

UTC = dt.UTC


def test_a_date_is_its_first_or_last_moment_in_local_time():
    assert instant("2025-12-31", False) == dt.datetime(2025, 12, 31, tzinfo=LOCAL_TZ)
    assert instant(" 2025-12-31 ", True) == dt.datetime(2025, 12, 31, 23, 59, 59, 999999,
                                                        tzinfo=LOCAL_TZ)
    assert instant("2025-12-31", True).utcoffset() == dt.timedelta(hours=8)


def test_a_date_time_keeps_its_offset_or_is_local_time():
    assert instant("2025-03-01T08:00:00Z", False) == dt.datetime(2025, 3, 1, 8, tzinfo=UTC)
    assert instant("2025-03-01t08:00:00z", True) == dt.datetime(2025, 3, 1, 8, tzinfo=UTC)
    assert instant("2025-03-01T08:00:00", False) == dt.datetime(2025, 3, 1, 8,
                                                                tzinfo=LOCAL_TZ)
    assert instant("2025-03-01T08:00:00+02:00", False) == dt.datetime(2025, 3, 1, 6,
                                                                      tzinfo=UTC)


def test_a_period_ends_after_its_last_day():
    assert period_end("2025-12-31") == dt.datetime(2026, 1, 1, tzinfo=LOCAL_TZ)
    assert period_end("2024-02-28") == dt.datetime(2024, 2, 29, tzinfo=LOCAL_TZ)
    assert period_end("2025-12-31T10:00:00Z") == dt.datetime(2025, 12, 31, 10, tzinfo=UTC)


@pytest.mark.parametrize(("given", "message"), [
    ("yesterday", "'yesterday' is not an RFC 3339 date or date-time"),
    ("2025-02-30", "'2025-02-30' is not an RFC 3339"),
    ("", "'' is not an RFC 3339"),
    ("1899-12-31", f"the year 1899 is not in {YEARS[0]}-{YEARS[1]}"),
    ("9999-12-31T23:00:00Z", "the year 9999 is not in"),
])
def test_what_is_not_a_date_is_a_bad_request_naming_it(given, message):
    for parse in (lambda t: instant(t, False), period_end):
        with pytest.raises(BadRequest, match=message) as caught:
            parse(given)
        assert caught.value.http_status == 400 and str(caught.value).startswith("datetime")
