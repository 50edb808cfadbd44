"""What /replenishment's lead-time tables are refitted on live: the latest logged forecasts beside the
sales that followed them (training/recalibration.py says why and how).

The `forecast_accuracy` asset builds it after each scored period, from the prediction log and the
gated sales, and writes it before the live summary; the service refits its tables when the summary
changes, and `demandops plan` when it starts. Only forecasts logged with the whole horizon count: a
row's volume stratum is read from the sum of its p50s over the horizon, as it is when served. One
file for every version; a reader takes its own version's rows. It reaches back twice the window and
horizon: the tables served at each origin of the window are refitted again from it, so that the
record of their promises can be read (served_calibrations).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from demandops.files import write_atomically
from demandops.frequency import period_ordinals
from training.recalibration import known_lead_time_demand, served_calibrations

EVIDENCE_PATH = ("forecast_accuracy", "lead_time_evidence", "latest.parquet")  # not among the partition files
ROW_KEYS = ["model_version", "store_id", "sku_id", "origin_date"]
# units: the step's gated sales (NaN: no row, or not known yet); demand: the lead time's, where it
# counts for the refit now; origin_period, scored_period: period ordinals; window: the refit's, in periods.
EVIDENCE_COLUMNS = [*ROW_KEYS, "step", "p10", "p50", "p90", "units", "demand"]
EVIDENCE_COLUMNS += ["origin_period", "scored_period", "window"]
EVIDENCE_DTYPES = {
    "model_version": "object",
    "store_id": "object",
    "sku_id": "object",
    "origin_date": "datetime64[ns]",
    "step": "int64",
    "origin_period": "int64",
    "scored_period": "int64",
    "window": "int64",
}  # fmt: skip; the rest float64


def evidence_path(lake_dir: Path) -> Path:
    return lake_dir.joinpath(*EVIDENCE_PATH)


def build_evidence(
    logged: pd.DataFrame, sales: pd.DataFrame, *, period: str, frequency: str, horizon: int, window: int
) -> pd.DataFrame:
    """One row per (forecast, step): its quantiles, the step's sales as `units` (NaN without a sales
    row or after `period`), and as `demand` the demand over the lead time that ends at that step when
    it ended within the `window` periods up to `period` and the series has a sales row in each of its
    periods (NaN otherwise). `logged`: read_log's rows, one per forecast and target; `sales`: the
    gated sales of the periods the forecasts cover."""
    if logged.empty:
        return pd.DataFrame({name: pd.Series(dtype=EVIDENCE_DTYPES.get(name, "float64")) for name in EVIDENCE_COLUMNS})
    whole = logged.groupby(ROW_KEYS, sort=False)["step"].transform("size") == horizon
    rows = logged[whole].sort_values([*ROW_KEYS, "step"], kind="stable").reset_index(drop=True)
    sold = sales[["store_id", "sku_id", "date", "units_sold"]].assign(date=lambda s: pd.to_datetime(s["date"]))
    joined = rows.merge(sold, on=["store_id", "sku_id", "date"], how="left", sort=False)
    origins = period_ordinals(joined["origin_date"].to_numpy()[::horizon], frequency)
    at = int(period_ordinals([pd.Timestamp(period)], frequency)[0])
    ends = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    actual = np.where(ends <= at, joined["units_sold"].to_numpy("float64").reshape(-1, horizon), np.nan)
    demand = known_lead_time_demand(actual, origins, at, window)  # NaN after a missing row: cumsum carries it
    return joined.assign(
        units=actual.ravel(), demand=demand.ravel(), origin_period=np.repeat(origins, horizon).astype("int64"),
        scored_period=at, window=window,
    )[EVIDENCE_COLUMNS]  # fmt: skip


def write_evidence(lake_dir: Path, evidence: pd.DataFrame) -> None:
    write_atomically(evidence_path(lake_dir), lambda partial: evidence.to_parquet(partial, index=False))


def live_calibration(lake_dir: Path, version: str, kept: dict, horizon: int) -> dict | None:
    """The calibration this version serves now (served_calibrations: `kept` refitted on its evidence,
    raised where the record shows promises kept less often than made), or None when there is no
    evidence file, it was written before the record was kept (the next scored period rewrites it),
    none of this version's rows has a known lead-time demand, or they were logged over another
    horizon (the loop's cadence changed since this version was trained). Raises OSError or
    ValueError when the file cannot be read."""
    path = evidence_path(lake_dir)
    if not path.is_file() or not kept.get("tables"):
        return None
    if "units" not in pq.read_schema(path).names:
        return None
    # The numbers only: the keys' strings would take most of the memory (a row per forecast and step).
    numbers = ["step", "p10", "p50", "p90", "units", "demand", "origin_period", "scored_period", "window"]
    rows = pd.read_parquet(path, columns=numbers, filters=[("model_version", "==", version)])
    if not rows["demand"].notna().any() or rows["step"].max() != horizon:
        return None
    forecast = rows[["p10", "p50", "p90"]].to_numpy("float64").reshape(-1, horizon, 3)
    actual = rows["units"].to_numpy("float64").reshape(-1, horizon)
    origins = rows["origin_period"].to_numpy("int64")[::horizon]
    at, window = int(rows["scored_period"].iloc[0]), int(rows["window"].iloc[0])
    return next(served_calibrations(forecast, actual, origins, kept, window, [at]))[1]


def refitted_rows(calibration: dict) -> int:
    """The evidence rows behind the refitted columns of a calibration from live_calibration (0: none)."""
    return int(np.sum(calibration.get("refitted", 0)))
