"""The forecaster bundle: weights plus everything needed to predict, in one folder.

The same bundle is logged to MLflow, imported into the BentoML model store and loaded by the
service, so offline and served predictions come from identical code and numbers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from demandops.frequency import from_ordinals, period_ordinals
from training.calibration import apply_interval_shift
from training.candidates import combine
from training.covariates import future_width
from training.dataset import CATEGORY, Tensors, to_tensors
from training.features import FeatureSpec
from training.lead_time import calibrated_quantiles
from training.model import DemandForecaster

WEIGHTS_FILE = "weights.pt"
META_FILE = "bundle.json"
PREDICT_BATCH_ROWS = 16_384
PLAN_FILE = "statistical_plan.parquet"  # written by model_evaluation when the backtest chose a blend


@dataclass
class BundleMeta:
    horizon: int
    quantiles: list[float]
    stores: list[str]
    skus: list[str]
    n_numeric: int
    hidden: int
    embedding_dim: int
    feature_service: str
    dataset_version: str
    # Bundles from before these were recorded were daily, with these lags and windows.
    frequency: str = "D"
    lags: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7, 14, 28])
    windows: list[int] = field(default_factory=lambda: [7, 28])
    vocabularies: dict[str, list[str]] = field(default_factory=dict)
    # Per-step shifts of the outer quantiles fitted on the validation window (training/calibration.py).
    interval_shift: dict[str, list[float]] = field(default_factory=dict)
    # Quantiles of lead-time demand, calibrated on the validation window (training/lead_time.py):
    # {"levels": [...], "spread": "sum", "volume_edges": [...], "tables": one per volume stratum of H
    # rows of one entry per level, "table": the pooled one}; empty before them.
    lead_time: dict = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    stock: bool = False  # bundles from before the stock features did not read them
    seasonal_period: int | None = None  # the seasonal skip's period; bundles from before it have none

    @property
    def spec(self) -> FeatureSpec:
        """The features this model reads, in periods of its frequency."""
        return FeatureSpec(
            frequency=self.frequency, lags=tuple(self.lags), windows=tuple(self.windows), stock=self.stock
        )


class ForecasterBundle:
    """A trained network with its vocabularies; predicts in units sold."""

    def __init__(self, model: DemandForecaster, meta: BundleMeta, plan: pd.DataFrame | None = None):
        self.model = model.eval()
        self.meta = meta
        # See training/candidates.py; dates parsed once here, not on every served batch.
        self.plan = plan.assign(date=pd.to_datetime(plan["date"])) if plan is not None and len(plan) else None
        self.store_index = {s: i for i, s in enumerate(meta.stores)}
        self.sku_index = {s: i for i, s in enumerate(meta.skus)}

    def unknown_ids(self, store_ids: list[str], sku_ids: list[str]) -> list[str]:
        """Store and SKU ids this model was not trained on, in first-seen order."""
        unknown = [f"store {s}" for s in dict.fromkeys(store_ids) if s not in self.store_index]
        unknown += [f"sku {s}" for s in dict.fromkeys(sku_ids) if s not in self.sku_index]
        return unknown

    def tensors(self, features: pd.DataFrame) -> Tensors:
        """The network's inputs for rows of features with event_timestamp (no labels)."""
        return to_tensors(
            features,
            store_index=self.store_index,
            sku_index=self.sku_index,
            horizon=self.meta.horizon,
            with_target=False,
            spec=self.meta.spec,
            vocab=self.meta.vocabularies,
            seasonal_period=self.meta.seasonal_period,
        )

    @torch.no_grad()
    def predict(self, features: pd.DataFrame, batch_rows: int = PREDICT_BATCH_ROWS) -> np.ndarray:
        """Quantile forecasts (rows, horizon, 3) in units for rows of features with event_timestamp,
        `batch_rows` at a time, so a backtest of a large catalogue holds one batch's activations."""
        if len(features) > batch_rows:
            batches = range(0, len(features), batch_rows)
            return np.concatenate([self.predict(features.iloc[i : i + batch_rows], batch_rows) for i in batches])
        tensors = self.tensors(features)
        scaled = apply_interval_shift(self.model(*tensors.inputs).float(), self.meta.interval_shift)
        units = (scaled.float() * tensors.scale[:, None, None]).clamp(min=0.0).numpy()
        if self.plan is None:
            return units
        weight, statistical = self._planned(features)
        return combine(units.astype("float64"), statistical, weight).astype(units.dtype)

    def _planned(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the network weight (1 for series the network serves alone) and the statistical
        median of each target period (NaN where the plan has none: the network's median stands)."""
        horizon, frequency = self.meta.horizon, self.meta.frequency
        origins = period_ordinals(features["event_timestamp"], frequency)
        targets = pd.DataFrame(
            {
                "row": np.repeat(np.arange(len(features)), horizon),
                "store_id": np.repeat(features["store_id"].to_numpy(), horizon),
                "sku_id": np.repeat(features["sku_id"].to_numpy(), horizon),
                "date": from_ordinals((origins[:, None] + np.arange(1, horizon + 1)).ravel(), frequency),
            }
        )
        joined = targets.merge(self.plan, on=["store_id", "sku_id", "date"], how="left", sort=False)
        statistical = joined["statistical_p50"].to_numpy("float64").reshape(len(features), horizon)
        weights = joined.groupby("row", sort=True)["network_weight"].max().reindex(range(len(features)))
        return weights.fillna(1.0).to_numpy("float64"), statistical

    def lead_time_quantiles(
        self, features: pd.DataFrame, calibration: dict | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The quantile forecasts (rows, H, 3) and quantiles of demand over 1..H periods (rows, H,
        levels) at the levels of `meta.lead_time`, from its tables or from `calibration` (the same
        tables refitted live, training/recalibration.py); raises when the model was trained without them."""
        if not self.meta.lead_time:
            raise ValueError(
                "this model was trained before lead-time quantiles were calibrated: retrain it (demandops run) "
                "to serve reorder points"
            )
        forecast = self.predict(features).astype("float64")
        return forecast, calibrated_quantiles(forecast, calibration or self.meta.lead_time)

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.state_dict(), directory / WEIGHTS_FILE)
        (directory / META_FILE).write_text(json.dumps(asdict(self.meta), indent=2))
        if self.plan is not None:
            self.plan.to_parquet(directory / PLAN_FILE, index=False)
        return directory

    @classmethod
    def load(cls, directory: Path) -> ForecasterBundle:
        meta = BundleMeta(**json.loads((directory / META_FILE).read_text()))
        model = build_model(meta)
        model.load_state_dict(torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        plan = pd.read_parquet(directory / PLAN_FILE) if (directory / PLAN_FILE).is_file() else None
        return cls(model, meta, plan)


def build_model(meta: BundleMeta) -> DemandForecaster:
    return DemandForecaster(
        n_stores=len(meta.stores),
        n_skus=len(meta.skus),
        n_categories=len(meta.vocabularies.get(CATEGORY, [])),
        n_numeric=meta.n_numeric,
        horizon=meta.horizon,
        future_width=future_width(meta.frequency),
        hidden=meta.hidden,
        embedding_dim=meta.embedding_dim,
        seasonal_skip=meta.seasonal_period is not None,
    )
