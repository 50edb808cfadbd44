"""Lead-time tables refitted on the latest scored rows (training/recalibration.py)."""

from __future__ import annotations

import numpy as np
import pytest

from training.lead_time import SERVICE_LEVELS, achieved_service, calibrated_quantiles, calibration
from training.recalibration import known_lead_time_demand, recalibrated_service, refit_tables, rolling_quantiles

H = 14
ALPHA = SERVICE_LEVELS.index(0.9)


def _days(series: int, origins: np.ndarray, bias, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One row per series and origin: forecasts (rows, H, 3) around a level, and actuals whose level
    is the forecast's times bias(origin + step), so that a bias growing over time reads as a forecast
    falling behind demand."""
    rng = np.random.default_rng(seed)
    level = np.tile(rng.gamma(2.0, 8.0, size=series), len(origins))
    at = np.repeat(origins, series)
    median = np.repeat(level[:, None], H, axis=1)
    sd = np.sqrt(median)
    forecast = np.stack([median - 1.2816 * sd, median, median + 1.2816 * sd], axis=-1)
    truth = median * bias(at[:, None] + np.arange(1, H + 1)[None, :])
    actual = rng.poisson(np.maximum(truth, 0.0)).astype("float64")
    return forecast, actual, at


def test_a_lead_time_counts_once_it_has_ended_and_while_it_ended_within_the_window() -> None:
    actual = np.ones((2, 3))
    demand = known_lead_time_demand(actual, np.array([10, 12]), at=13, window=2)
    # Origin 10: L = 1, 2, 3 end on days 11, 12, 13; the window holds days 12 and 13.
    # Origin 12: L = 1 ends on day 13; L = 2 and 3 end after day 13, not seen yet.
    np.testing.assert_array_equal(demand, [[np.nan, 2.0, 3.0], [1.0, np.nan, np.nan]])


def test_refitted_tables_follow_a_forecast_that_fell_behind_and_keep_thin_columns() -> None:
    forecast, actual, at = _days(300, np.arange(28), lambda day: np.ones_like(day, dtype="float64"), seed=0)
    kept = calibration(forecast, actual)
    late_forecast, late_actual, late_at = _days(300, np.arange(28, 56), lambda day: np.full(day.shape, 1.3), seed=1)
    demand = known_lead_time_demand(late_actual, late_at, at=56, window=28)
    # A stratum holds a third of the 300 series; in the window, 28 of its origins have their L = 1
    # demand seen and 15 their L = 14 demand: a threshold between (2,800 and 1,500 rows) keeps the
    # bundle's column at L = 14 and refits the column at L = 1.
    least = 2_000
    refit = refit_tables(late_forecast, demand, kept, least=least)
    for stratum, (old, new) in enumerate(zip(kept["tables"], refit["tables"], strict=True)):
        counts = refit["refitted"][stratum]
        assert counts[0] >= least and counts[H - 1] == 0, counts
        assert new[H - 1] == old[H - 1]
        assert new[0][ALPHA] > old[0][ALPHA], "demand 30% above the forecast needs a higher 0.9 quantile"
    assert kept["tables"] != refit["tables"] and "refitted" not in kept, "the bundle's calibration is not changed"


def test_rolling_tables_keep_the_promise_where_a_growing_bias_breaks_the_bundles() -> None:
    def bias(day):
        return np.where(day <= 28, 1.0, 1.0 + 0.01 * (day - 28))  # demand outgrows the forecast by 1% a day

    val_forecast, val_actual, val_at = _days(300, np.arange(28 - H), bias, seed=2)
    kept = calibration(val_forecast, val_actual)
    forecast, actual, at = _days(300, np.arange(28, 70), bias, seed=3)
    static = achieved_service(actual, calibrated_quantiles(forecast, kept))[H - 1, ALPHA]
    rolling = rolling_quantiles(forecast, actual, at, kept, 28, history=(val_forecast, val_actual, val_at))
    adapted = achieved_service(actual, rolling)[H - 1, ALPHA]
    assert static < 0.8 and adapted > static + 0.05, (static, adapted)
    # The backtest's metric is the same measure, the pool being the backtest's own rows.
    metrics, curves = recalibrated_service(forecast, actual, at, kept, 28)
    fresh = achieved_service(actual, rolling_quantiles(forecast, actual, at, kept, 28))
    assert metrics["lead_time_recalibrated_service_L14_p90"] == pytest.approx(fresh[H - 1, ALPHA])
    assert curves["14"] == pytest.approx(fresh[H - 1].round(4).tolist())


def test_a_calibration_without_strata_is_refused_by_name() -> None:
    forecast, actual, _ = _days(50, np.arange(3), np.ones_like, seed=4)
    with pytest.raises(ValueError, match="no volume strata"):
        refit_tables(forecast, actual, {"levels": list(SERVICE_LEVELS), "spread": "sum", "table": [[0.0]]})
