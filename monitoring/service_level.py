"""Live cycle service: each served reorder point against the demand of its lead time, once that is known.

A decision of origin o and lead time L promised that the demand of periods o+1..o+L would stay at or
below its reorder point with probability `service_level`. It is scored in the period o+L, when the
last of those periods is gated, and only when the series has a gated sales row in each of them (as
forecasts are scored: the raw-data contract has no row for "sold nothing on record"). The share of
promises kept, per model version, lead time and level, is the achieved cycle service level the
backtest measured offline (training/lead_time.py), now on the decisions consumers were given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demandops.frequency import period_ordinals

SERIES = ["store_id", "sku_id"]
SCORED_DECISION_COLUMNS = [
    "model_version", "store_id", "sku_id", "origin_date", "lead_time", "service_level", "reorder_point",
    "demand", "covered",
]  # fmt: skip
SERVICE_COLUMNS = ["model_version", "lead_time", "service_level", "decisions", "achieved", "shortfall"]


def window_end_ordinals(decisions: pd.DataFrame, frequency: str) -> np.ndarray:
    """The period ordinal of each decision's last lead-time period, o + L."""
    return period_ordinals(decisions["origin_date"], frequency) + decisions["lead_time"].to_numpy("int64")


def score_decisions(decisions: pd.DataFrame, sales: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """The decisions whose lead time `sales` covers whole (a row of the series in every period of it),
    each with its demand over the lead time and whether the reorder point covered it."""
    if decisions.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in SCORED_DECISION_COLUMNS})
    sold = pd.DataFrame(
        {
            "store_id": sales["store_id"].to_numpy(),
            "sku_id": sales["sku_id"].to_numpy(),
            "period": period_ordinals(sales["date"], frequency),
            "units": sales["units_sold"].to_numpy("float64"),
        }
    )
    first = period_ordinals(decisions["origin_date"], frequency) + 1
    steps = decisions["lead_time"].to_numpy("int64")
    # One row per decision and lead-time period, joined to that period's sales row of the series.
    which = np.repeat(np.arange(len(decisions)), steps)
    offsets = np.arange(len(which)) - np.repeat(np.cumsum(steps) - steps, steps)
    periods = pd.DataFrame(
        {
            "decision": which,
            "store_id": decisions["store_id"].to_numpy()[which],
            "sku_id": decisions["sku_id"].to_numpy()[which],
            "period": first[which] + offsets,
        }
    )
    joined = periods.merge(sold, on=[*SERIES, "period"], how="inner")
    per_decision = joined.groupby("decision").agg(rows=("units", "size"), demand=("units", "sum"))
    whole = per_decision[per_decision["rows"].to_numpy() == steps[per_decision.index.to_numpy()]]
    scored = decisions.iloc[whole.index.to_numpy()].reset_index(drop=True)
    scored["demand"] = whole["demand"].to_numpy()
    scored["covered"] = scored["demand"] <= scored["reorder_point"]
    return scored[SCORED_DECISION_COLUMNS]


def service_table(scored: pd.DataFrame) -> pd.DataFrame:
    """Per model version, lead time and target level: the decisions scored, the share whose demand
    stayed at or below the reorder point, and how far that falls short of the target (negative: over)."""
    if scored.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in SERVICE_COLUMNS})
    keys = ["model_version", "lead_time", "service_level"]
    table = scored.groupby(keys, sort=True).agg(decisions=("covered", "size"), achieved=("covered", "mean"))
    table = table.reset_index()
    table["shortfall"] = table["service_level"] - table["achieved"]
    return table[SERVICE_COLUMNS]
