"""The oracle forecast of simulated data: quantiles of the true demand distribution.

The simulator draws sales from Poisson(expected demand) and records the expected demand it used.
Forecasting with those quantiles is as good as any forecaster can be without seeing the noise,
so a model's WAPE divided by the oracle's is its distance to the irreducible error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import poisson

from training.backtest import QUANTILE_LEVELS

ORACLE_CHUNK_ROWS = 50_000  # holdout rows joined to the oracle at a time (each makes H target rows)


def oracle_forecast(
    holdout: pd.DataFrame, oracle: pd.DataFrame, horizon: int, chunk_rows: int = ORACLE_CHUNK_ROWS
) -> np.ndarray:
    """(rows, horizon, 3) Poisson quantiles of the expected demand of each target day, `chunk_rows`
    holdout rows at a time (their targets are rows x H: 15M at 25,000 series).

    A day without an oracle row is a day the store was closed or the SKU not listed: no demand.
    """
    expected = oracle.assign(date=pd.to_datetime(oracle["date"]))[["store_id", "sku_id", "date", "expected_units"]]
    parts = [
        _oracle_chunk(holdout.iloc[start : start + chunk_rows], expected, horizon)
        for start in range(0, len(holdout), chunk_rows)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, horizon, len(QUANTILE_LEVELS)))


def _oracle_chunk(holdout: pd.DataFrame, expected: pd.DataFrame, horizon: int) -> np.ndarray:
    origins = pd.to_datetime(holdout["event_timestamp"]).dt.tz_localize(None).to_numpy()
    steps = np.arange(1, horizon + 1)
    targets = pd.DataFrame(
        {
            "store_id": np.repeat(holdout["store_id"].to_numpy(), horizon),
            "sku_id": np.repeat(holdout["sku_id"].to_numpy(), horizon),
            "date": (origins[:, None] + steps[None, :].astype("timedelta64[D]")).ravel(),
        }
    )
    joined = targets.merge(expected, on=["store_id", "sku_id", "date"], how="left", validate="many_to_one")
    rate = joined["expected_units"].fillna(0.0).to_numpy("float64").reshape(len(holdout), horizon)
    return np.stack([poisson.ppf(level, rate) for level in QUANTILE_LEVELS], axis=-1)
