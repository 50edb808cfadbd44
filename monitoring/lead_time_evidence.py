"""What /replenishment's lead-time tables are refitted on live: the latest logged forecasts beside the
sales that followed them (training/recalibration.py says why and how), and the tables each version
serves now.

The `forecast_accuracy` asset builds the evidence after each scored period, from the prediction log
and the gated sales, computes from it the calibration each registered version serves now
(served_calibration) and writes both before the live summary; the service reads its version's
calibration when the summary changes, and `demandops plan` when it starts. The work is the loop's,
once per period: the service only reads a few kilobytes (bench/lead_time_refit_cost.py measures
both sides). Only forecasts logged with the whole horizon count: a row's volume stratum is read
from the sum of its p50s over the horizon, as it is when served. The evidence reaches back twice
the window and horizon: the tables served at each origin of the window are refitted again from it,
so that the record of their promises can be read (served_calibrations).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from demandops.files import write_atomically
from demandops.frequency import period_ordinals
from training.recalibration import known_lead_time_demand, served_calibrations

EVIDENCE_PATH = ("forecast_accuracy", "lead_time_evidence", "latest.parquet")  # not among the partition files
SERVED_DIR = ("forecast_accuracy", "lead_time_evidence", "served")  # one calibration per version, v<N>.json
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


def served_calibration(evidence: pd.DataFrame, version: str, kept: dict, horizon: int) -> dict | None:
    """The calibration a version serves now (served_calibrations: the bundle's `kept` refitted on the
    version's evidence, raised where the record shows promises kept less often than made), or None
    when none of its rows has a known lead-time demand or they were logged over another horizon than
    the bundle's (the loop's cadence changed since it was trained)."""
    rows = evidence[evidence["model_version"] == version]
    if not kept.get("tables") or not rows["demand"].notna().any() or rows["step"].max() != horizon:
        return None
    forecast = rows[["p10", "p50", "p90"]].to_numpy("float64").reshape(-1, horizon, 3)
    actual = rows["units"].to_numpy("float64").reshape(-1, horizon)
    origins = rows["origin_period"].to_numpy("int64")[::horizon]
    at, window = int(rows["scored_period"].iloc[0]), int(rows["window"].iloc[0])
    return next(served_calibrations(forecast, actual, origins, kept, window, [at]))[1]


def served_path(lake_dir: Path, version: str) -> Path:
    return lake_dir.joinpath(*SERVED_DIR, f"v{version}.json")


def write_served(lake_dir: Path, version: str, calibration: dict | None, horizon: int) -> None:
    """What live_calibration reads for this version; None removes it (the bundle's tables again)."""
    path = served_path(lake_dir, version)
    if calibration is None:
        path.unlink(missing_ok=True)
        return
    served = {"model_version": version, "horizon": horizon, "calibration": calibration}
    write_atomically(path, lambda partial: partial.write_text(json.dumps(served)))


def live_calibration(lake_dir: Path, version: str, horizon: int) -> dict | None:
    """The calibration the loop last computed for this version to serve (served_calibration), or None
    when it computed none or for another horizon. Raises OSError or ValueError when the file cannot
    be read. A few kilobytes: the service and `demandops plan` read it, the loop does the work."""
    path = served_path(lake_dir, version)
    if not path.is_file():
        return None
    served = json.loads(path.read_text())
    if not isinstance(served, dict) or "calibration" not in served:
        raise ValueError(f"{path} holds no calibration")
    return served["calibration"] if served.get("horizon") == horizon else None


def refitted_rows(calibration: dict) -> int:
    """The evidence rows behind the refitted columns of a served calibration (0: none)."""
    return int(np.sum(calibration.get("refitted", 0)))
