"""Features written batch by batch equal the features of the whole span written at once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from feature_repo.sources import PERIODS_DIRNAME
from pipelines.feature_batches import batch_spans, periods_per_batch, write_features
from pipelines.lake import RAW_SALES, Lake
from tests.conftest import DAILY


def _lake(root: Path, sales: pd.DataFrame) -> Lake:
    """A lake holding each day of `sales` as a validated raw_sales partition, as the gate writes them."""
    lake = Lake(root)
    lake.asset_dir([RAW_SALES]).mkdir(parents=True)
    for day, frame in sales.groupby("date"):
        frame.reset_index(drop=True).to_parquet(lake.partition_file([RAW_SALES], day.date().isoformat()))
    return lake


def _written(source_dir: Path) -> pd.DataFrame:
    files = sorted((source_dir / PERIODS_DIRNAME).glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def test_spans_cover_the_range_once_in_order() -> None:
    spans = batch_spans(date(2024, 1, 30), date(2024, 3, 2), "D", 10)
    assert spans[0] == (date(2024, 1, 30), date(2024, 2, 8)) and spans[-1] == (date(2024, 2, 29), date(2024, 3, 2))
    assert all(b[0] == pd.Timestamp(a[1]).date() + pd.Timedelta(days=1) for a, b in zip(spans, spans[1:], strict=False))
    assert batch_spans(date(2024, 1, 30), date(2024, 3, 2), "D", 10**9) == [(date(2024, 1, 30), date(2024, 3, 2))]
    monthly = batch_spans(date(2023, 1, 1), date(2023, 12, 1), "M", 5)
    assert monthly == [(date(2023, 1, 1), date(2023, 5, 1)), (date(2023, 6, 1), date(2023, 10, 1)),
                       (date(2023, 11, 1), date(2023, 12, 1))]  # fmt: skip


def test_features_in_batches_equal_the_whole_span(small_sales: pd.DataFrame, tmp_path: Path) -> None:
    days = sorted(small_sales["date"].unique())
    start, end = pd.Timestamp(days[0]).date(), pd.Timestamp(days[-1]).date()
    whole_lake, batched_lake = _lake(tmp_path / "a", small_sales), _lake(tmp_path / "b", small_sales)
    whole = write_features(whole_lake, tmp_path / "whole", DAILY, start, end, batch_periods=len(days))
    batched = write_features(batched_lake, tmp_path / "batched", DAILY, start, end, batch_periods=13)
    assert (whole.batches, batched.batches) == (1, -(-len(days) // 13))
    assert batched.periods == whole.periods and batched.rows == whole.rows > 0
    assert batched.null_share() == whole.null_share()
    pd.testing.assert_frame_equal(_written(tmp_path / "batched"), _written(tmp_path / "whole"))
    first_seen = [pd.read_parquet(lake.first_seen().path) for lake in (whole_lake, batched_lake)]
    pd.testing.assert_frame_equal(*first_seen)
    # Batches are sized by the newest period's rows (the catalogue as it is now), at least one period.
    newest = int((small_sales["date"] == days[-1]).sum())
    assert periods_per_batch(whole_lake, batch_rows=10 * newest + 1) == 10
    assert periods_per_batch(whole_lake, batch_rows=1) == 1
