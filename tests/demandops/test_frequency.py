"""demandops.frequency computes periods with NumPy's calendar arithmetic: it must agree with pandas'
Period machinery, which it replaced for speed, on every kind of input the code passes it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demandops.frequency import (
    day_of_year,
    from_ordinals,
    month_index,
    period_ordinals,
    period_start_days,
    weekday,
)

PANDAS_PERIOD = {"D": "D", "W": "W-SUN", "M": "M"}
DATES = pd.date_range("1965-03-01", "2031-12-31", freq="37h")  # every weekday and month, hours too


@pytest.mark.parametrize("frequency", ["D", "W", "M"])
def test_ordinals_and_labels_agree_with_pandas_periods(frequency: str) -> None:
    expected = DATES.to_period(PANDAS_PERIOD[frequency])
    for given in (DATES, pd.Series(DATES.tz_localize("UTC")), list(DATES[:50]), DATES.to_numpy()):
        got = period_ordinals(given, frequency)
        np.testing.assert_array_equal(got, expected.asi8[: len(got)])
    labels = from_ordinals(expected.asi8, frequency)
    pd.testing.assert_index_equal(labels, pd.DatetimeIndex(expected.start_time.normalize()), check_names=False)


def test_a_zone_other_than_utc_keeps_its_wall_clock_day() -> None:
    late_evening = pd.Series(pd.to_datetime(["2024-03-10 23:30"]).tz_localize("America/New_York"))
    assert period_ordinals(late_evening, "D")[0] == pd.Period("2024-03-10", "D").ordinal


@pytest.mark.parametrize("frequency", ["D", "W", "M"])
def test_missing_dates_keep_pandas_missing_ordinal_and_label(frequency: str) -> None:
    dates = pd.Series([pd.Timestamp("2024-05-17"), pd.NaT])
    expected = pd.DatetimeIndex(dates).to_period(PANDAS_PERIOD[frequency]).asi8
    ordinals = period_ordinals(dates, frequency)
    np.testing.assert_array_equal(ordinals, expected)
    assert np.isnat(period_start_days(ordinals, frequency)[1])


def test_day_parts_agree_with_pandas() -> None:
    days = DATES.to_numpy().astype("datetime64[D]")
    np.testing.assert_array_equal(weekday(days), DATES.dayofweek)
    np.testing.assert_array_equal(month_index(days), DATES.month - 1)
    np.testing.assert_array_equal(day_of_year(days), DATES.dayofyear)
