"""Features of a span of periods computed and written batch by batch, so that memory follows the
batch, not the catalogue's whole history.

Each batch reads its own periods plus the lookback its features need, and the first-seen table as
the earlier batches left it: exactly what an incremental run of those periods reads, which
tests/training/test_incremental_features.py shows equals a full recomputation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from demandops.frequency import from_ordinals, period_ordinals, shift_period
from feature_repo.sources import write_period_features
from pipelines.lake import RAW_SALES, Lake
from training.features import FeatureSpec, compute_features

# Sales rows per batch: at 25,000 daily series, 80 periods (plus their lookback) at a time.
FEATURE_BATCH_ROWS = 2_000_000


@dataclass
class FeaturesWritten:
    rows: int = 0
    sales_rows_read: int = 0
    batches: int = 0
    periods: list[str] = field(default_factory=list)
    nulls: pd.Series | None = None  # null count per reported feature, summed over the batches

    def null_share(self) -> dict[str, float]:
        return (self.nulls / max(self.rows, 1)).round(4).to_dict() if self.nulls is not None else {}


def batch_spans(start: date, end: date, frequency: str, periods_per_batch: int) -> list[tuple[date, date]]:
    """start..end cut into consecutive spans of at most `periods_per_batch` periods."""
    first, last = period_ordinals([start, end], frequency)
    starts = np.arange(first, last + 1, periods_per_batch)
    ends = np.minimum(starts + periods_per_batch - 1, last)
    labels = zip(from_ordinals(starts, frequency), from_ordinals(ends, frequency), strict=True)
    return [(a.date(), b.date()) for a, b in labels]


def periods_per_batch(lake: Lake, batch_rows: int = FEATURE_BATCH_ROWS) -> int:
    return max(1, batch_rows // max(lake.raw_sales_rows_per_period(), 1))


def write_features(
    lake: Lake,
    source_dir: Path,
    spec: FeatureSpec,
    start: date,
    end: date,
    *,
    batch_periods: int,
    progress: Callable[[int, int], object] = lambda done, total: None,
) -> FeaturesWritten:
    """Features of every period from start to end into Feast's period files, `batch_periods` at a time;
    the first-seen table is updated with every sales row read. `progress` hears batches done of all."""
    written, reported = FeaturesWritten(), spec.history_features + spec.price_features
    first_seen = lake.first_seen()
    spans = list(batch_spans(start, end, spec.frequency, batch_periods))
    for done, (first, last) in enumerate(spans):
        progress(done, len(spans))
        history_start = shift_period(first, -spec.lookback, spec.frequency).date()
        if not lake.raw_sales_files_between(history_start, last):
            continue  # a long quarantined stretch: no period of it has features
        sales = lake.raw_sales_between(history_start, last)
        features = compute_features(sales, spec, first_seen=first_seen.read(), since=pd.Timestamp(first))
        first_seen.update(sales)
        written.periods += write_period_features(source_dir, features)
        nulls = features[reported].isna().sum()
        written.nulls = nulls if written.nulls is None else written.nulls + nulls
        written.rows += len(features)
        written.sales_rows_read += len(sales)
        written.batches += 1
    progress(len(spans), len(spans))
    if not written.batches:
        raise FileNotFoundError(
            f"no validated raw_sales partitions in {lake.asset_dir([RAW_SALES])} from {start} to {end}"
        )
    return written
