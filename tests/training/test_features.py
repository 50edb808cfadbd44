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


def test_stock_left_is_the_opening_stock_less_sales_and_sold_out_periods_are_counted() -> None:
    days = pd.date_range("2024-01-01", periods=30, freq="D")
    opening = np.full(30, 5.0)
    sold = np.full(30, 2.0)
    sold[20:] = 5.0  # the shelf runs empty on each of the last 10 days: censored sales
    series = pd.DataFrame(
        {"date": days, "store_id": "S1", "sku_id": "P1", "units_sold": sold, "stock_on_hand": opening}
    ).drop(index=25)  # the store was closed on day 25: no row, the shelf keeps what it had
    features = compute_features(series, DAILY).set_index("event_timestamp")
    day = lambda n: days[n].tz_localize("UTC")  # noqa: E731
    assert features.loc[day(10), "stock_left"] == 3.0
    assert features.loc[day(24), "stock_left"] == 0.0
    assert features.loc[day(25), "stock_left"] == 0.0
    assert np.isnan(features.loc[day(26), "sold_out_share_28"])  # 28 periods not yet seen
    assert features.loc[day(29), "sold_out_share_28"] == 10 / 28
    without_stock = compute_features(series.drop(columns="stock_on_hand"), DAILY)
    assert without_stock["stock_left"].isna().all()


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
