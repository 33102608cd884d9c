"""The data clock: incidents by weekday and hour of the local week, with aoristic spreading.

A data clock is a 7 x 24 table: row ``k`` is ISO weekday ``k + 1`` (Monday = 1 ...
Sunday = 7), column ``h`` the local hour ``h:00``-``h:59``. Instants come in as UTC
(``datetime64`` without a zone are taken as UTC, zone-aware pandas values are
converted) and are counted in the wall-clock time of ``tz``.

Aoristic spreading (Ratcliffe 2002) is for incidents known only to lie between a start
and an end (``occurred_until``): each spreads a weight of 1 over the hours of the week
its span covers, in proportion to the minutes of the span in each hour-of-week bin. A
span of a week or more covers every bin evenly (1/168 each); a span of length zero, or
an incident without an end (NaT), puts its whole weight on the start's bin. An end
before its start is an error. Spans are measured on the local wall clock: in zones
with daylight saving time the skipped hour gets no weight and the repeated hour is
counted once (a span that the clock change makes negative counts as an instant); zones
without daylight saving time, such as Asia/Shanghai, are exact.

Filters: :func:`parse_hours` reads ``"22-6"`` (22:00 up to, not including, 06:00,
across midnight), ``"8-18"``, ``"7"`` or lists ``"7-9,17-19"``; :func:`parse_weekdays`
reads ``"1-5"``, ``"6,7"`` or ``"1,2,5"`` (ISO weekdays, ranges inclusive, ``"6-1"``
wraps to Saturday, Sunday, Monday).

References
----------
Ratcliffe, J. H. (2002). Aoristic signatures and the spatio-temporal analysis of high
volume crime patterns. Journal of Quantitative Criminology, 18(1), 23-43.
https://doi.org/10.1023/A:1013240828824
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "WEEK_MINUTES",
    "aoristic_clock",
    "data_clock",
    "parse_hours",
    "parse_weekdays",
    "time_mask",
]

WEEK_MINUTES = 7 * 24 * 60
MONDAY = pd.Timestamp("1970-01-05")  # a Monday: minutes of the week count from here

Instants = np.ndarray | list[Any] | pd.Series | pd.DatetimeIndex


def _local(instants: Instants, tz: str) -> pd.DatetimeIndex:
    """Wall-clock times in ``tz`` (naive) of UTC instants."""
    index = pd.DatetimeIndex(instants)
    if index.tz is None:
        index = index.tz_localize("UTC")
    try:
        return index.tz_convert(tz).tz_localize(None)
    except (KeyError, ValueError) as error:  # zoneinfo / pytz: unknown zone
        raise ValueError(f"unknown time zone {tz!r}") from error


def _week_minute(local: pd.DatetimeIndex) -> np.ndarray:
    """Minutes since Monday 00:00 of the same week, as float (NaN for NaT)."""
    minutes = np.mod(np.asarray((local - MONDAY) / pd.Timedelta(minutes=1), dtype=float),
                     WEEK_MINUTES)
    return np.where(minutes >= WEEK_MINUTES, 0.0, minutes)  # -1e-12 % W rounds to W


def data_clock(starts: Instants, tz: str = "Asia/Shanghai") -> np.ndarray:
    """Incidents per (weekday, hour) of the local week: a (7, 24) array of counts.

    Row ``k`` is ISO weekday ``k + 1`` (Monday first), column ``h`` the hour ``h``.
    Missing times (NaT) are not counted.
    """
    local = _local(starts, tz)
    local = local[np.asarray(local.notna())]
    bins = (local.day_of_week.to_numpy() * 24 + local.hour.to_numpy()).astype(np.int64)
    return np.bincount(bins, minlength=168).reshape(7, 24)


def aoristic_clock(starts: Instants, ends: Instants,
                   tz: str = "Asia/Shanghai") -> np.ndarray:
    """Aoristic weights per (weekday, hour) of the local week: a (7, 24) float array.

    Each incident spreads a weight of 1 over the hour-of-week bins its span [start,
    end) covers, in proportion to the minutes in each (see the module notes for spans
    of a week or more, empty spans and missing ends). The table sums to the number of
    incidents with a start.

    Raises
    ------
    ValueError
        If the lengths differ or an end is before its start.
    """
    start_utc, end_utc = pd.DatetimeIndex(starts), pd.DatetimeIndex(ends)
    if len(start_utc) != len(end_utc):
        raise ValueError(f"{len(start_utc)} starts but {len(end_utc)} ends")
    start_utc = start_utc if start_utc.tz is None else start_utc.tz_convert(None)
    end_utc = end_utc if end_utc.tz is None else end_utc.tz_convert(None)
    backwards = np.flatnonzero(np.asarray(end_utc < start_utc))
    if len(backwards):
        k = int(backwards[0])
        raise ValueError(f"{len(backwards)} incident(s) end before they start, the first "
                         f"at position {k}: {start_utc[k]} to {end_utc[k]} (UTC)")
    keep = np.asarray(start_utc.notna())
    start_local, end_local = _local(start_utc[keep], tz), _local(end_utc[keep], tz)
    a = _week_minute(start_local)
    span = np.asarray((end_local - start_local) / pd.Timedelta(minutes=1), dtype=float)
    span = np.where(np.isnan(span), 0.0, np.maximum(span, 0.0))
    return _spread(a, span).reshape(7, 24)


def _spread(a: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Sum over incidents of the share of [a, a + span) minutes in each hour of the week.

    ``a`` in [0, WEEK_MINUTES) minutes; bins are laid over two weeks so that a span
    crossing Sunday midnight needs no splitting, then folded onto one.
    """
    weights = np.zeros(2 * 168 + 1)
    week = span >= WEEK_MINUTES
    weights[:168] += week.sum() / 168.0
    a, span = a[~week], span[~week]
    b = a + span
    ka = np.floor(a / 60).astype(np.int64)
    kb = np.floor(b / 60).astype(np.int64)
    same = ka == kb  # includes empty spans: all weight in the start's bin
    weights += np.bincount(ka[same], minlength=len(weights))
    ka, kb, a, b, span = ka[~same], kb[~same], a[~same], b[~same], span[~same]
    size = len(weights)
    weights += np.bincount(ka, ((ka + 1) * 60 - a) / span, minlength=size)
    weights += np.bincount(kb, (b - kb * 60) / span, minlength=size)
    full = np.bincount(ka + 1, 60 / span, minlength=size) \
        - np.bincount(kb, 60 / span, minlength=size)  # whole hours between
    weights += np.cumsum(full)
    return weights[:168] + weights[168:336]


def _integer(token: str, what: str, text: str, low: int, high: int) -> int:
    token = token.strip()
    if not token.isdigit():
        raise ValueError(f"{what} {text!r}: {token!r} is not a whole number")
    value = int(token)
    if not low <= value <= high:
        raise ValueError(f"{what} {text!r}: {value} is outside {low}-{high}")
    return value


def _items(text: str, what: str, example: str) -> list[str]:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what}: empty; expected e.g. {example}")
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise ValueError(f"{what} {text!r}: an empty item between commas")
    return items


def parse_hours(text: str) -> frozenset[int]:
    """Hours of the day (0-23) selected by ``text`` such as ``"22-6"`` or ``"8-18,20"``.

    ``"a-b"`` is from ``a:00`` up to, not including, ``b:00``; ``a > b`` wraps past
    midnight (``"22-6"``: 22:00 to 05:59), ``b`` may be 24 (``"0-24"``: all day). A
    single number is that hour. ``"6-6"`` is refused as ambiguous.
    """
    hours: set[int] = set()
    for item in _items(text, "hours", "'22-6' or '8-18'"):
        if "-" not in item:
            hours.add(_integer(item, "hours", text, 0, 23))
            continue
        first, _, last = item.partition("-")
        a, b = _integer(first, "hours", text, 0, 23), _integer(last, "hours", text, 0, 24)
        if a == b:
            raise ValueError(f"hours {text!r}: {item!r} starts and ends at the same hour; "
                             "use '0-24' for the whole day")
        hours.update(range(a, b) if a < b else [*range(a, 24), *range(0, b)])
    return frozenset(hours)


def parse_weekdays(text: str) -> frozenset[int]:
    """ISO weekdays (Monday = 1 ... Sunday = 7) selected by ``"1-5"``, ``"1,2,5"``...

    Ranges include both ends; ``"6-1"`` wraps (Saturday, Sunday, Monday).
    """
    days: set[int] = set()
    for item in _items(text, "weekdays", "'1-5' or '1,2,5'"):
        if "-" not in item:
            days.add(_integer(item, "weekdays", text, 1, 7))
            continue
        first, _, last = item.partition("-")
        a, b = (_integer(first, "weekdays", text, 1, 7),
                _integer(last, "weekdays", text, 1, 7))
        days.update(range(a, b + 1) if a <= b else [*range(a, 8), *range(1, b + 1)])
    return frozenset(days)


def time_mask(instants: Instants, tz: str = "Asia/Shanghai", hours: str | None = None,
              weekdays: str | None = None) -> np.ndarray:
    """Which instants fall in the ``hours`` and on the ``weekdays`` (local time of ``tz``).

    ``None`` leaves that side unfiltered; missing times (NaT) are never selected.
    """
    local = _local(instants, tz)
    mask = np.asarray(local.notna())
    if hours is not None:
        mask &= np.isin(local.hour.to_numpy(), sorted(parse_hours(hours)))
    if weekdays is not None:
        mask &= np.isin(local.day_of_week.to_numpy() + 1, sorted(parse_weekdays(weekdays)))
    return mask
