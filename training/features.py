"""One function per feature, used offline (sales_features) and at serving time.

A feature row stamped with period d describes the series at the end of period d: it may use
sales up to and including d, never later. Forecast targets are the periods d+1..d+H. Lags and
windows count periods of the data's frequency (days, weeks or months).

Every feature of period d reads at most `FeatureSpec.lookback` periods of history, so features
of new periods can be computed from a bounded slice of the past and equal a full recomputation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from demandops.contract import SERIES_KEYS
from training.calendar import OBSERVED, complete_calendar

PRICE_FILL_LIMIT = 7  # periods a price is carried forward over periods without a row
STATIC_FEATURES = ["store_size", "store_region", "sku_category", "sku_launch_date"]
CATEGORICAL_FEATURES = ["store_size", "store_region", "sku_category"]


def seasonal_naive_lags(horizon: int, period: int) -> tuple[int, ...]:
    """The lags the seasonal-naive baseline reads: target d+h repeats period d+h-period*ceil(h/period)."""
    return tuple(sorted({period * int(np.ceil(h / period)) - h + 1 for h in range(1, horizon + 1)}))


@dataclass(frozen=True)
class FeatureSpec:
    """Which history features exist, in periods of `frequency`."""

    frequency: str
    lags: tuple[int, ...]
    windows: tuple[int, ...]
    stock: bool = True  # whether the shelf's stock is read (models from before it was are not)

    @classmethod
    def for_cadence(cls, frequency: str, cadence) -> FeatureSpec:
        """The configured lags plus those the seasonal-naive baseline needs."""
        lags = set(cadence.lags) | set(seasonal_naive_lags(cadence.horizon, cadence.seasonal_period))
        return cls(frequency=frequency, lags=tuple(sorted(lags)), windows=tuple(sorted(set(cadence.windows))))

    @property
    def long_window(self) -> int:
        return max(self.windows)

    @property
    def unit_features(self) -> list[str]:
        """Features measured in units sold (scaled by the series level for the model)."""
        return (
            [f"lag_{k}" for k in self.lags] + [f"mean_{w}" for w in self.windows] + [f"std_{w}" for w in self.windows]
        )

    @property
    def stock_features(self) -> list[str]:
        """What the shelf held: units left at the period's end, and how often it ran empty lately."""
        return ["stock_left", f"sold_out_share_{self.long_window}"] if self.stock else []

    @property
    def history_features(self) -> list[str]:
        return self.unit_features + [f"zero_share_{self.long_window}", "periods_since_sale", *self.stock_features]

    @property
    def price_features(self) -> list[str]:
        return ["price", f"price_ratio_{self.long_window}", "on_promo", "periods_since_promo"]

    @property
    def feature_names(self) -> list[str]:
        """Every feature the feature service serves, in order."""
        return self.history_features + self.price_features + STATIC_FEATURES

    @property
    def min_history(self) -> int:
        """Periods of history before a feature row is complete."""
        return max(*self.lags, *self.windows)

    @property
    def lookback(self) -> int:
        """Periods before d that any feature of period d may read."""
        return self.min_history - 1 + PRICE_FILL_LIMIT

    @property
    def scale_feature(self) -> str:
        return f"mean_{self.long_window}"


def _by_series(sales: pd.DataFrame, column: str = "units_sold") -> pd.core.groupby.SeriesGroupBy:
    return sales.groupby(list(SERIES_KEYS), sort=False)[column]


def lag(sales: pd.DataFrame, k: int) -> pd.Series:
    """Units sold k-1 periods before the row's period (lag 1 is the row's own period)."""
    return _by_series(sales).shift(k - 1)


def _rolling(sales: pd.DataFrame, values: pd.Series, window: int, how: str, min_periods: int) -> pd.Series:
    """A per-series rolling statistic, computed by pandas' grouped rolling (no Python call per series)."""
    grouped = values.groupby([sales[k] for k in SERIES_KEYS], sort=False).rolling(window, min_periods=min_periods)
    result = getattr(grouped, how)()
    return result.reset_index(level=list(range(len(SERIES_KEYS))), drop=True).reindex(sales.index)


def rolling_mean(sales: pd.DataFrame, window: int) -> pd.Series:
    """Mean units over the `window` periods ending with the row's period."""
    return _rolling(sales, sales["units_sold"], window, "mean", window)


def rolling_std(sales: pd.DataFrame, window: int) -> pd.Series:
    """Standard deviation of units over the `window` periods ending with the row's period."""
    return _rolling(sales, sales["units_sold"], window, "std", window)


def zero_share(sales: pd.DataFrame, window: int) -> pd.Series:
    """Share of the `window` periods ending with the row's period that sold nothing (intermittency)."""
    return _rolling(sales, (sales["units_sold"] <= 0).astype("float64"), window, "mean", window)


def periods_since(flag: pd.Series, sales: pd.DataFrame, cap: int) -> pd.Series:
    """Periods since `flag` last held (0 when it holds now), capped: `cap` means not in the last cap periods."""
    position = _by_series(sales).cumcount().astype("float64")
    last = position.where(flag.to_numpy()).groupby([sales[k] for k in SERIES_KEYS], sort=False).ffill()
    return (position - last).fillna(cap).clip(upper=cap)


def periods_since_sale(sales: pd.DataFrame, cap: int) -> pd.Series:
    return periods_since(sales["units_sold"] > 0, sales, cap)


def stock_left(sales: pd.DataFrame) -> pd.Series:
    """Units on the shelf at the end of the row's period: stock on hand at its opening minus its sales.

    Sales of a period that ends with nothing left were censored: demand may have been higher. A
    period without a row (a closed store) keeps the last known stock, over at most
    PRICE_FILL_LIMIT periods. NaN when the data has no stock column.
    """
    if "stock_on_hand" not in sales:
        return pd.Series(np.nan, index=sales.index)
    left = (sales["stock_on_hand"].astype("float64") - sales["units_sold"]).clip(lower=0.0)
    return left.groupby([sales[k] for k in SERIES_KEYS], sort=False).ffill(limit=PRICE_FILL_LIMIT)


def sold_out_share(sales: pd.DataFrame, left: pd.Series, window: int) -> pd.Series:
    """Share of the `window` periods ending with the row's that ended with an empty shelf (censored sales)."""
    empty = (left <= 0).astype("float64").where(left.notna())
    return _rolling(sales, empty, window, "mean", window)


def price(sales: pd.DataFrame) -> pd.Series:
    """Shelf price in the row's period; NaN when the data has no price column."""
    return sales["price"].astype("float64") if "price" in sales else pd.Series(np.nan, index=sales.index)


def price_ratio(sales: pd.DataFrame, window: int) -> pd.Series:
    """Price relative to its mean over the `window` periods ending with the row's (a discount is < 1)."""
    prices = price(sales)
    return prices / _rolling(sales, prices, window, "mean", 1)


def on_promo(sales: pd.DataFrame) -> pd.Series:
    """1.0 when the SKU was on promotion in the row's period, else 0.0."""
    return sales["on_promo"].astype("float64") if "on_promo" in sales else pd.Series(0.0, index=sales.index)


def periods_since_promo(sales: pd.DataFrame, cap: int) -> pd.Series:
    return periods_since(on_promo(sales) > 0, sales, cap)


def compute_features(
    sales: pd.DataFrame,
    spec: FeatureSpec,
    *,
    first_seen: pd.DataFrame | None = None,
    since: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """History and price features of every series and period with a row in the last `min_history` periods.

    `sales` may be a slice: features of periods from `since` on are exact when it holds the
    `spec.lookback` periods before `since`, and `first_seen` (store_id, sku_id, first_period)
    tells which series existed before the slice.
    """
    long = spec.long_window
    sales = complete_calendar(
        sales, spec.frequency, first_seen=first_seen, trailing=spec.min_history - 1, price_fill_limit=PRICE_FILL_LIMIT
    )
    out = sales[[*SERIES_KEYS]].copy()
    out["event_timestamp"] = pd.to_datetime(sales["date"]).dt.tz_localize("UTC")
    for k in spec.lags:
        out[f"lag_{k}"] = lag(sales, k)
    for w in spec.windows:
        out[f"mean_{w}"] = rolling_mean(sales, w)
    for w in spec.windows:
        out[f"std_{w}"] = rolling_std(sales, w)
    out[f"zero_share_{long}"] = zero_share(sales, long)
    out["periods_since_sale"] = periods_since_sale(sales, long)
    if spec.stock:
        left = stock_left(sales)
        out["stock_left"] = left
        out[f"sold_out_share_{long}"] = sold_out_share(sales, left, long)
    out["price"] = price(sales)
    out[f"price_ratio_{long}"] = price_ratio(sales, long)
    out["on_promo"] = on_promo(sales)
    out["periods_since_promo"] = periods_since_promo(sales, long)
    # A series keeps feature rows while it had a row within the last min_history periods.
    recent = _rolling(sales, sales[OBSERVED].astype("float64"), spec.min_history, "sum", 1) > 0
    out = out[recent.to_numpy()]
    if since is not None:
        out = out[out["event_timestamp"] >= pd.Timestamp(since).tz_localize("UTC")]
    return out.reset_index(drop=True)


def first_seen(sales: pd.DataFrame) -> pd.DataFrame:
    """The first period of each series in `sales`: store_id, sku_id, first_period."""
    firsts = sales.groupby(list(SERIES_KEYS), sort=True)["date"].min().rename("first_period")
    return firsts.reset_index().assign(first_period=lambda f: pd.to_datetime(f["first_period"]))


def series_scale(features: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Per-row target scale, so slow and fast movers train on comparable numbers."""
    return features[spec.scale_feature].to_numpy(dtype="float64") + 1.0
