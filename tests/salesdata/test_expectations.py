"""The row suite on its own: each expectation can fail, and names what it found."""

from __future__ import annotations

import pandas as pd

from salesdata.expectations import PARTITION_COLUMN, validate_sales

STORES, SKUS = ["S000", "S001", "S002"], [f"P{i:04d}" for i in range(6)]


def _day(small_sales: pd.DataFrame) -> pd.DataFrame:
    day = small_sales[small_sales["date"] == small_sales["date"].min()].copy()
    return day.assign(**{PARTITION_COLUMN: day["date"]})


def _validate(frame: pd.DataFrame):
    return validate_sales(frame, stores=STORES, skus=SKUS)


def test_clean_partition_passes(small_sales: pd.DataFrame) -> None:
    report = _validate(_day(small_sales))
    assert report.success and not report.failed and len(report.outcomes) >= 11


def test_negative_units_fail_and_are_named(small_sales: pd.DataFrame) -> None:
    day = _day(small_sales)
    day.iloc[2, day.columns.get_loc("units_sold")] = -3.0
    [failed] = _validate(day).failed
    assert failed.expectation == "expect_column_values_to_be_between"
    assert failed.column == "units_sold" and failed.sample == [-3.0]


def test_duplicate_rows_and_null_keys_fail(small_sales: pd.DataFrame) -> None:
    day = pd.concat([_day(small_sales), _day(small_sales).head(1)], ignore_index=True)
    day.loc[1, "store_id"] = None
    failed = {o.expectation for o in _validate(day).failed}
    assert {"expect_compound_columns_to_be_unique", "expect_column_values_to_not_be_null"} <= failed


def test_missing_column_fails_the_schema_expectation(small_sales: pd.DataFrame) -> None:
    failed = {o.expectation for o in _validate(_day(small_sales).drop(columns=["sku_id"])).failed}
    assert "expect_table_columns_to_match_set" in failed
