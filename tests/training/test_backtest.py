from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import poisson

from training.backtest import backtest_rows, backtest_table, headline, score, series_profile
from training.oracle import oracle_forecast
from training.windows import later_window_holdouts


def _holdout(origins: int, series: list[tuple[str, str]]) -> pd.DataFrame:
    stamps = pd.date_range("2024-03-01", periods=origins, freq="D", tz="UTC")
    rows = [(store, sku, t) for store, sku in series for t in stamps]
    frame = pd.DataFrame(rows, columns=["store_id", "sku_id", "event_timestamp"])
    frame["sku_category"] = frame["sku_id"].map({"P1": "snacks", "P2": "grocery"})
    return frame


def test_windows_count_back_from_the_latest_origin() -> None:
    holdout = _holdout(9, [("S1", "P1")])
    profile = pd.DataFrame({"store_id": ["S1"], "sku_id": ["P1"], "mover": ["fast"], "mase_scale": [1.0]})
    rows = backtest_rows(holdout, profile, horizon=3)
    assert rows["window"].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    # An incomplete block of origins is the oldest window, never the latest.
    rows = backtest_rows(_holdout(7, [("S1", "P1")]), profile, horizon=3)
    assert rows["window"].tolist() == [1, 2, 2, 2, 3, 3, 3]


@pytest.mark.parametrize("origins", [7, 9, 3, 2])
def test_each_later_window_model_holds_out_exactly_its_window_and_after(origins: int) -> None:
    """The refit backtest's models (training/windows.py) number their windows as the backtest does."""
    profile = pd.DataFrame({"store_id": ["S1"], "sku_id": ["P1"], "mover": ["fast"], "mase_scale": [1.0]})
    rows = backtest_rows(_holdout(origins, [("S1", "P1")]), profile, horizon=3)
    holdouts = later_window_holdouts(origins, horizon=3)
    assert sorted(holdouts) == sorted(set(rows["window"]) - {1})
    for window, held in holdouts.items():
        assert (rows["window"] >= window).sum() == held


def test_series_profile_classifies_movers_and_scales_mase_by_in_sample_naive() -> None:
    fit = pd.DataFrame(
        {
            "store_id": ["S1"] * 4 + ["S2"] * 4,
            "sku_id": ["P1"] * 8,
            "y_1": [4.0, 6.0, 5.0, 5.0, 0.0, 0.0, 3.0, 0.0],
            "lag_7": [5.0, 5.0, 5.0, 5.0, 1.0, 0.0, 0.0, 0.0],
        }
    )
    profile = series_profile(fit, period=7).set_index("store_id")
    assert profile.loc["S1", "mover"] == "fast" and profile.loc["S2", "mover"] == "intermittent"
    assert profile.loc["S1", "mase_scale"] == pytest.approx(0.5)  # mean |y_1 - lag_7| = (1+1+0+0)/4
    assert profile.loc["S2", "mase_scale"] == pytest.approx(1.0)


def test_score_of_a_perfect_and_of_a_point_forecast() -> None:
    actual = np.array([[2.0, 4.0], [0.0, 2.0]])
    perfect = np.stack([actual - 1, actual, actual + 1], axis=-1)
    metrics = score(actual, perfect, mase_scale=np.array([1.0, 2.0]))
    assert metrics["wape"] == 0 and metrics["mase"] == 0 and metrics["bias"] == 0
    assert metrics["coverage_p10_p90"] == 1.0
    point = score(actual, actual + 1.0, mase_scale=np.array([1.0, 2.0]))
    assert point["wape"] == pytest.approx(4 / 8)
    assert point["mase"] == pytest.approx((1 + 1 + 0.5 + 0.5) / 4)
    assert np.isnan(point["pinball_p50"]) and np.isnan(point["coverage_p10_p90"])


def test_table_reports_every_segment_and_headline_ratios() -> None:
    holdout = _holdout(4, [("S1", "P1"), ("S1", "P2")])
    profile = pd.DataFrame(
        {"store_id": ["S1", "S1"], "sku_id": ["P1", "P2"], "mover": ["fast", "intermittent"], "mase_scale": [1.0, 1.0]}
    )
    rows = backtest_rows(holdout, profile, horizon=2)
    actual = np.full((len(rows), 2), 2.0)
    model = np.stack([actual - 1, actual + 0.5, actual + 1], axis=-1)
    table = backtest_table(rows, actual, {"model": model, "seasonal_naive": actual + 1.0})
    segments = set(zip(table["segment_kind"], table["segment"], strict=True))
    assert segments == {
        ("all", "all"), ("window", "1"), ("window", "2"), ("category", "grocery"), ("category", "snacks"),
        ("mover", "fast"), ("mover", "intermittent"),
    }  # fmt: skip
    metrics = headline(table)
    assert metrics["wape"] == pytest.approx(0.25) and metrics["seasonal_naive_wape"] == pytest.approx(0.5)
    assert metrics["wape_ratio_to_seasonal_naive"] == pytest.approx(0.5)
    assert metrics["latest_window_wape"] == pytest.approx(0.25)


def test_origins_with_an_empty_shelf_are_a_segment_where_the_data_records_stock() -> None:
    holdout = _holdout(2, [("S1", "P1")]).assign(stock_left=[0.0, 3.0])
    profile = pd.DataFrame({"store_id": ["S1"], "sku_id": ["P1"], "mover": ["fast"], "mase_scale": [1.0]})
    rows = backtest_rows(holdout, profile, horizon=1)
    assert rows["shelf"].tolist() == ["empty", "stocked"]
    table = backtest_table(rows, np.array([[0.0], [2.0]]), {"seasonal_naive": np.array([[2.0], [2.0]])})
    empty = table[(table["segment_kind"] == "shelf") & (table["segment"] == "empty")]
    assert empty["rows"].tolist() == [1] and np.isnan(empty["wape"].iloc[0])  # nothing sold: WAPE undefined
    assert "shelf" not in backtest_rows(holdout.drop(columns="stock_left"), profile, horizon=1)


def test_oracle_quantiles_are_poisson_quantiles_of_the_expected_demand() -> None:
    holdout = _holdout(1, [("S1", "P1")])
    oracle = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-03-02", "2024-03-04"]),
            "store_id": ["S1", "S1"],
            "sku_id": ["P1", "P1"],
            "expected_units": [3.2, 10.0],
        }
    )
    forecast = oracle_forecast(holdout, oracle, horizon=3)
    assert forecast.shape == (1, 3, 3)
    np.testing.assert_array_equal(forecast[0, 0], poisson.ppf([0.1, 0.5, 0.9], 3.2))
    np.testing.assert_array_equal(forecast[0, 1], [0, 0, 0])  # no oracle row: the store was closed
    np.testing.assert_array_equal(forecast[0, 2], poisson.ppf([0.1, 0.5, 0.9], 10.0))
