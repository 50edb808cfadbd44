"""Lead-time tables refitted on the latest scored rows (training/recalibration.py)."""

from __future__ import annotations

import numpy as np
import pytest

from training.lead_time import SERVICE_LEVELS, achieved_service, calibrated_quantiles, calibration
from training.recalibration import (
    known_lead_time_demand,
    reached_levels,
    recalibrate_levels,
    recalibrated_service,
    refit_tables,
    rolling_quantiles,
)

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


def test_the_level_reached_reads_between_levels_and_takes_the_first_of_tied_quantiles() -> None:
    levels = np.array([0.1, 0.5, 0.9])
    table = np.array([0.0, 0.0, 2.0])  # a slow mover's column: the 0.1 and 0.5 quantiles tie at 0
    errors = np.array([-1.0, 0.0, 1.0, 2.0, 3.0, np.nan])
    reached = reached_levels(errors, table, levels)
    np.testing.assert_allclose(reached, [0.0, 0.0, 0.7, 0.9, 1.0, np.nan])


def test_levels_are_recalibrated_on_what_the_served_tables_covered() -> None:
    """A table fitted on errors of spread 1, served where they have spread 1.5: its 0.9 entry covers
    0.8 of them; read at the level those rows needed, it covers 0.9 of the next ones."""
    rng = np.random.default_rng(5)
    levels = np.asarray(SERVICE_LEVELS)
    fitted = np.quantile(rng.normal(0.0, 1.0, 20_000), levels)
    kept = {"levels": list(levels), "tables": [[fitted.tolist()]]}
    served_on = rng.normal(0.0, 1.5, (3_000, 1))
    reached = reached_levels(served_on[:, 0], fitted, levels)[:, None]
    assert np.mean(served_on[:, 0] <= fitted[ALPHA]) == pytest.approx(0.8, abs=0.03)
    table = np.asarray(recalibrate_levels(kept, reached, np.zeros(3_000, "int64"))["tables"][0][0])
    assert np.mean(rng.normal(0.0, 1.5, 20_000) <= table[ALPHA]) == pytest.approx(0.9, abs=0.02)
    thin = recalibrate_levels(kept, reached[:200], np.zeros(200, "int64"))  # fewer rows than a stratum needs
    np.testing.assert_allclose(thin["tables"], kept["tables"], atol=1e-6)


def test_a_record_that_kept_more_than_promised_leaves_the_tables_as_refitted() -> None:
    """Served where errors have spread 0.5, the table over-covers: the refit, not the record, brings it
    down (the record of tables the refit has replaced would read it too low)."""
    rng = np.random.default_rng(6)
    levels = np.asarray(SERVICE_LEVELS)
    fitted = np.quantile(rng.normal(0.0, 1.0, 20_000), levels)
    kept = {"levels": list(levels), "tables": [[fitted.tolist()]]}
    reached = reached_levels(rng.normal(0.0, 0.5, 3_000), fitted, levels)[:, None]
    assert np.mean(reached[:, 0] <= 0.9) > 0.99
    read = np.asarray(recalibrate_levels(kept, reached, np.zeros(3_000, "int64"))["tables"][0][0])
    promised = levels >= 0.5  # the levels a reorder point is asked at (the lower ones give stockout probabilities)
    np.testing.assert_allclose(read[promised], fitted[promised], atol=1e-6)
    assert np.all(read >= fitted - 1e-6), "no quantile is read lower than refitted"


def test_served_levels_make_up_what_a_refit_on_one_window_misses_on_the_next() -> None:
    """Demand outgrows the forecast by a tenth of a percent a day: a table refitted on the last 28 days
    lags behind it, by more the longer the lead time; the served record asks for the level that covers it."""

    def bias(day):
        return 1.0 + 0.001 * day

    val_forecast, val_actual, _ = _days(300, np.arange(28 - H), bias, seed=7)
    kept = calibration(val_forecast, val_actual)
    forecast, actual, at = _days(300, np.arange(28, 120), bias, seed=8)
    refit_only = np.empty((*forecast.shape[:2], len(SERVICE_LEVELS)))
    for day in np.unique(at):
        near = (at > day - 28 - H) & (at < day)
        demand = known_lead_time_demand(actual[near], at[near], int(day), 28)
        refit_only[at == day] = calibrated_quantiles(forecast[at == day], refit_tables(forecast[near], demand, kept))
    refitted = achieved_service(actual, refit_only)[H - 1, ALPHA]
    served = achieved_service(actual, rolling_quantiles(forecast, actual, at, kept, 28))[H - 1, ALPHA]
    assert refitted < 0.85 and abs(served - 0.9) < abs(refitted - 0.9) - 0.04, (refitted, served)


def test_a_calibration_without_strata_is_refused_by_name() -> None:
    forecast, actual, _ = _days(50, np.arange(3), np.ones_like, seed=4)
    with pytest.raises(ValueError, match="no volume strata"):
        refit_tables(forecast, actual, {"levels": list(SERVICE_LEVELS), "spread": "sum", "table": [[0.0]]})
