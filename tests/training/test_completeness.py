"""Null shares of a training set against the bound; features the data cannot have are not judged."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.conftest import DAILY
from training.completeness import null_report


def test_a_feature_over_the_bound_is_a_violation_and_others_are_not(small_training_set: pd.DataFrame) -> None:
    frame = small_training_set.copy()
    frame.loc[frame.index[:10], "lag_7"] = np.nan  # a join that lost some values
    report = null_report(frame, DAILY, data_columns={"price"}, bound=5 / len(frame))
    assert report.violations == {"lag_7": 10 / len(frame)}
    assert null_report(frame, DAILY, data_columns={"price"}, bound=0.5).violations == {}


def test_price_features_are_not_judged_when_the_data_has_no_prices(small_training_set: pd.DataFrame) -> None:
    frame = small_training_set.assign(price=np.nan, price_ratio_28=np.nan)
    report = null_report(frame, DAILY, data_columns={"date", "store_id", "sku_id", "units_sold"}, bound=0.0)
    assert report.shares["price"] == 1.0 and report.violations == {}
    assert null_report(frame, DAILY, data_columns={"price"}, bound=0.0).violations.keys() == {"price", "price_ratio_28"}


def test_stock_features_are_judged_only_when_the_data_has_stock(small_training_set: pd.DataFrame) -> None:
    frame = small_training_set.assign(stock_left=np.nan, sold_out_share_28=np.nan)
    assert null_report(frame, DAILY, data_columns={"price"}, bound=0.0).violations == {}
    judged = null_report(frame, DAILY, data_columns={"price", "stock_on_hand"}, bound=0.0)
    assert judged.violations.keys() == {"stock_left", "sold_out_share_28"}
