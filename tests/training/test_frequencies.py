"""Lags, labels, calendars and target dates count periods of the data's frequency."""

from __future__ import annotations

import numpy as np
import pandas as pd

from demandops.settings import Settings
from training.calendar import target_calendar, target_dates
from training.dataset import entity_rows
from training.features import FeatureSpec, compute_features


def monthly_series(skip: str | None = None) -> pd.DataFrame:
    dates = pd.date_range("2022-01-01", periods=20, freq="MS")
    frame = pd.DataFrame({"date": dates, "store_id": "S1", "sku_id": "A", "units_sold": np.arange(1.0, 21.0)})
    return frame[frame["date"] != pd.Timestamp(skip)] if skip else frame


def test_default_cadences_carry_the_lags_their_seasonal_baseline_reads() -> None:
    settings = Settings()
    monthly = FeatureSpec.for_cadence("M", settings.cadence("M"))
    assert {10, 11, 12} <= set(monthly.lags) and monthly.min_history == 12  # horizon 3, season 12
    weekly = FeatureSpec.for_cadence("W", settings.cadence("W"))
    assert set(range(45, 53)) <= set(weekly.lags)  # horizon 8, season 52
    daily = FeatureSpec.for_cadence("D", settings.cadence("D"))
    assert daily.lags == (1, 2, 3, 4, 5, 6, 7, 14, 28)  # the configured lags cover the daily baseline's


def test_monthly_lags_count_months_and_a_missing_month_sold_nothing() -> None:
    spec = FeatureSpec(frequency="M", lags=(1, 2, 3), windows=(3,))
    features = compute_features(monthly_series(skip="2022-06-01"), spec).set_index("event_timestamp")
    july = features.loc[pd.Timestamp("2022-07-01", tz="UTC")]
    assert (july["lag_1"], july["lag_2"], july["lag_3"]) == (7.0, 0.0, 5.0)
    assert july["mean_3"] == (7.0 + 0.0 + 5.0) / 3
    assert len(features) == 20, "the missing month is a row of the completed calendar"


def test_monthly_labels_are_the_next_months() -> None:
    spec = FeatureSpec(frequency="M", lags=(1,), windows=(3,))
    rows = entity_rows(monthly_series(), horizon=2, spec=spec).set_index("event_timestamp")
    assert list(rows.loc[pd.Timestamp("2022-03-01", tz="UTC"), ["y_1", "y_2"]]) == [4.0, 5.0]


def test_target_dates_and_calendars_follow_the_frequency() -> None:
    assert list(target_dates(pd.Timestamp("2024-11-01"), 3, "M").strftime("%Y-%m-%d")) == [
        "2024-12-01",
        "2025-01-01",
        "2025-02-01",
    ]
    assert list(target_dates(pd.Timestamp("2024-03-04"), 2, "W").strftime("%Y-%m-%d")) == ["2024-03-11", "2024-03-18"]
    months = target_calendar(pd.Series(pd.to_datetime(["2024-11-01"], utc=True)), 3, "M")
    assert months.shape == (1, 3, 12) and list(months[0].argmax(axis=1)) == [11, 0, 1]
