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
    MIN_STRATUM_ROWS,
    SERVICE_LEVELS,
    SPREADS,
    achieved_service,
    backtest_service,
    calibrated_quantiles,
    calibration,
    fit_table,
    lead_time_quantiles,
    one_step_sigma,
    safety_stock,
    stratum_of,
    textbook_quantiles,
    volume_edges,
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


def _slow_and_fast(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Half slow movers (Poisson demand of 0.4 a day, a p50 of 0 and a p90 of 1, as a network's
    bands of such a series read) and half fast movers whose days' errors move together."""
    rng = np.random.default_rng(seed)
    slow_forecast = np.broadcast_to(np.array([0.0, 0.0, 1.0]), (rows // 2, H, 3)).copy()
    slow_actual = rng.poisson(0.4, size=(rows // 2, H)).astype("float64")
    fast_forecast, fast_actual = _world(rows - rows // 2, seed, 0.5)
    return np.concatenate([slow_forecast, fast_forecast]), np.concatenate([slow_actual, fast_actual])


def test_each_volume_stratum_gets_its_own_table_and_so_the_promised_service() -> None:
    val_forecast, val_actual = _slow_and_fast(20_000, 7)
    forecast, actual = _slow_and_fast(20_000, 8)
    kept = calibration(val_forecast, val_actual)
    assert len(kept["tables"]) == len(kept["volume_edges"]) + 1 == 3
    column, slow = SERVICE_LEVELS.index(0.95), np.arange(len(forecast)) < len(forecast) // 2
    stratified = achieved_service(actual, calibrated_quantiles(forecast, kept))[H - 1, column]
    by_kind = {
        name: [achieved_service(actual[rows], quantiles[rows])[H - 1, column] for rows in (slow, ~slow)]
        for name, quantiles in (
            ("pooled", lead_time_quantiles(forecast, np.asarray(kept["table"]), spread=kept["spread"])),
            ("strata", calibrated_quantiles(forecast, kept)),
        )
    }
    assert abs(stratified - 0.95) <= 0.02
    # Two weeks of slow-mover demand is a handful of whole units: the first reorder point at or above
    # the 0.95 quantile covers 0.97 of them, the nearest a whole number of units can come.
    assert all(abs(share - 0.95) <= 0.025 for share in by_kind["strata"]), by_kind
    slow_share, fast_share = by_kind["pooled"]
    assert slow_share < 0.9 and fast_share > 0.98, f"one table fits neither kind: {by_kind}"


def test_volume_strata_hold_enough_rows_even_where_many_rows_tie_at_zero() -> None:
    volume = np.concatenate([np.zeros(700), np.arange(1.0, 301.0)])
    edges = volume_edges(volume)
    counts = np.bincount(np.searchsorted(edges, volume, side="left"))
    assert len(edges) == 1 and counts.min() >= MIN_STRATUM_ROWS, (edges, counts)
    assert len(volume_edges(np.arange(MIN_STRATUM_ROWS * 2 - 1.0))) == 0, "too few rows for two strata"


def test_a_calibration_from_before_strata_serves_its_one_table() -> None:
    val_forecast, val_actual = _world(2_000, 9, 0.3)
    forecast, _ = _world(500, 10, 0.3)
    kept = calibration(val_forecast, val_actual)
    before = {key: kept[key] for key in ("levels", "spread", "table")}
    np.testing.assert_array_equal(
        calibrated_quantiles(forecast, before), lead_time_quantiles(forecast, np.asarray(kept["table"]), spread="sum")
    )
    assert set(stratum_of(forecast, kept["volume_edges"])) == {0, 1, 2}


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
    assert len(calibration["tables"]) == len(calibration["volume_edges"]) + 1
    assert all(len(table) == 7 for table in calibration["tables"])
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


def test_the_backtest_reports_the_service_each_volume_third_gets() -> None:
    val_forecast, val_actual = _slow_and_fast(20_000, 11)
    forecast, actual = _slow_and_fast(9_000, 12)
    series = np.arange(len(forecast)) // 20
    kept = calibration(val_forecast, val_actual)
    metrics, _ = backtest_service(forecast, actual, series, kept)
    # Every slow row is forecast at a volume of 0, and ties go to the lower third: the "slow third" is
    # the slow half, and the fast half is split between the other two.
    for third in ("slow", "medium", "fast"):
        assert abs(metrics[f"lead_time_service_L14_p95_{third}"] - 0.95) <= 0.03, (third, metrics)
    pooled = {key: kept[key] for key in ("levels", "spread", "table")}
    before, _ = backtest_service(forecast, actual, series, pooled)
    assert before["lead_time_service_L14_p95_slow"] < 0.9 < 0.98 < before["lead_time_service_L14_p95_fast"]


def test_demand_with_fractions_gets_reorder_points_rounded_up_and_keeps_the_promise() -> None:
    val_forecast, val_actual = _world(20_000, 7, 0.3)
    forecast, actual = _world(20_000, 8, 0.3)
    # Tenths of the simulated units, as M1's series are not unit counts.
    val_forecast, val_actual, forecast, actual = val_forecast / 10, val_actual / 10, forecast / 10, actual / 10
    kept = calibration(val_forecast, val_actual)
    assert kept["whole_demand"] is False and calibration(val_forecast * 10, val_actual * 10)["whole_demand"] is True
    quantiles = calibrated_quantiles(forecast, kept)
    column = SERVICE_LEVELS.index(0.9)
    rounded_up = achieved_service(actual, quantiles, whole=False)[:, column]
    rounded_down = achieved_service(actual, quantiles, whole=True)[:, column]
    assert (rounded_up >= 0.89).all() and rounded_down[0] < 0.8, (rounded_up, rounded_down)
    metrics, _ = backtest_service(forecast, actual, np.arange(len(forecast)) // 20, kept)
    assert metrics["lead_time_service_L1_p90"] == pytest.approx(rounded_up[0])
