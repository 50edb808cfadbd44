"""One function per feature, used offline (sales_features) and at serving time.

A feature row stamped with period d describes the series at the end of period d: it may use
sales up to and including d, never later. Forecast targets are the periods d+1..d+H. Lags and
windows count periods of the data's frequency (days, weeks or months).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from demandops.contract import SERIES_KEYS
from demandops.frequency import from_ordinals, period_ordinals, periods_after

PRICE_FEATURES = ["price", "on_promo"]
# Day of week for daily data; month of year for weekly and monthly data.
CALENDAR_WIDTHS = {"D": 7, "W": 12, "M": 12}


def seasonal_naive_lags(horizon: int, period: int) -> tuple[int, ...]:
    """The lags the seasonal-naive baseline reads: target d+h repeats period d+h-period*ceil(h/period)."""
    return tuple(sorted({period * int(np.ceil(h / period)) - h + 1 for h in range(1, horizon + 1)}))


@dataclass(frozen=True)
class FeatureSpec:
    """Which history features exist, in periods of `frequency`."""

    frequency: str = "D"
    lags: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 14, 28)
    windows: tuple[int, ...] = (7, 28)

    @classmethod
    def for_cadence(cls, frequency: str, cadence) -> FeatureSpec:
        """The configured lags plus those the seasonal-naive baseline needs."""
        lags = set(cadence.lags) | set(seasonal_naive_lags(cadence.horizon, cadence.seasonal_period))
        return cls(frequency=frequency, lags=tuple(sorted(lags)), windows=tuple(sorted(set(cadence.windows))))

    @property
    def history_features(self) -> list[str]:
        return (
            [f"lag_{k}" for k in self.lags] + [f"mean_{w}" for w in self.windows] + [f"std_{w}" for w in self.windows]
        )

    @property
    def feature_names(self) -> list[str]:
        return self.history_features + PRICE_FEATURES

    @property
    def min_history(self) -> int:
        """Periods of history before a feature row is complete."""
        return max(*self.lags, *self.windows)

    @property
    def scale_feature(self) -> str:
        return f"mean_{max(self.windows)}"

    @property
    def calendar_width(self) -> int:
        return CALENDAR_WIDTHS[self.frequency]


DAILY = FeatureSpec()


def complete_calendar(sales: pd.DataFrame, frequency: str = "D") -> pd.DataFrame:
    """Every period from each series' first to last row, sorted; a period without a row sold nothing.

    Closed stores and gaps in a file leave periods without rows; lags count periods, not rows.
    """
    keys = list(SERIES_KEYS)
    sales = sales.assign(date=pd.to_datetime(sales["date"]))
    ordinal = pd.Series(period_ordinals(sales["date"], frequency), index=sales.index)
    bounds = ordinal.groupby([sales[k] for k in keys], sort=True).agg(["min", "max"]).reset_index()
    lengths = (bounds["max"] - bounds["min"] + 1).to_numpy()
    offsets = np.concatenate([np.arange(n) for n in lengths]) if len(lengths) else np.array([], dtype=int)
    full = bounds.loc[bounds.index.repeat(lengths), keys].reset_index(drop=True)
    full["date"] = from_ordinals(np.repeat(bounds["min"].to_numpy(), lengths) + offsets, frequency)
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
    """Units sold k-1 periods before the row's period (lag 1 is the row's own period)."""
    return _units_by_series(sales).shift(k - 1)


def rolling_mean(sales: pd.DataFrame, window: int) -> pd.Series:
    """Mean units over the `window` periods ending with the row's period."""
    return _units_by_series(sales).transform(lambda s: s.rolling(window, min_periods=window).mean())


def rolling_std(sales: pd.DataFrame, window: int) -> pd.Series:
    """Standard deviation of units over the `window` periods ending with the row's period."""
    return _units_by_series(sales).transform(lambda s: s.rolling(window, min_periods=window).std())


def price(sales: pd.DataFrame) -> pd.Series:
    """Shelf price in the row's period; NaN when the data has no price column."""
    return sales["price"].astype("float64") if "price" in sales else pd.Series(np.nan, index=sales.index)


def on_promo(sales: pd.DataFrame) -> pd.Series:
    """1.0 when the SKU was on promotion in the row's period, else 0.0."""
    return sales["on_promo"].astype("float64") if "on_promo" in sales else pd.Series(0.0, index=sales.index)


def compute_features(sales: pd.DataFrame, spec: FeatureSpec = DAILY) -> pd.DataFrame:
    """All history and price features for every (store, sku, period) row of `sales`."""
    sales = complete_calendar(sales, spec.frequency)
    out = sales[[*SERIES_KEYS]].copy()
    out["event_timestamp"] = pd.to_datetime(sales["date"]).dt.tz_localize("UTC")
    for k in spec.lags:
        out[f"lag_{k}"] = lag(sales, k)
    for w in spec.windows:
        out[f"mean_{w}"] = rolling_mean(sales, w)
    for w in spec.windows:
        out[f"std_{w}"] = rolling_std(sales, w)
    out["price"] = price(sales)
    out["on_promo"] = on_promo(sales)
    return out


def series_scale(features: pd.DataFrame, spec: FeatureSpec = DAILY) -> np.ndarray:
    """Per-row target scale, so slow and fast movers train on comparable numbers."""
    return features[spec.scale_feature].to_numpy(dtype="float64") + 1.0


def target_dates(origin: pd.Timestamp, horizon: int, frequency: str = "D") -> pd.DatetimeIndex:
    """The labels of the periods forecast from one origin."""
    return periods_after(origin, horizon, frequency)


def target_calendar(origin_dates: pd.Series | pd.DatetimeIndex, horizon: int, frequency: str = "D") -> np.ndarray:
    """One-hot calendar position of each target period d+1..d+H: shape (rows, horizon, width).

    Day of week for daily data, month of year for weekly and monthly data.
    """
    origins = period_ordinals(origin_dates, frequency)
    targets = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    dates = from_ordinals(targets.ravel(), frequency)
    position = dates.dayofweek if frequency == "D" else dates.month - 1
    return np.eye(CALENDAR_WIDTHS[frequency], dtype="float32")[np.asarray(position).reshape(targets.shape)]
