"""Periods of a series: the completed calendar features are computed on, and the target periods.

Used offline and at serving time alike (request-time features: the target calendar and the age
since launch are functions of the origin, known when a forecast is asked for).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demandops.contract import SERIES_KEYS
from demandops.frequency import (
    from_ordinals,
    month_index,
    period_ordinals,
    period_start_days,
    periods_after,
    weekday,
)

OBSERVED = "_observed"  # True on periods that had a row in the data
# Day of week for daily data; month of year for weekly and monthly data.
CALENDAR_WIDTHS = {"D": 7, "W": 12, "M": 12}


def complete_calendar(
    sales: pd.DataFrame,
    frequency: str = "D",
    *,
    first_seen: pd.DataFrame | None = None,
    trailing: int = 0,
    price_fill_limit: int | None = None,
) -> pd.DataFrame:
    """Every period of each series from its start to `trailing` periods after its last row, sorted.

    A period without a row sold nothing (closed stores, gaps in a file). A series starts at its
    first row, or at the start of the loaded data when `first_seen` says it existed before.
    Trailing periods stop at the last period in the data. Prices are carried forward over at
    most `price_fill_limit` periods without a row, never backward (that would use later prices).
    """
    keys = list(SERIES_KEYS)
    sales = sales.assign(date=pd.to_datetime(sales["date"]), **{OBSERVED: True})
    ordinal = pd.Series(period_ordinals(sales["date"], frequency), index=sales.index)
    bounds = ordinal.groupby([sales[k] for k in keys], sort=True).agg(["min", "max"]).reset_index()
    if first_seen is not None and len(bounds):
        seen = bounds.merge(first_seen, on=keys, how="left")["first_period"]
        known = seen.notna().to_numpy()
        first = np.where(known, period_ordinals(seen.fillna(pd.Timestamp(0)), frequency), bounds["min"])
        bounds["min"] = np.maximum(np.minimum(first, bounds["min"]), ordinal.min())
    bounds["max"] = np.minimum(bounds["max"] + trailing, ordinal.max())
    lengths = (bounds["max"] - bounds["min"] + 1).to_numpy()
    offsets = np.concatenate([np.arange(n) for n in lengths]) if len(lengths) else np.array([], dtype=int)
    full = bounds.loc[bounds.index.repeat(lengths), keys].reset_index(drop=True)
    full["date"] = from_ordinals(np.repeat(bounds["min"].to_numpy(), lengths) + offsets, frequency)
    out = full.merge(sales, on=[*keys, "date"], how="left", validate="one_to_one")
    out[OBSERVED] = out[OBSERVED].astype("boolean").fillna(False).astype(bool)
    out["units_sold"] = out["units_sold"].fillna(0.0)
    if "price" in out:
        out["price"] = out.groupby(keys, sort=False)["price"].ffill(limit=price_fill_limit)
    if "on_promo" in out:
        out["on_promo"] = out["on_promo"].astype("boolean").fillna(False).astype(bool)
    return out


def target_dates(origin: pd.Timestamp, horizon: int, frequency: str = "D") -> pd.DatetimeIndex:
    """The labels of the periods forecast from one origin."""
    return periods_after(origin, horizon, frequency)


def target_calendar(origin_dates: pd.Series | pd.DatetimeIndex, horizon: int, frequency: str = "D") -> np.ndarray:
    """One-hot calendar position of each target period d+1..d+H: shape (rows, horizon, width).

    Day of week for daily data, month of year for weekly and monthly data.
    """
    days = period_start_days(target_ordinals(origin_dates, horizon, frequency), frequency)
    position = weekday(days) if frequency == "D" else month_index(days)
    return np.eye(CALENDAR_WIDTHS[frequency], dtype="float32")[position]


def target_ordinals(origin_dates, horizon: int, frequency: str) -> np.ndarray:
    """(rows, horizon): the period ordinals of d+1..d+H for each origin d."""
    return period_ordinals(origin_dates, frequency)[:, None] + np.arange(1, horizon + 1)[None, :]


def age_since_launch(origin_dates: pd.Series, launch_dates: pd.Series, frequency: str = "D") -> np.ndarray:
    """Periods from the SKU's launch to the origin (0 in the launch period); NaN when the launch is unknown."""
    launch = launch_days(launch_dates)
    known = ~np.isnat(launch)
    origins = period_ordinals(origin_dates, frequency)
    launched = period_ordinals(np.where(known, launch, np.datetime64(0, "D")), frequency)
    return np.where(known, np.maximum(origins - launched, 0), np.nan).astype("float64")


def launch_days(values) -> np.ndarray:
    """Launch dates as datetime64[D], NaT where unknown. training/static_features.py writes them as ISO
    dates ("" when unknown), which NumPy parses in C; pandas' parser, which guesses the format on
    every call, took 2.5 ms of a 64-row batch. Anything else goes to pandas' parser, and what it
    cannot read is unknown, as before."""
    raw = np.asarray(values, dtype=object)
    raw = np.where(pd.isna(raw), "", raw)
    try:
        return raw.astype("datetime64[D]")
    except ValueError:  # not ISO dates: a file written by other means than static_features
        return pd.to_datetime(pd.Series(raw), errors="coerce").to_numpy().astype("datetime64[D]")
