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
from training.metrics import wape
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
    champion: ForecasterBundle | None = None,
) -> Evaluation:
    """Score the model and its baselines on the holdout origins; baselines learn only from `fit`.

    `champion`, the version in Production, is scored on the same rows when it can read them.
    """
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
    if champion is not None and not champion_mismatch(champion, bundle, holdout):
        metrics.update(compare_with_champion(champion, holdout, rows, actual, model))
    return Evaluation(table=table, metrics=metrics, rows=rows, actual=actual, forecasts=forecasts)


def compare_with_champion(
    champion: ForecasterBundle, holdout: pd.DataFrame, rows: pd.DataFrame, actual: np.ndarray, model: np.ndarray
) -> dict[str, float]:
    """Both versions' WAPE on the latest window, on the series the champion knows (new launches aside)."""
    latest = (rows["window"] == rows["window"].max()).to_numpy()
    compared = latest & known_series(holdout, champion.meta.stores, champion.meta.skus).to_numpy()
    if actual[compared].sum() == 0:
        return {}  # nothing sold by series both versions know: no comparison, and the guard says so
    incumbent = champion.predict(holdout[compared])[..., 1]
    return {
        "champion_latest_window_wape": wape(actual[compared], incumbent),
        "latest_window_wape_vs_champion": wape(actual[compared], model[compared][..., 1]),
        "champion_rows_compared": float(compared.sum()),
    }


def champion_mismatch(champion: ForecasterBundle, challenger: ForecasterBundle, rows: pd.DataFrame) -> str:
    """Why the champion cannot be scored on the challenger's backtest rows ("" when it can)."""
    if (champion.meta.frequency, champion.meta.horizon) != (challenger.meta.frequency, challenger.meta.horizon):
        return (
            f"the champion forecasts {champion.meta.horizon} x {champion.meta.frequency}, "
            f"the challenger {challenger.meta.horizon} x {challenger.meta.frequency}"
        )
    missing = sorted(set(champion.meta.spec.feature_names) - set(rows.columns))
    if missing:
        return f"the champion reads features the training set no longer has: {missing[:5]}"
    return ""


def residual_rows(evaluation: Evaluation) -> pd.DataFrame:
    """One line per (backtest row, step): actual, the model's quantiles and the p50 residual."""
    rows, forecast = evaluation.rows, evaluation.forecasts["model"]
    horizon = forecast.shape[1]
    frame = rows.loc[rows.index.repeat(horizon), ["store_id", "sku_id", "event_timestamp", "window", "mover"]]
    frame = frame.reset_index(drop=True).assign(step=list(range(1, horizon + 1)) * len(rows))
    frame["actual"] = evaluation.actual.ravel()
    for i, name in enumerate(("p10", "p50", "p90")):
        frame[name] = forecast[..., i].ravel()
    frame["residual"] = frame["actual"] - frame["p50"]
    return frame
