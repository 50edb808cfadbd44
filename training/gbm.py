"""The gradient-boosting baseline: scikit-learn HistGradientBoostingRegressor with quantile loss.

The family that won the M5 competition, on the same features and known-future covariates as the
network. One model per quantile serves every horizon step: each (row, step) pair is one example
with the step and that step's covariates as inputs, and the target is scaled by the series
level just as the network's is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from training.bundle import BundleMeta
from training.dataset import label_columns, to_tensors
from training.features import series_scale
from training.training_folder import RowsUpTo

MAX_CATEGORIES = 255  # HistGradientBoosting's limit for native categorical splits
PREDICT_CHUNK_ROWS = 20_000  # rows expanded to (row, step) examples at once when predicting


@dataclass(frozen=True)
class GBMConfig:
    max_iter: int = 300
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    max_examples: int = 300_000  # (row, step) examples sampled for fitting; bounds time and memory
    seed: int = 0


class QuantileGBM:
    """p10/p50/p90 for each horizon step from three gradient-boosted quantile regressors."""

    def __init__(self, meta: BundleMeta, config: GBMConfig | None = None):
        self.meta = meta
        self.config = config or GBMConfig()
        self.models: list[HistGradientBoostingRegressor] = []
        self.examples, self.subsampled = 0, False

    def _design(self, rows: pd.DataFrame, pairs: np.ndarray | None = None) -> np.ndarray:
        """(examples, features): a row's inputs, then the step and that step's covariates, for each
        (row, step) pair numbered row * horizon + step - 1; every pair of every row by default.
        Only the rows the pairs name are read, so a sample of a large set costs what the sample does."""
        horizon = self.meta.horizon
        pairs = np.arange(len(rows) * horizon) if pairs is None else pairs
        needed, position = np.unique(pairs // horizon, return_inverse=True)
        tensors = to_tensors(
            rows.iloc[needed],
            store_index={s: i for i, s in enumerate(self.meta.stores)},
            sku_index={s: i for i, s in enumerate(self.meta.skus)},
            horizon=horizon,
            with_target=False,
            spec=self.meta.spec,
            vocab=self.meta.vocabularies,
        )
        ids = np.stack([tensors.store.numpy(), tensors.sku.numpy(), tensors.category.numpy()], axis=1)
        per_row = np.concatenate([ids, tensors.numeric.numpy()], axis=1)
        step = pairs % horizon
        future = tensors.future.numpy()[position, step]
        return np.concatenate([per_row[position], (step + 1)[:, None], future], axis=1)

    def _categorical_mask(self, width: int) -> list[bool] | None:
        """Store, SKU and category split as categories; as plain codes beyond the category limit."""
        sizes = [len(self.meta.stores), len(self.meta.skus), len(self.meta.vocabularies.get("sku_category", [])) + 1]
        return None if max(sizes) > MAX_CATEGORIES else [True] * 3 + [False] * (width - 3)

    def fit(self, rows: pd.DataFrame | RowsUpTo) -> QuantileGBM:
        """Fit on at most `max_examples` (row, step) pairs drawn at random; `examples` and
        `subsampled` say what it learnt from. Only the rows the sample names are read."""
        horizon = self.meta.horizon
        pairs = np.arange(len(rows) * horizon)
        if len(pairs) > self.config.max_examples:
            rng = np.random.default_rng(self.config.seed)
            pairs = np.sort(rng.choice(len(pairs), self.config.max_examples, replace=False))
        self.examples, self.subsampled = len(pairs), len(pairs) < len(rows) * horizon
        needed, position = np.unique(pairs // horizon, return_inverse=True)
        sampled, step = rows.take(needed), pairs % horizon  # only the rows the sample reads
        labels = sampled[label_columns(horizon)].to_numpy("float64") / series_scale(sampled, self.meta.spec)[:, None]
        target = labels[position, step]
        design = self._design(sampled, position * horizon + step)
        mask = self._categorical_mask(design.shape[1])
        self.models = [
            HistGradientBoostingRegressor(
                loss="quantile",
                quantile=level,
                max_iter=self.config.max_iter,
                learning_rate=self.config.learning_rate,
                max_leaf_nodes=self.config.max_leaf_nodes,
                categorical_features=mask,
                early_stopping=True,
                random_state=self.config.seed,
            ).fit(design, target)
            for level in self.meta.quantiles
        ]
        return self

    def predict(self, rows: pd.DataFrame, chunk_rows: int = PREDICT_CHUNK_ROWS) -> np.ndarray:
        """(rows, horizon, 3) in units; quantiles sorted, since separate regressors may cross.
        Rows are expanded per step `chunk_rows` at a time, so memory does not grow with the rows."""
        # float32, as the network forecasts: (rows, H, 3) is 0.35 GB in float64 at 25,000 series
        out = np.empty((len(rows), self.meta.horizon, len(self.models)), dtype="float32")
        for start in range(0, len(rows), chunk_rows):
            chunk = rows.iloc[start : start + chunk_rows]
            design = self._design(chunk)
            scale = series_scale(chunk, self.meta.spec)[:, None, None]
            stacked = np.stack([m.predict(design) for m in self.models], axis=-1)
            stacked = stacked.reshape(len(chunk), self.meta.horizon, -1)
            out[start : start + len(chunk)] = np.sort(np.clip(stacked * scale, 0.0, None), axis=-1)
        return out
