"""Live accuracy: the logged forecasts scored against the actuals of each newly gated period.

A logged forecast is scored when the sales of its target period pass the gate; a series with no
sales row in that period is not scored (the raw-data contract has no row for "no record"). Each
(model version, series, origin, target) counts once, however often it was asked for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.backtest import INTERMITTENT_ZERO_SHARE, QUANTILE_LEVELS

SERIES = ["store_id", "sku_id"]
SCORED_COLUMNS = [
    "model_version", "store_id", "sku_id", "origin_date", "date", "step", "mover", "actual", "p10", "p50", "p90",
]  # fmt: skip
SCORED_DTYPES = {
    "model_version": "object",
    "store_id": "object",
    "sku_id": "object",
    "origin_date": "datetime64[ns]",
    "date": "datetime64[ns]",
    "step": "int64",
    "mover": "object",
}  # fmt: skip; the rest float64
METRICS = ("wape", "bias", "coverage", "pinball")


def mover_classes(history: pd.DataFrame) -> pd.DataFrame:
    """Per series of the trailing sales: intermittent when most periods sold nothing, as the backtest
    classes them (training/backtest.py), else fast."""
    zero = history.assign(zero=history["units_sold"] <= 0).groupby(SERIES, sort=False)["zero"].mean()
    movers = np.where(zero.to_numpy() > INTERMITTENT_ZERO_SHARE, "intermittent", "fast")
    return pd.DataFrame({"mover": movers}, index=zero.index).reset_index()


def score_forecasts(logged: pd.DataFrame, sales: pd.DataFrame, movers: pd.DataFrame) -> pd.DataFrame:
    """Each logged forecast of a period beside its actual (`SCORED_COLUMNS`); series without a trailing
    history are 'new'."""
    actual = sales[[*SERIES, "date", "units_sold"]].rename(columns={"units_sold": "actual"})
    actual["date"] = pd.to_datetime(actual["date"])
    scored = logged.merge(actual, on=[*SERIES, "date"], how="inner").merge(movers, on=SERIES, how="left")
    scored["mover"] = scored["mover"].fillna("new")
    scored["actual"] = scored["actual"].astype("float64")
    return scored[SCORED_COLUMNS]


def accuracy_table(scored: pd.DataFrame) -> pd.DataFrame:
    """WAPE, bias, p10-p90 coverage and mean pinball loss of the three quantiles per model version, for
    all its forecasts, per horizon step and per mover class. WAPE and bias are NaN where every
    actual of a segment is zero (undefined), never a made-up number."""
    parts = _error_parts(scored)
    tables = []
    for kind, column in (("all", None), ("step", "step"), ("mover", "mover")):
        keys = ["model_version"] + ([column] if column else [])
        sums = parts.groupby(keys, sort=True).agg(
            rows=("actual", "size"),
            actual=("actual", "sum"),
            absolute=("absolute", "sum"),
            over=("over", "sum"),
            covered=("covered", "mean"),
            pinball=("pinball", "mean"),
        )
        sums = sums.reset_index()
        sums.insert(1, "segment_kind", kind)
        sums.insert(2, "segment", sums[column].astype(str) if column else "all")
        tables.append(sums.drop(columns=[column] if column else []))
    table = pd.concat(tables, ignore_index=True)
    defined = table["actual"] > 0
    table["wape"] = np.where(defined, table["absolute"] / table["actual"].where(defined, 1.0), np.nan)
    table["bias"] = np.where(defined, table["over"] / table["actual"].where(defined, 1.0), np.nan)
    table = table.rename(columns={"covered": "coverage"})
    return table[["model_version", "segment_kind", "segment", "rows", *METRICS]]


def _error_parts(scored: pd.DataFrame) -> pd.DataFrame:
    actual = scored["actual"].to_numpy("float64")
    quantiles = scored[["p10", "p50", "p90"]].to_numpy("float64")
    error = actual[:, None] - quantiles
    levels = np.asarray(QUANTILE_LEVELS)
    pinball = np.maximum(levels * error, (levels - 1) * error).mean(axis=1)
    return scored[["model_version", "step", "mover", "actual"]].assign(
        absolute=np.abs(error[:, 1]),
        over=-error[:, 1],
        covered=(actual >= quantiles[:, 0]) & (actual <= quantiles[:, 2]),
        pinball=pinball,
    )


def version_summary(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per model version, its overall metrics (the 'all' segment) and rows scored."""
    overall = table[table["segment_kind"] == "all"].set_index("model_version")
    return {
        str(version): {"rows": int(row["rows"]), **{m: float(row[m]) for m in METRICS}}
        for version, row in overall.iterrows()
    }
