from __future__ import annotations

import numpy as np
import pandas as pd

from tests.conftest import DAILY
from training.baselines import seasonal_naive
from training.calendar import target_calendar
from training.dataset import entity_rows, split_by_origin
from training.features import compute_features


def _one_series(small_sales: pd.DataFrame) -> pd.DataFrame:
    first = small_sales[["store_id", "sku_id"]].iloc[0]
    mask = (small_sales["store_id"] == first["store_id"]) & (small_sales["sku_id"] == first["sku_id"])
    return small_sales[mask].sort_values("date", ignore_index=True)


def test_lags_and_means_use_only_the_past(small_sales: pd.DataFrame) -> None:
    series = _one_series(small_sales)
    features = compute_features(series, DAILY)
    units = series["units_sold"].to_numpy()
    d = 60
    assert features.loc[d, "lag_1"] == units[d]
    assert features.loc[d, "lag_7"] == units[d - 6]
    assert features.loc[d, "lag_28"] == units[d - 27]
    assert np.isclose(features.loc[d, "mean_7"], units[d - 6 : d + 1].mean())


def test_future_sales_do_not_change_earlier_features(small_sales: pd.DataFrame) -> None:
    series = _one_series(small_sales)
    cut = series["date"].iloc[80]
    changed = series.copy()
    changed.loc[changed["date"] > cut, "units_sold"] *= 10
    before = compute_features(series, DAILY).query("event_timestamp <= @cut.tz_localize('UTC')")
    after = compute_features(changed, DAILY).query("event_timestamp <= @cut.tz_localize('UTC')")
    pd.testing.assert_frame_equal(before, after)


def test_labels_are_the_next_days(small_sales: pd.DataFrame) -> None:
    series = _one_series(small_sales)
    rows = entity_rows(series, 3, DAILY)
    origin = rows.iloc[0]
    position = series.index[series["date"] == origin["event_timestamp"].tz_localize(None)][0]
    assert [origin["y_1"], origin["y_2"], origin["y_3"]] == series["units_sold"].iloc[
        position + 1 : position + 4
    ].tolist()


def test_seasonal_naive_repeats_the_same_weekday(small_training_set: pd.DataFrame) -> None:
    naive = seasonal_naive(small_training_set, horizon=7, period=7)
    # Target d+h repeats day d+h-7: for h=1 that is lag_7, for h=7 it is lag_1.
    assert np.array_equal(naive[:, 0], small_training_set["lag_7"].to_numpy())
    assert np.array_equal(naive[:, 6], small_training_set["lag_1"].to_numpy())


def test_calendar_encodes_target_weekdays() -> None:
    origins = pd.Series(pd.to_datetime(["2024-01-07"], utc=True))  # a Sunday
    calendar = target_calendar(origins, horizon=2)
    assert calendar.shape == (1, 2, 7)
    assert calendar[0, 0].argmax() == 0 and calendar[0, 1].argmax() == 1  # Monday, Tuesday


def test_split_keeps_holdout_labels_apart(small_training_set: pd.DataFrame) -> None:
    fit, holdout = split_by_origin(small_training_set, horizon=7, holdout_origins=14)
    last_fit_label_day = fit["event_timestamp"].max() + pd.Timedelta(days=7)
    assert last_fit_label_day < holdout["event_timestamp"].min() + pd.Timedelta(days=1)
    assert holdout["event_timestamp"].nunique() == 14
