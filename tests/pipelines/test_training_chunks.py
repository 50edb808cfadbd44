"""The training set built a chunk of series at a time equals the one built whole, sampled or not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from demandops.frequency import period_ordinals
from demandops.settings import DailyCadence, Settings, TrainingSetSettings
from feature_repo.definitions import FEATURE_SERVICE_NAME
from feature_repo.retrieval import historical_features
from pipelines.training_chunks import build_training_set, series_slices
from salesdata.simulator import SimulatedData
from tests.conftest import DAILY, apply_features
from training.dataset import entity_rows, origin_split, rows_with_history, split_by_origin
from training.sales_table import SalesTable
from training.windows import windows_for

CADENCE = DailyCadence()
EVERY_ORIGIN = 10**9
KEYS = ["store_id", "sku_id", "event_timestamp"]


@pytest.fixture
def store(settings: Settings, small_data: SimulatedData):
    return apply_features(settings, small_data)[0]


def _build(store, sales: pd.DataFrame, directory: Path, *, slice_rows: int = 10**9, **settings):
    shuffled = pa.Table.from_pandas(sales.sample(frac=1.0, random_state=0), preserve_index=False)  # any order
    built = build_training_set(
        store, SalesTable(shuffled), directory, spec=DAILY, cadence=CADENCE, settings=TrainingSetSettings(**settings),
        service=FEATURE_SERVICE_NAME, slice_rows=slice_rows,
    )  # fmt: skip
    return built, built.folder.read()


def test_every_origin_in_chunks_equals_the_whole_join(store, small_data: SimulatedData, tmp_path: Path) -> None:
    sales = small_data.sales
    whole = historical_features(store, entity_rows(sales, CADENCE.horizon, DAILY), FEATURE_SERVICE_NAME)
    whole = rows_with_history(whole.sort_values(KEYS, ignore_index=True), DAILY)
    built, chunked = _build(
        store, sales, tmp_path / "chunked", slice_rows=400, older_origin_rows=EVERY_ORIGIN, chunk_rows=500
    )
    assert built.chunks > 3 and built.slices > built.chunks and built.rows == len(whole)
    pd.testing.assert_frame_equal(chunked[whole.columns], whole)
    # The median series' origins, counted from its span alone, are those entity_rows makes.
    per_series = entity_rows(sales, CADENCE.horizon, DAILY).groupby(["store_id", "sku_id"]).size()
    assert built.folder.typical_origins == int(per_series.median())


def test_sampled_origins_do_not_depend_on_the_chunks(store, small_data: SimulatedData, tmp_path: Path) -> None:
    sales, series = small_data.sales, small_data.sales[["store_id", "sku_id"]].drop_duplicates()
    per_series = 4
    sampled = dict(older_origin_rows=per_series * len(series))
    built, one = _build(store, sales, tmp_path / "one", chunk_rows=EVERY_ORIGIN, **sampled)
    chunked_built, chunked = _build(store, sales, tmp_path / "chunked", slice_rows=400, chunk_rows=250, **sampled)
    assert (built.chunks, built.slices, chunked_built.older_origins_per_series) == (1, 1, per_series)
    assert chunked_built.chunks > 3 and chunked_built.slices > 3
    pd.testing.assert_frame_equal(chunked, one)
    part_rows = [pq.ParquetFile(path).metadata.num_rows for path in chunked_built.folder.parts()]
    assert max(part_rows) <= 250  # a slice that would take a part past the chunk waits for the next

    # Every origin of the backtest, the validation window and their gaps is kept; at most 4 before them.
    windows = windows_for(built.folder.typical_origins, CADENCE)
    tail = windows.backtest_origins + windows.validation_origins + 2 * CADENCE.horizon
    every = rows_with_history(
        historical_features(store, entity_rows(sales, CADENCE.horizon, DAILY), FEATURE_SERVICE_NAME), DAILY
    )
    tail_start = period_ordinals([sales["date"].max()], "D")[0] - CADENCE.horizon - tail + 1
    recent = period_ordinals(every["event_timestamp"], "D") >= tail_start
    older = period_ordinals(one["event_timestamp"], "D") < tail_start
    assert len(one) - older.sum() == recent.sum()
    assert one[older].groupby(["store_id", "sku_id"]).size().max() == per_series
    # The split the backtest and the training job read from the folder is the whole set's split.
    last_fit, first_holdout = origin_split(built.folder.origins(), CADENCE.horizon, windows.backtest_origins)
    fit, holdout = split_by_origin(one, CADENCE.horizon, windows.backtest_origins)
    pd.testing.assert_frame_equal(built.folder.read(until=last_fit), fit)
    pd.testing.assert_frame_equal(built.folder.read(since=first_holdout), holdout)
    assert np.array_equal(built.folder.series().to_numpy(), series.sort_values(["store_id", "sku_id"]).to_numpy())


def test_slices_hold_whole_series_and_at_most_their_rows() -> None:
    bounds = np.array([0, 3, 10, 12, 20, 21])  # five series of 3, 7, 2, 8 and 1 rows
    assert series_slices(bounds, 10) == [(0, 10), (10, 20), (20, 21)]
    assert series_slices(bounds, 5) == [(0, 3), (3, 10), (10, 12), (12, 20), (20, 21)]  # over the limit: alone
    assert series_slices(bounds, 100) == [(0, 21)] and series_slices(bounds, 1) == [
        (0, 3),
        (3, 10),
        (10, 12),
        (12, 20),
        (20, 21),
    ]
    assert series_slices(np.array([0]), 5) == []
