"""The Parquet files the feature views read: one per period of series features, plus static attributes.

One file per period is what makes materialization and recomputation incremental: a new period
adds a file and touches no other.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

PERIODS_DIRNAME = "sales_features"
PERIOD_GLOB = f"{PERIODS_DIRNAME}/*.parquet"
STORE_ATTRIBUTES = "store_attributes.parquet"
SKU_ATTRIBUTES = "sku_attributes.parquet"


def period_file(source_dir: Path, period: str) -> Path:
    return source_dir / PERIODS_DIRNAME / f"{period}.parquet"


def write_period_features(source_dir: Path, features: pd.DataFrame) -> list[str]:
    """One file per period of `features`, replacing only those periods; returns the periods written."""
    (source_dir / PERIODS_DIRNAME).mkdir(parents=True, exist_ok=True)
    periods = []
    for stamp, frame in features.groupby("event_timestamp", sort=True):
        period = stamp.date().isoformat()
        frame.reset_index(drop=True).to_parquet(period_file(source_dir, period), index=False)
        periods.append(period)
    return periods


def write_static_features(source_dir: Path, stores: pd.DataFrame, skus: pd.DataFrame) -> None:
    source_dir.mkdir(parents=True, exist_ok=True)
    stores.to_parquet(source_dir / STORE_ATTRIBUTES, index=False)
    skus.to_parquet(source_dir / SKU_ATTRIBUTES, index=False)


def count_period_rows(source_dir: Path, start: date, end: date) -> int:
    """Feature rows in the period files from start to end (what one materialization reads)."""
    files = [
        p for p in (source_dir / PERIODS_DIRNAME).glob("*.parquet") if start.isoformat() <= p.stem <= end.isoformat()
    ]
    return sum(pq.read_metadata(p).num_rows for p in files)
