"""Features of new periods from a bounded slice of history equal a full recomputation (to float rounding)."""

from __future__ import annotations

import pandas as pd
import pytest

from demandops.frequency import shift_period
from tests.conftest import DAILY
from training.features import FeatureSpec, compute_features, first_seen


def slice_features(sales: pd.DataFrame, spec: FeatureSpec, since: pd.Timestamp, until: pd.Timestamp) -> pd.DataFrame:
    """Features of since..until computed the way sales_features does: lookback slice plus first-seen table."""
    start = shift_period(since, -spec.lookback, spec.frequency)
    window = sales[(sales["date"] >= start) & (sales["date"] <= until)]
    seen = first_seen(sales[sales["date"] < since])
    return compute_features(window, spec, first_seen=seen, since=since)


def rows_between(features: pd.DataFrame, since: pd.Timestamp, until: pd.Timestamp) -> pd.DataFrame:
    stamps = features["event_timestamp"].dt.tz_localize(None)
    return features[(stamps >= since) & (stamps <= until)].sort_values(["event_timestamp", "store_id", "sku_id"])


@pytest.mark.parametrize("offset", [60, 120, -1])
def test_one_new_day_from_its_lookback_equals_the_full_recomputation(small_sales: pd.DataFrame, offset: int) -> None:
    days = sorted(small_sales["date"].unique())
    day = pd.Timestamp(days[offset])
    sales = small_sales[small_sales["date"] <= day]
    full = rows_between(compute_features(sales, DAILY), day, day)
    incremental = rows_between(slice_features(sales, DAILY, day, day), day, day)
    assert len(full) > 0
    pd.testing.assert_frame_equal(incremental.reset_index(drop=True), full.reset_index(drop=True))


def test_a_range_in_the_middle_equals_the_full_recomputation(small_sales: pd.DataFrame) -> None:
    days = sorted(small_sales["date"].unique())
    since, until = pd.Timestamp(days[40]), pd.Timestamp(days[90])
    full = rows_between(compute_features(small_sales, DAILY), since, until)
    incremental = rows_between(slice_features(small_sales, DAILY, since, until), since, until)
    pd.testing.assert_frame_equal(incremental.reset_index(drop=True), full.reset_index(drop=True))


def test_without_first_seen_a_slice_gets_old_series_wrong(small_sales: pd.DataFrame) -> None:
    """The first-seen table matters: a series whose store was closed at the slice start would lose history."""
    days = sorted(small_sales["date"].unique())
    since = pd.Timestamp(days[120])
    start = shift_period(since, -DAILY.lookback, "D")
    window = small_sales[small_sales["date"] >= start].copy()
    window = window[~((window["store_id"] == "S000") & (window["date"] < start + pd.Timedelta(days=10)))]
    with_table = compute_features(window, DAILY, first_seen=first_seen(small_sales[small_sales["date"] < since]))
    without = compute_features(window, DAILY)
    store = (with_table["store_id"] == "S000") & (with_table["event_timestamp"] == since.tz_localize("UTC"))
    assert with_table.loc[store, "lag_28"].notna().all()
    assert (
        without.loc[
            (without["store_id"] == "S000") & (without["event_timestamp"] == since.tz_localize("UTC")), "lag_28"
        ]
        .isna()
        .all()
    )
