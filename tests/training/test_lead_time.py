"""Lead-time demand quantiles (training/lead_time.py) on demand whose distribution is known."""

from __future__ import annotations

import numpy as np
import pytest

from training.lead_time import (
    SERVICE_LEVELS,
    SPREADS,
    achieved_service,
    fit_table,
    lead_time_quantiles,
    safety_stock,
    textbook_quantiles,
)

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
