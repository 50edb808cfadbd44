"""The point-in-time training set, built and written a chunk of series at a time.

Each chunk makes its entity rows (every complete origin of its series, training/dataset.py), keeps
the origins training/origins.py picks, asks Feast for their features and writes the rows that have
history as one part of the training set's folder. Memory follows the chunk; which rows are kept
does not depend on the chunking (tests/pipelines/test_training_chunks.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
from training.training_folder import TrainingSetFolder
from training.windows import typical_complete_origins, windows_for


@dataclass
class TrainingSetBuilt:
    folder: TrainingSetFolder
    series: int
    older_origins_per_series: int
    series_per_chunk: int
    rows: int = 0
    rows_without_history: int = 0
    chunks: int = 0
    origins: set = field(default_factory=set)
    nulls: pd.Series | None = None  # null count of each feature, summed over the chunks

    def add(self, joined: pd.DataFrame, kept: pd.DataFrame, spec: FeatureSpec) -> None:
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
    store: FeatureStore, sales: pd.DataFrame, folder: TrainingSetFolder, *, spec: FeatureSpec, cadence: Cadence,
    settings: TrainingSetSettings, service: str,
) -> TrainingSetBuilt:  # fmt: skip
    """Write the training set of `sales` into `folder` (its typical_origins already set), chunk by chunk."""
    horizon, keys = cadence.horizon, list(SERIES_KEYS)
    windows = windows_for(folder.typical_origins, cadence)
    tail = windows.backtest_origins + windows.validation_origins + 2 * horizon
    tail_start = int(period_ordinals([sales["date"].max()], spec.frequency)[0]) - horizon - tail + 1
    codes = sales.groupby(keys, sort=True).ngroup().to_numpy()
    series = int(codes.max()) + 1 if len(codes) else 0
    per_series = max(1, settings.older_origin_rows // max(series, 1))
    per_chunk = max(1, settings.chunk_rows // max(1, min(folder.typical_origins, tail + per_series)))
    built = TrainingSetBuilt(folder, series=series, older_origins_per_series=per_series, series_per_chunk=per_chunk)
    order = np.argsort(codes, kind="stable")
    edges = np.searchsorted(codes[order], np.arange(0, series + per_chunk, per_chunk))
    half_life = settings.recency_half_life_years * PERIODS_PER_YEAR[spec.frequency]
    for start, stop in zip(edges[:-1], edges[1:], strict=False):
        entities = entity_rows(sales.iloc[order[start:stop]], horizon, spec)
        entities = origin_pool(
            entities, frequency=spec.frequency, tail_start=tail_start, per_series=per_series, half_life=half_life
        )
        if entities.empty:
            continue
        joined = historical_features(store, entities, service).sort_values(
            [*keys, "event_timestamp"], ignore_index=True
        )
        built.add(joined, joined[joined[spec.scale_feature].notna()].reset_index(drop=True), spec)
    if built.rows == 0 and built.rows_without_history:
        raise no_history_error(built.rows_without_history, spec)
    return built


def new_folder(folder_path, sales: pd.DataFrame, cadence: Cadence, spec: FeatureSpec) -> TrainingSetFolder:
    """An empty training-set folder, told how many complete origins the median series of `sales` has."""
    typical = typical_complete_origins(sales, cadence.horizon, spec.min_history, spec.frequency)
    folder_path.mkdir(parents=True, exist_ok=False)
    return TrainingSetFolder(directory=folder_path, typical_origins=typical)
