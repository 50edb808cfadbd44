"""One function per feature, used offline (sales_features) and at serving time.

A feature row stamped day d describes the series at the end of day d: it may use sales up to and
including d, never later. Forecast targets are d+1..d+H.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demandops.contract import SERIES_KEYS

LAGS = (1, 2, 3, 4, 5, 6, 7, 14, 28)
WINDOWS = (7, 28)
HISTORY_FEATURES = [f"lag_{k}" for k in LAGS] + [f"mean_{w}" for w in WINDOWS] + ["std_28"]
PRICE_FEATURES = ["price", "on_promo"]
FEATURE_NAMES = HISTORY_FEATURES + PRICE_FEATURES
# Feature rows need this many days of history before they are complete.
MIN_HISTORY_DAYS = max(max(LAGS), max(WINDOWS))
CALENDAR_WIDTH = 7


def complete_calendar(sales: pd.DataFrame) -> pd.DataFrame:
    """Every day from each series' first to last row, sorted; a day without a row sold nothing.

    Closed stores and gaps in a file leave days without rows; lags count days, not rows.
    """
    keys = list(SERIES_KEYS)
    sales = sales.assign(date=pd.to_datetime(sales["date"]))
    bounds = sales.groupby(keys, sort=True)["date"].agg(["min", "max"]).reset_index()
    lengths = ((bounds["max"] - bounds["min"]).dt.days + 1).to_numpy()
    offsets = np.concatenate([np.arange(n) for n in lengths]) if len(lengths) else np.array([], dtype=int)
    full = bounds.loc[bounds.index.repeat(lengths), keys].reset_index(drop=True)
    full["date"] = np.repeat(bounds["min"].to_numpy(), lengths) + pd.to_timedelta(offsets, unit="D")
    out = full.merge(sales, on=[*keys, "date"], how="left", validate="one_to_one")
    out["units_sold"] = out["units_sold"].fillna(0.0)
    if "price" in out:
        out["price"] = out.groupby(keys, sort=False)["price"].transform(lambda p: p.ffill().bfill())
    if "on_promo" in out:
        out["on_promo"] = out["on_promo"].astype("boolean").fillna(False).astype(bool)
    return out


def _units_by_series(sales: pd.DataFrame) -> pd.core.groupby.SeriesGroupBy:
    return sales.groupby(list(SERIES_KEYS), sort=False)["units_sold"]


def lag(sales: pd.DataFrame, k: int) -> pd.Series:
    """Units sold k-1 days before the row's day (lag 1 is the row's own day)."""
    return _units_by_series(sales).shift(k - 1)


def rolling_mean(sales: pd.DataFrame, window: int) -> pd.Series:
    """Mean units over the `window` days ending on the row's day."""
    return _units_by_series(sales).transform(lambda s: s.rolling(window, min_periods=window).mean())


def rolling_std(sales: pd.DataFrame, window: int) -> pd.Series:
    """Standard deviation of units over the `window` days ending on the row's day."""
    return _units_by_series(sales).transform(lambda s: s.rolling(window, min_periods=window).std())


def price(sales: pd.DataFrame) -> pd.Series:
    """Shelf price on the row's day; NaN when the data has no price column."""
    return sales["price"].astype("float64") if "price" in sales else pd.Series(np.nan, index=sales.index)


def on_promo(sales: pd.DataFrame) -> pd.Series:
    """1.0 when the SKU was on promotion on the row's day, else 0.0."""
    return sales["on_promo"].astype("float64") if "on_promo" in sales else pd.Series(0.0, index=sales.index)


def compute_features(sales: pd.DataFrame) -> pd.DataFrame:
    """All history and price features for every (store, sku, day) row of `sales`."""
    sales = complete_calendar(sales)
    out = sales[[*SERIES_KEYS]].copy()
    out["event_timestamp"] = pd.to_datetime(sales["date"]).dt.tz_localize("UTC")
    for k in LAGS:
        out[f"lag_{k}"] = lag(sales, k)
    for w in WINDOWS:
        out[f"mean_{w}"] = rolling_mean(sales, w)
    out["std_28"] = rolling_std(sales, 28)
    out["price"] = price(sales)
    out["on_promo"] = on_promo(sales)
    return out


def series_scale(features: pd.DataFrame) -> np.ndarray:
    """Per-row target scale, so slow and fast movers train on comparable numbers."""
    return features["mean_28"].to_numpy(dtype="float64") + 1.0


def target_calendar(origin_dates: pd.Series | pd.DatetimeIndex, horizon: int) -> np.ndarray:
    """One-hot day of week of each target day d+1..d+H: shape (rows, horizon, 7)."""
    origins = pd.DatetimeIndex(pd.to_datetime(origin_dates)).tz_localize(None).normalize()
    steps = np.arange(1, horizon + 1)
    dows = (origins.dayofweek.to_numpy()[:, None] + steps[None, :]) % 7
    return np.eye(CALENDAR_WIDTH, dtype="float32")[dows]


def target_dates(origin: pd.Timestamp, horizon: int) -> list[pd.Timestamp]:
    """The calendar days forecast from one origin."""
    return [origin + pd.Timedelta(days=h) for h in range(1, horizon + 1)]
