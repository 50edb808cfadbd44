"""Lead-time demand quantiles (training/lead_time.py) on demand whose distribution is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DAILY
from training.bundle import ForecasterBundle
from training.dataset import split_by_origin
from training.lead_time import (
    SERVICE_LEVELS,
    SPREADS,
    achieved_service,
    backtest_service,
    calibration,
    fit_table,
    lead_time_quantiles,
    one_step_sigma,
    safety_stock,
    textbook_quantiles,
)
from training.train import TrainConfig, train_forecaster

H = 14


def _world(rows: int, seed: int, shared: float) -> tuple[np.ndarray, np.ndarray]:
    """Quantile forecasts (rows, H, 3) and Poisson-like integer actuals around them; `shared` is the
    share of each row's error that every step has in common (a level the forecast has wrong)."""
    rng = np.random.default_rng(seed)
    level = rng.gamma(2.0, 5.0, size=rows)
    median = np.repeat(level[:, None], H, axis=1)
    sd = np.sqrt(median)
    forecast = np.stack([median - 1.2816 * sd, median, median + 1.2816 * sd], axis=-1)
    common = rng.standard_normal((rows, 1))
    own = rng.standard_normal((rows, H))
    noise = np.sqrt(shared) * common + np.sqrt(1 - shared) * own
    actual = np.maximum(np.round(median + sd * noise), 0)
    return forecast, actual


@pytest.mark.parametrize("spread", SPREADS)
def test_quantiles_never_cross_in_the_level_or_the_lead_time_and_are_never_negative(spread: str) -> None:
    forecast, actual = _world(2_000, 0, 0.3)
    forecast[:100] = 0.0  # series forecast at zero, with bands of no width
    table = fit_table(forecast, actual, spread=spread)
    assert np.isfinite(table).all() and table.shape == (H, len(SERVICE_LEVELS))
    quantiles = lead_time_quantiles(forecast, table, spread=spread)
    assert (quantiles >= 0).all()
    assert (np.diff(quantiles, axis=1) >= 0).all() and (np.diff(quantiles, axis=2) >= 0).all()


@pytest.mark.parametrize("shared", [0.0, 0.5])
def test_the_calibrated_layer_achieves_its_targets_where_summed_p90s_do_not(shared: float) -> None:
    val_forecast, val_actual = _world(20_000, 1, shared)
    forecast, actual = _world(20_000, 2, shared)
    table = fit_table(val_forecast, val_actual, spread="sum")
    achieved = achieved_service(actual, lead_time_quantiles(forecast, table, spread="sum"))
    for alpha in (0.9, 0.95, 0.98):
        column = SERVICE_LEVELS.index(alpha)
        for lead in (1, 7, 14):
            assert abs(achieved[lead - 1, column] - alpha) <= 0.02, (alpha, lead, achieved[lead - 1, column])
    summed_p90 = np.cumsum(forecast[..., 2], axis=1)[:, -1]
    over_two_weeks = (actual.sum(axis=1) <= np.floor(summed_p90)).mean()
    assert over_two_weeks > 0.95, "the p90s of independent days add up to far more than two weeks' p90"


def test_the_textbook_formula_under_covers_when_the_days_errors_move_together() -> None:
    val_forecast, val_actual = _world(20_000, 3, 0.5)
    forecast, actual = _world(20_000, 4, 0.5)
    sigma = np.sqrt(forecast[:, 0, 1])  # the true one-step standard deviation
    textbook = achieved_service(actual, textbook_quantiles(forecast, sigma))
    layer = lead_time_quantiles(forecast, fit_table(val_forecast, val_actual, spread="sum"), spread="sum")
    column = SERVICE_LEVELS.index(0.95)
    assert textbook[H - 1, column] < 0.9 <= 0.93 <= achieved_service(actual, layer)[H - 1, column]


def test_safety_stock_is_the_reorder_point_in_whole_units_less_the_cumulative_median() -> None:
    forecast = np.zeros((1, 2, 3))
    forecast[0, :, 1] = [1.0, 2.0]
    quantiles = np.array([[[1.8], [3.0]]])  # (rows, H, levels): 1.8 covers the demands 1 covers
    np.testing.assert_allclose(safety_stock(forecast, quantiles), [[0.0], [0.0]])


def test_an_empty_calibration_window_is_refused() -> None:
    with pytest.raises(ValueError, match="no rows to calibrate"):
        fit_table(np.zeros((0, H, 3)), np.zeros((0, H)), spread="sum")


def test_a_trained_bundle_keeps_its_lead_time_calibration_and_serves_quantiles_from_it(
    small_training_set: pd.DataFrame, tmp_path: Path
) -> None:
    fit, backtest = split_by_origin(small_training_set, horizon=7, holdout_origins=14)
    config = TrainConfig(horizon=7, epochs=2, validation_origins=14, seed=3)
    bundle = train_forecaster(fit, config, feature_service="s", dataset_version="v", spec=DAILY).bundle
    calibration = bundle.meta.lead_time
    assert calibration["levels"] == list(SERVICE_LEVELS) and len(calibration["table"]) == 7
    loaded = ForecasterBundle.load(bundle.save(tmp_path / "bundle"))
    forecast, quantiles = loaded.lead_time_quantiles(backtest)
    assert quantiles.shape == (len(backtest), 7, len(SERVICE_LEVELS))
    assert (np.diff(quantiles, axis=1) >= 0).all() and (np.diff(quantiles, axis=2) >= 0).all()
    np.testing.assert_allclose(forecast, bundle.predict(backtest), rtol=1e-6)

    loaded.meta.lead_time = {}  # a model trained before lead-time quantiles were calibrated
    with pytest.raises(ValueError, match="trained before lead-time quantiles were calibrated: retrain"):
        loaded.lead_time_quantiles(backtest)


def test_one_step_sigma_is_each_series_own_and_the_pooled_one_for_a_single_row() -> None:
    forecast = np.zeros((5, 1, 3))
    actual = np.array([[1.0], [3.0], [10.0], [14.0], [7.0]])
    sigma = one_step_sigma(forecast, actual, np.array([0, 0, 1, 1, 2]))
    np.testing.assert_allclose(sigma, [np.sqrt(2), np.sqrt(2), np.sqrt(8), np.sqrt(8), np.std(actual, ddof=1)])


def test_the_backtest_reports_achieved_service_and_stock_of_both_methods() -> None:
    val_forecast, val_actual = _world(20_000, 5, 0.5)
    forecast, actual = _world(20_000, 6, 0.5)
    series = np.arange(len(forecast)) // 20  # 1,000 series of 20 origins
    metrics, curves = backtest_service(forecast, actual, series, calibration(val_forecast, val_actual))
    assert abs(metrics["lead_time_service_L14_p95"] - 0.95) <= 0.02
    assert metrics["textbook_service_L14_p95"] < 0.9, "the textbook misses when the days' errors move together"
    assert metrics["textbook_safety_stock_L14_p95"] < metrics["lead_time_safety_stock_L14_p95"]
    assert sorted(curves) == ["lead_time", "textbook"] and sorted(curves["lead_time"], key=int) == ["1", "7", "14"]
    assert len(curves["lead_time"]["7"]) == len(SERVICE_LEVELS)
