"""Holdout evaluation of a forecaster against the seasonal-naive baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.baselines import seasonal_naive
from training.bundle import ForecasterBundle
from training.dataset import known_series, label_columns
from training.metrics import bias, coverage, pinball, wape


def evaluate_holdout(bundle: ForecasterBundle, holdout: pd.DataFrame, *, period: int) -> dict[str, float]:
    """Headline metrics of the model and of seasonal naive on the same holdout rows."""
    horizon = bundle.meta.horizon
    # Series launched after the fitting window have no embedding yet: they are counted, not scored.
    known = known_series(holdout, bundle.meta.stores, bundle.meta.skus)
    unseen_rows = int((~known).sum())
    holdout = holdout[known]
    actual = holdout[label_columns(horizon)].to_numpy("float64")
    forecast = bundle.predict(holdout).astype("float64")
    naive = seasonal_naive(holdout, horizon, period)
    p10, p50, p90 = (forecast[..., i] for i in range(3))
    model_wape = wape(actual, p50)
    naive_wape = wape(actual, naive)
    return {
        "wape": model_wape,
        "naive_wape": naive_wape,
        "wape_ratio_to_naive": model_wape / naive_wape,
        "pinball_p10": pinball(actual, p10, 0.1),
        "pinball_p50": pinball(actual, p50, 0.5),
        "pinball_p90": pinball(actual, p90, 0.9),
        "coverage_p10_p90": coverage(actual, p10, p90),
        "bias": bias(actual, p50),
        "quantiles_ordered": float(np.all((p10 <= p50) & (p50 <= p90))),
        "has_nan": float(np.isnan(forecast).any()),
        "rows": float(len(holdout)),
        "rows_unseen_series": float(unseen_rows),
    }
