"""The point-in-time training set, built and written a chunk of series at a time.

Raw sales arrive as one Arrow table sorted by series (training/sales_table.py: strings packed, a
third of what pandas takes). A slice of whole series at a time becomes pandas, then entity rows (every complete origin,
training/dataset.py), of which the origins training/origins.py picks are kept; once a chunk's worth
is pending, Feast joins their features in one retrieval (each one reads the feature files of the
whole span, so fewer, larger retrievals are faster) and the rows with history are written as one
part of the training set's folder. Memory follows the slice and the chunk; which rows are kept
does not depend on either (tests/pipelines/test_training_chunks.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from feast import FeatureStore

from demandops.contract import SERIES_KEYS
from demandops.frequency import period_ordinals
from demandops.settings import Cadence, TrainingSetSettings
from feature_repo.retrieval import historical_features
from training.dataset import entity_rows, no_history_error
from training.features import FeatureSpec
from training.origins import PERIODS_PER_YEAR, origin_pool
from training.sales_table import SalesTable
from training.training_folder import TrainingSetFolder
from training.windows import typical_complete_origins, windows_for

# Sales rows handed to pandas at a time. Small beside the chunk, so that the parts are about
# chunk_rows each: with 1M, 2,500 daily series made one part of 1.67M rows (8.4 GB in training).
SALES_ROWS_PER_SLICE = 250_000


@dataclass
class TrainingSetBuilt:
    folder: TrainingSetFolder
    series: int
    older_origins_per_series: int
    rows: int = 0
    rows_without_history: int = 0
    chunks: int = 0
    slices: int = 0
    origins: set = field(default_factory=set)
    nulls: pd.Series | None = None  # null count of each feature, summed over the chunks

    def retrieve(self, store: FeatureStore, entities: pd.DataFrame, spec: FeatureSpec, service: str) -> None:
        """Join the features of `entities` and write the rows with history as the next part."""
        joined = historical_features(store, entities, service)
        joined = joined.sort_values([*SERIES_KEYS, "event_timestamp"], ignore_index=True)
        kept = joined[joined[spec.scale_feature].notna()].reset_index(drop=True)
        self.folder.write_part(self.chunks, kept)
        nulls = kept[spec.feature_names].isna().sum()
        self.nulls = nulls if self.nulls is None else self.nulls + nulls
        self.rows, self.rows_without_history = (
            self.rows + len(kept),
            self.rows_without_history + len(joined) - len(kept),
        )
        self.origins.update(kept["event_timestamp"].unique())
        self.chunks += 1

    def feature_null_share(self) -> float:
        return round(float((self.nulls / max(self.rows, 1)).mean()), 4) if self.nulls is not None else 1.0


def build_training_set(
    store: FeatureStore, sales: SalesTable, directory: Path, *, spec: FeatureSpec, cadence: Cadence,
    settings: TrainingSetSettings, service: str, slice_rows: int = SALES_ROWS_PER_SLICE,
) -> TrainingSetBuilt:  # fmt: skip
    """Write the training set of `sales` into a new folder at `directory`, chunk by chunk."""
    table, bounds = sales.table, sales.bounds
    dates = table["date"]
    first = period_ordinals(dates.take(bounds[:-1]).to_pandas(), spec.frequency)
    last = period_ordinals(dates.take(bounds[1:] - 1).to_pandas(), spec.frequency)
    typical = typical_complete_origins(last - first + 1, cadence.horizon, spec.min_history)
    directory.mkdir(parents=True, exist_ok=False)
    built = TrainingSetBuilt(
        TrainingSetFolder(directory, typical_origins=typical),
        series=len(bounds) - 1,
        older_origins_per_series=max(1, settings.older_origin_rows // max(len(bounds) - 1, 1)),
    )
    windows = windows_for(typical, cadence)
    tail = windows.backtest_origins + windows.validation_origins + 2 * cadence.horizon
    pool = dict(
        frequency=spec.frequency,
        tail_start=int(last.max(initial=0)) - cadence.horizon - tail + 1,
        per_series=built.older_origins_per_series,
        half_life=settings.recency_half_life_years * PERIODS_PER_YEAR[spec.frequency],
    )
    pending: list[pd.DataFrame] = []
    for start, stop in series_slices(bounds, slice_rows):
        rows = origin_pool(entity_rows(table.slice(start, stop - start).to_pandas(), cadence.horizon, spec), **pool)
        built.slices += 1
        if pending and sum(map(len, pending)) + len(rows) > settings.chunk_rows:  # a part stays within the chunk
            built.retrieve(store, pd.concat(pending, ignore_index=True), spec, service)
            pending = []
        pending.append(rows)
    if sum(map(len, pending)):
        built.retrieve(store, pd.concat(pending, ignore_index=True), spec, service)
    if built.rows == 0 and built.rows_without_history:
        raise no_history_error(built.rows_without_history, spec)
    return built


def series_slices(bounds: np.ndarray, most_rows: int) -> list[tuple[int, int]]:
    """Row ranges of consecutive whole series, each at most `most_rows` rows (or one series)."""
    slices, first, count = [], 0, len(bounds) - 1
    while first < count:
        stop = int(np.searchsorted(bounds, bounds[first] + most_rows, side="right")) - 1
        stop = min(max(stop, first + 1), count)
        slices.append((int(bounds[first]), int(bounds[stop])))
        first = stop
    return slices
