"""Static attributes of stores and SKUs from the master files, as the Feast static feature views read them."""

from __future__ import annotations

import pandas as pd

# Static rows hold for every entity row after this stamp; their views never expire.
STATIC_TIMESTAMP = pd.Timestamp("1970-01-01", tz="UTC")


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    values = frame[column] if column in frame else pd.Series(None, index=frame.index, dtype="object")
    return values.astype("string").fillna("unknown").astype(str)


def store_attributes(stores: pd.DataFrame) -> pd.DataFrame:
    """store_id, store_size, store_region ("unknown" where the master says nothing)."""
    return pd.DataFrame(
        {
            "store_id": stores["store_id"].astype(str),
            "store_size": _text(stores, "size"),
            "store_region": _text(stores, "region"),
            "event_timestamp": STATIC_TIMESTAMP,
        }
    )


def sku_attributes(skus: pd.DataFrame) -> pd.DataFrame:
    """sku_id, sku_category, sku_launch_date (ISO date, "" when unknown)."""
    launch = pd.to_datetime(skus["launch_date"], errors="coerce") if "launch_date" in skus else None
    return pd.DataFrame(
        {
            "sku_id": skus["sku_id"].astype(str),
            "sku_category": _text(skus, "category"),
            "sku_launch_date": "" if launch is None else launch.dt.strftime("%Y-%m-%d").fillna(""),
            "event_timestamp": STATIC_TIMESTAMP,
        }
    )


def with_static(frame: pd.DataFrame, stores: pd.DataFrame, skus: pd.DataFrame) -> pd.DataFrame:
    """Rows of `frame` with their store and SKU attributes, as the point-in-time join attaches them."""
    return frame.merge(store_attributes(stores).drop(columns="event_timestamp"), on="store_id", how="left").merge(
        sku_attributes(skus).drop(columns="event_timestamp"), on="sku_id", how="left"
    )
