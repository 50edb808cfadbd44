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
_PANDAS_PERIOD = {"D": "D", "W": "W-SUN", "M": "M"}  # W-SUN: weeks that end on Sunday, start on Monday
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


def period_ordinals(dates, frequency: str) -> np.ndarray:
    """Consecutive integers for consecutive periods (day 0 is 1970-01-01, and so on)."""
    return _naive(dates).to_period(_PANDAS_PERIOD[check_frequency(frequency)]).asi8


def from_ordinals(ordinals, frequency: str) -> pd.DatetimeIndex:
    """The label (first day) of each period ordinal."""
    periods = pd.PeriodIndex.from_ordinals(np.asarray(ordinals, dtype="int64"), freq=_PANDAS_PERIOD[frequency])
    return periods.start_time.normalize()


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
