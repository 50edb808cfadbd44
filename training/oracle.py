"""The oracle forecast of simulated data: quantiles of the true demand distribution.

The simulator draws sales from Poisson(expected demand) and records the expected demand it used.
Forecasting with those quantiles is as good as any forecaster can be without seeing the noise,
so a model's WAPE divided by the oracle's is its distance to the irreducible error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import poisson

from demandops.contract import SERIES_KEYS
from training.backtest import QUANTILE_LEVELS


def oracle_forecast(holdout: pd.DataFrame, oracle: pd.DataFrame, horizon: int) -> np.ndarray:
    """(rows, horizon, 3) Poisson quantiles of the expected demand of each target day.

    The quantiles are computed once per (series, day) on a grid of the holdout's series by the
    days its targets span, then gathered per (row, step): a day is the target of up to H origins,
    and the Poisson quantile function costs 3 us a value (15M targets at 25,000 series).
    A day without an oracle row is a day the store was closed or the SKU not listed: no demand.
    """
    keys = list(SERIES_KEYS)
    origins = pd.to_datetime(holdout["event_timestamp"]).dt.tz_localize(None).dt.normalize().to_numpy()
    if len(holdout) == 0:
        return np.zeros((0, horizon, len(QUANTILE_LEVELS)))
    if oracle.duplicated([*keys, "date"]).any():
        raise ValueError("the oracle has more than one expected demand for some (store_id, sku_id, date)")
    series = pd.MultiIndex.from_frame(holdout[keys]).unique()
    first_day = origins.min() + np.timedelta64(1, "D")
    days = int((origins.max() - origins.min()) // np.timedelta64(1, "D")) + horizon
    rate = np.zeros((len(series), days))
    at_series = series.get_indexer(pd.MultiIndex.from_frame(oracle[keys]))
    at_day = ((pd.to_datetime(oracle["date"]).to_numpy() - first_day) // np.timedelta64(1, "D")).astype("int64")
    inside = (at_series >= 0) & (at_day >= 0) & (at_day < days)
    rate[at_series[inside], at_day[inside]] = oracle["expected_units"].to_numpy("float64")[inside]
    # (series, days, 3) whole units, exact in float32, and half the memory of the (rows, H, 3) gathered
    grid = np.stack([poisson.ppf(level, rate) for level in QUANTILE_LEVELS], axis=-1).astype("float32")
    row_series = series.get_indexer(pd.MultiIndex.from_frame(holdout[keys]))
    row_day = (origins - origins.min()) // np.timedelta64(1, "D")
    return grid[row_series[:, None], row_day[:, None] + np.arange(horizon)[None, :]]
