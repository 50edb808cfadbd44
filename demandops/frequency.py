"""Sales frequencies: daily, weekly or monthly periods, each labelled by the day it starts.

A weekly period runs Monday to Sunday and is labelled by its Monday; a monthly period is
labelled by its first day. Every date in the data, partition names included, is such a label,
so "one period later" is well defined and lags count periods, not rows.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, get_args

import numpy as np
import pandas as pd

Frequency = Literal["D", "W", "M"]
FREQUENCIES: tuple[str, ...] = get_args(Frequency)
PERIOD_NAMES = {"D": "day", "W": "week", "M": "month"}
_LONGEST_PERIOD_DAYS = {"D": 1, "W": 7, "M": 31}
_DATE_OFFSET = {"D": "D", "W": "W-MON", "M": "MS"}  # the offset that steps from one period label to the next


def label_offset(frequency: str) -> str:
    """The pandas offset alias stepping from one period label to the next (for date_range, statsforecast)."""
    return _DATE_OFFSET[check_frequency(frequency)]


def check_frequency(frequency: str) -> Frequency:
    if frequency not in FREQUENCIES:
        raise ValueError(f"unknown frequency {frequency!r}; expected one of {list(FREQUENCIES)} (day, week, month)")
    return frequency  # type: ignore[return-value]


def _naive(dates) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(pd.to_datetime(dates))
    return index.tz_localize(None) if index.tz is not None else index


# Period ordinals are computed with NumPy's calendar arithmetic rather than pandas' Period machinery:
# serving converts a batch's dates several times per request, and pandas' fixed cost per call
# (0.2-0.7 ms) was most of the feature code's time at 64 rows. The two agree exactly
# (tests/demandops/test_frequency.py): ordinal 0 is the period holding 1970-01-01 for days and
# months; pandas' W-SUN weeks count from the one ending Sunday 1970-01-04 as 1.
_NAT = np.iinfo("int64").min  # what pandas gives a missing date's ordinal
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday is 0)


def _naive_days(dates) -> np.ndarray:
    """The dates' wall-clock days (time zone dropped) as datetime64[D]."""
    if isinstance(dates, np.ndarray) and np.issubdtype(dates.dtype, np.datetime64):
        return dates.astype("datetime64[D]")
    if isinstance(dates, pd.Series) and isinstance(dates.dtype, pd.DatetimeTZDtype) and str(dates.dt.tz) == "UTC":
        return dates.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")  # UTC's wall clock is the instant
    return _naive(dates).to_numpy().astype("datetime64[D]")


def period_ordinals(dates, frequency: str) -> np.ndarray:
    """Consecutive integers for consecutive periods (day 0 is 1970-01-01, and so on); missing dates
    get pandas' NaT ordinal."""
    days = _naive_days(dates)
    frequency = check_frequency(frequency)
    if frequency == "D":
        ordinals = days.astype("int64")
    elif frequency == "M":
        ordinals = days.astype("datetime64[M]").astype("int64")
    else:
        ordinals = (days.astype("int64") + _EPOCH_WEEKDAY) // 7 + 1
    return np.where(np.isnat(days), _NAT, ordinals)


def period_start_days(ordinals, frequency: str) -> np.ndarray:
    """The label (first day) of each period ordinal, as datetime64[D] (any shape)."""
    ordinals = np.asarray(ordinals, dtype="int64")
    frequency = check_frequency(frequency)
    if frequency == "D":
        return ordinals.astype("datetime64[D]")
    if frequency == "M":
        return ordinals.astype("datetime64[M]").astype("datetime64[D]")
    missing = ordinals == _NAT
    days = 7 * (np.where(missing, 0, ordinals) - 1) - _EPOCH_WEEKDAY
    return np.where(missing, np.datetime64("NaT", "D"), days.astype("datetime64[D]"))


def from_ordinals(ordinals, frequency: str) -> pd.DatetimeIndex:
    """The label (first day) of each period ordinal."""
    return pd.DatetimeIndex(period_start_days(np.ravel(ordinals), frequency).astype("datetime64[ns]"))


def weekday(days: np.ndarray) -> np.ndarray:
    """Monday 0 to Sunday 6, of datetime64[D] days."""
    return (days.astype("int64") + _EPOCH_WEEKDAY) % 7


def month_index(days: np.ndarray) -> np.ndarray:
    """January 0 to December 11, of datetime64[D] days."""
    return days.astype("datetime64[M]").astype("int64") % 12


def day_of_year(days: np.ndarray) -> np.ndarray:
    """1 to 366, of datetime64[D] days."""
    return (days - days.astype("datetime64[Y]").astype("datetime64[D]")).astype("int64") + 1


def period_start(dates, frequency: str) -> pd.DatetimeIndex:
    """The label of the period each date falls in."""
    return from_ordinals(period_ordinals(dates, frequency), frequency)


def shift_period(label, count: int, frequency: str) -> pd.Timestamp:
    """The label `count` periods after `label` (before it when count is negative)."""
    return from_ordinals(period_ordinals([label], frequency) + count, frequency)[0]


def periods_after(origin, count: int, frequency: str) -> pd.DatetimeIndex:
    """Labels of the `count` periods following the one labelled `origin`."""
    first = period_ordinals([origin], frequency)[0]
    return from_ordinals(first + np.arange(1, count + 1), frequency)


def longest_span(periods: int, frequency: str) -> timedelta:
    """A duration that always covers `periods` periods (months are taken as 31 days)."""
    return timedelta(days=periods * _LONGEST_PERIOD_DAYS[check_frequency(frequency)])
