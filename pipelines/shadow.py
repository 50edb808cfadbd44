"""Shadow scoring: another version's forecasts of exactly the (series, origin) the champion served,
from the offline store's features at each origin, scored on the same actuals. No traffic is needed.
This is how a challenger is compared with the champion on live evidence, and a new champion with the
one it replaced.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from demandops.settings import Settings
from feature_repo.store import open_store
from lifecycle.registry import ModelRegistry
from monitoring.accuracy import SCORED_COLUMNS
from serving.skew import offline_forecasts
from training.tracking import download_bundle

SERIES_ORIGIN = ["store_id", "sku_id", "origin_date"]


def shadow_scored(settings: Settings, registry: ModelRegistry, version: str, served: pd.DataFrame) -> pd.DataFrame:
    """`served` (scored forecasts: SCORED_COLUMNS) with `version`'s forecasts in place of the served ones;
    rows beyond its horizon are left out."""
    if served.empty:
        return served.assign(model_version=version)
    with tempfile.TemporaryDirectory() as scratch:
        bundle = download_bundle(settings.mlflow_tracking_uri, registry.get(version).run_id, Path(scratch))
    asked = served[SERIES_ORIGIN].drop_duplicates(ignore_index=True)
    items = [
        {"store_id": s, "sku_id": k, "origin_date": o.date().isoformat()}
        for s, k, o in zip(asked["store_id"], asked["sku_id"], asked["origin_date"], strict=True)
    ]
    quantiles = offline_forecasts(open_store(settings), bundle, items)  # (pairs, horizon, 3)
    row = served.merge(asked.reset_index(names="pair"), on=SERIES_ORIGIN, how="left")["pair"].to_numpy()
    steps = served["step"].to_numpy() - 1
    within = steps < quantiles.shape[1]
    values = quantiles[row[within], steps[within]]
    shadow = served[within].assign(model_version=version)
    shadow[["p10", "p50", "p90"]] = values.astype("float64")
    return shadow[SCORED_COLUMNS].reset_index(drop=True)


def wape_per_period(scored: pd.DataFrame) -> dict[str, float | None]:
    """WAPE per target period (ISO dates), None where every actual was zero."""
    sums = scored.assign(absolute=(scored["actual"] - scored["p50"]).abs()).groupby("date")[["absolute", "actual"]]
    totals = sums.sum()
    return {
        day.date().isoformat(): (float(a / t) if t > 0 else None)
        for day, a, t in zip(totals.index, totals["absolute"], totals["actual"], strict=True)
    }


def overall_wape(scored: pd.DataFrame) -> float:
    total = scored["actual"].sum()
    return float(np.abs(scored["actual"] - scored["p50"]).sum() / total) if total > 0 else float("nan")
