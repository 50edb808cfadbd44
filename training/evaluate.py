"""Backtest of a trained forecaster against seasonal naive, gradient boosting and, on simulated
data, the oracle, all scored on the same rolling-origin rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.backtest import actuals, backtest_rows, backtest_table, headline, series_profile
from training.baselines import seasonal_naive
from training.bundle import ForecasterBundle
from training.dataset import known_series
from training.gbm import GBMConfig, QuantileGBM
from training.oracle import oracle_forecast

DEFAULT_GBM = GBMConfig()


@dataclass
class Evaluation:
    table: pd.DataFrame  # one line per (forecaster, segment)
    metrics: dict[str, float]  # the model's headline metrics and its ratios to the others
    rows: pd.DataFrame  # backtest row attributes (series, origin, window, category, mover)
    actual: np.ndarray  # (rows, horizon)
    forecasts: dict[str, np.ndarray]


def evaluate_backtest(
    bundle: ForecasterBundle,
    fit: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    period: int,
    gbm: GBMConfig | None = DEFAULT_GBM,
    oracle: pd.DataFrame | None = None,
) -> Evaluation:
    """Score the model and its baselines on the holdout origins; baselines learn only from `fit`."""
    horizon = bundle.meta.horizon
    # Series launched after the fitting window have no embedding yet: they are counted, not scored.
    known = known_series(holdout, bundle.meta.stores, bundle.meta.skus)
    unseen_rows = int((~known).sum())
    holdout = holdout[known].reset_index(drop=True)
    rows = backtest_rows(holdout, series_profile(fit, period), horizon)
    forecasts = {
        "model": bundle.predict(holdout).astype("float64"),
        "seasonal_naive": seasonal_naive(holdout, horizon, period),
    }
    if gbm is not None:
        forecasts["gradient_boosting"] = QuantileGBM(bundle.meta, gbm).fit(fit).predict(holdout)
    if oracle is not None:
        forecasts["oracle"] = oracle_forecast(holdout, oracle, horizon)
    actual = actuals(holdout, horizon)
    table = backtest_table(rows, actual, forecasts)
    model = forecasts["model"]
    metrics = {
        **headline(table, "model"),
        "quantiles_ordered": float(np.all((model[..., 0] <= model[..., 1]) & (model[..., 1] <= model[..., 2]))),
        "has_nan": float(np.isnan(model).any()),
        "rows_unseen_series": float(unseen_rows),
    }
    return Evaluation(table=table, metrics=metrics, rows=rows, actual=actual, forecasts=forecasts)
