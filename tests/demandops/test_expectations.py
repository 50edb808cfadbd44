from __future__ import annotations

import pandas as pd

from demandops.expectations import validate_sales


def _day(small_sales: pd.DataFrame) -> pd.DataFrame:
    return small_sales[small_sales["date"] == small_sales["date"].min()].copy()


def test_clean_partition_passes(small_sales: pd.DataFrame) -> None:
    report = validate_sales(_day(small_sales))
    assert report.success and not report.failed


def test_negative_units_fail_and_are_named(small_sales: pd.DataFrame) -> None:
    day = _day(small_sales)
    day.iloc[2, day.columns.get_loc("units_sold")] = -3.0
    report = validate_sales(day)
    assert not report.success
    [failed] = report.failed
    assert failed.expectation == "expect_column_values_to_be_between"
    assert failed.column == "units_sold" and failed.sample == [-3.0]


def test_duplicate_rows_and_null_keys_fail(small_sales: pd.DataFrame) -> None:
    day = _day(small_sales)
    day = pd.concat([day, day.head(1)], ignore_index=True)
    day.loc[1, "store_id"] = None
    failed = {o.expectation for o in validate_sales(day).failed}
    assert {"expect_compound_columns_to_be_unique", "expect_column_values_to_not_be_null"} <= failed


def test_missing_column_fails_the_schema_expectation(small_sales: pd.DataFrame) -> None:
    failed = {o.expectation for o in validate_sales(_day(small_sales).drop(columns=["sku_id"])).failed}
    assert "expect_table_columns_to_match_set" in failed
