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

MAX_CATEGORIES = 255  # HistGradientBoosting's limit for native categorical splits


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

    def _design(self, rows: pd.DataFrame) -> np.ndarray:
        """(rows * horizon, features): row inputs repeated per step, then the step and its covariates."""
        meta, horizon = self.meta, self.meta.horizon
        tensors = to_tensors(
            rows,
            store_index={s: i for i, s in enumerate(meta.stores)},
            sku_index={s: i for i, s in enumerate(meta.skus)},
            horizon=horizon,
            with_target=False,
            spec=meta.spec,
            vocab=meta.vocabularies,
        )
        ids = np.stack([tensors.store.numpy(), tensors.sku.numpy(), tensors.category.numpy()], axis=1)
        per_row = np.concatenate([ids, tensors.numeric.numpy()], axis=1)
        future = tensors.future.numpy()
        steps = np.tile(np.arange(1, horizon + 1), len(rows))[:, None]
        return np.concatenate([np.repeat(per_row, horizon, axis=0), steps, future.reshape(-1, future.shape[-1])], 1)

    def _categorical_mask(self, width: int) -> list[bool] | None:
        """Store, SKU and category split as categories; as plain codes beyond the category limit."""
        sizes = [len(self.meta.stores), len(self.meta.skus), len(self.meta.vocabularies.get("sku_category", [])) + 1]
        return None if max(sizes) > MAX_CATEGORIES else [True] * 3 + [False] * (width - 3)

    def fit(self, rows: pd.DataFrame) -> QuantileGBM:
        horizon = self.meta.horizon
        design = self._design(rows)
        target = (
            rows[label_columns(horizon)].to_numpy("float64") / series_scale(rows, self.meta.spec)[:, None]
        ).ravel()
        rng = np.random.default_rng(self.config.seed)
        if len(target) > self.config.max_examples:
            keep = np.sort(rng.choice(len(target), self.config.max_examples, replace=False))
            design, target = design[keep], target[keep]
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

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        """(rows, horizon, 3) in units; quantiles sorted, since separate regressors may cross."""
        design = self._design(rows)
        scale = series_scale(rows, self.meta.spec)[:, None, None]
        stacked = np.stack([m.predict(design) for m in self.models], axis=-1).reshape(len(rows), self.meta.horizon, -1)
        return np.sort(np.clip(stacked * scale, 0.0, None), axis=-1)
