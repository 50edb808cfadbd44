"""What /replenishment's lead-time tables are refitted on live: the latest logged forecasts beside the
demand of each lead time that has ended (training/recalibration.py says why and how).

The `forecast_accuracy` asset builds it after each scored period, from the prediction log and the
gated sales, and writes it before the live summary; the service refits its tables when the summary
changes, and `demandops plan` when it starts. Only forecasts logged with the whole horizon count: a
row's volume stratum is read from the sum of its p50s over the horizon, as it is when served. One
file for every version; a reader takes its own version's rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from demandops.files import write_atomically
from demandops.frequency import period_ordinals
from training.recalibration import known_lead_time_demand, refit_tables

EVIDENCE_PATH = ("forecast_accuracy", "lead_time_evidence", "latest.parquet")  # not among the partition files
ROW_KEYS = ["model_version", "store_id", "sku_id", "origin_date"]
EVIDENCE_COLUMNS = [*ROW_KEYS, "step", "p10", "p50", "p90", "demand"]
EVIDENCE_DTYPES = {
    "model_version": "object",
    "store_id": "object",
    "sku_id": "object",
    "origin_date": "datetime64[ns]",
    "step": "int64",
}  # fmt: skip; the rest float64


def evidence_path(lake_dir: Path) -> Path:
    return lake_dir.joinpath(*EVIDENCE_PATH)


def build_evidence(
    logged: pd.DataFrame, sales: pd.DataFrame, *, period: str, frequency: str, horizon: int, window: int
) -> pd.DataFrame:
    """One row per (forecast, step): its quantiles and, as `demand`, the demand over the lead time that
    ends at that step when it ended within the `window` periods up to `period` and the series has a
    sales row in each of its periods (NaN otherwise). `logged`: read_log's rows, one per forecast and
    target; `sales`: the gated sales of the periods the forecasts cover."""
    if logged.empty:
        return pd.DataFrame({name: pd.Series(dtype=EVIDENCE_DTYPES.get(name, "float64")) for name in EVIDENCE_COLUMNS})
    whole = logged.groupby(ROW_KEYS, sort=False)["step"].transform("size") == horizon
    rows = logged[whole].sort_values([*ROW_KEYS, "step"], kind="stable").reset_index(drop=True)
    sold = sales[["store_id", "sku_id", "date", "units_sold"]].assign(date=lambda s: pd.to_datetime(s["date"]))
    joined = rows.merge(sold, on=["store_id", "sku_id", "date"], how="left", sort=False)
    actual = joined["units_sold"].to_numpy("float64").reshape(-1, horizon)
    origins = period_ordinals(joined["origin_date"].to_numpy()[::horizon], frequency)
    at = int(period_ordinals([pd.Timestamp(period)], frequency)[0])
    demand = known_lead_time_demand(actual, origins, at, window)  # NaN after a missing row: cumsum carries it
    return joined.assign(demand=demand.ravel())[EVIDENCE_COLUMNS]


def write_evidence(lake_dir: Path, evidence: pd.DataFrame) -> None:
    write_atomically(evidence_path(lake_dir), lambda partial: evidence.to_parquet(partial, index=False))


def live_calibration(lake_dir: Path, version: str, kept: dict, horizon: int) -> dict | None:
    """The calibration `kept` refitted on this version's evidence, or None when there is no evidence
    file, none of this version's rows has a known lead-time demand, or they were logged over another
    horizon (the loop's cadence changed since this version was trained). Raises OSError or
    ValueError when the file cannot be read."""
    path = evidence_path(lake_dir)
    if not path.is_file() or not kept.get("tables"):
        return None
    rows = pd.read_parquet(path, filters=[("model_version", "==", version)])
    if not rows["demand"].notna().any() or rows["step"].max() != horizon:
        return None
    forecast = rows[["p10", "p50", "p90"]].to_numpy("float64").reshape(-1, horizon, 3)
    return refit_tables(forecast, rows["demand"].to_numpy("float64").reshape(-1, horizon), kept)


def refitted_rows(calibration: dict) -> int:
    """The evidence rows behind the refitted columns of a calibration from live_calibration (0: none)."""
    return int(np.sum(calibration.get("refitted", 0)))
