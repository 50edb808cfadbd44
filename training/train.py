"""The training loop: whole-tensor batches, pinball loss, early stopping on a time-based window."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from training.bundle import BundleMeta, ForecasterBundle, build_model
from training.dataset import Tensors, split_by_origin, to_tensors, vocabularies
from training.device import Accelerator, pick_accelerator
from training.features import DAILY, FeatureSpec
from training.model import pinball_loss


@dataclass(frozen=True)
class TrainConfig:
    horizon: int
    quantiles: tuple[float, float, float] = (0.1, 0.5, 0.9)
    epochs: int = 30
    batch_size: int = 512
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    hidden: int = 128
    embedding_dim: int = 8
    patience: int = 5
    min_batches_per_epoch: int = 8  # small datasets would otherwise take one optimizer step per epoch
    validation_origins: int = 28
    seed: int = 0
    device: str = "auto"
    compile: bool = False


@dataclass
class TrainResult:
    bundle: ForecasterBundle
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    device: str = "cpu"


EpochCallback = Callable[[int, dict[str, float]], None]


def train_forecaster(
    training_set: pd.DataFrame,
    config: TrainConfig,
    *,
    feature_service: str,
    dataset_version: str,
    spec: FeatureSpec = DAILY,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Fit a DemandForecaster on a training set of features and labels; returns the best bundle."""
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    accelerator = pick_accelerator(config.device)
    fit_rows, val_rows = split_by_origin(training_set, config.horizon, config.validation_origins)
    stores = sorted(training_set["store_id"].unique())
    skus = sorted(training_set["sku_id"].unique())
    index = {
        "store_index": {s: i for i, s in enumerate(stores)},
        "sku_index": {s: i for i, s in enumerate(skus)},
    }
    vocab = vocabularies(training_set)
    fit = to_tensors(fit_rows, horizon=config.horizon, with_target=True, spec=spec, vocab=vocab, **index)
    val = to_tensors(val_rows, horizon=config.horizon, with_target=True, spec=spec, vocab=vocab, **index)

    meta = BundleMeta(
        horizon=config.horizon,
        quantiles=list(config.quantiles),
        stores=stores,
        skus=skus,
        n_numeric=fit.numeric.shape[1],
        hidden=config.hidden,
        embedding_dim=config.embedding_dim,
        feature_service=feature_service,
        dataset_version=dataset_version,
        frequency=spec.frequency,
        lags=list(spec.lags),
        windows=list(spec.windows),
        vocabularies=vocab,
    )
    model = build_model(meta).to(accelerator.device)
    step_model = torch.compile(model) if config.compile else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    quantiles = torch.tensor(config.quantiles, device=accelerator.device)

    if accelerator.is_cuda:  # pinned host memory makes the non_blocking copies truly asynchronous
        fit = fit.pin_memory()
    val_device = val.to(accelerator.device)
    batch_size = min(config.batch_size, max(1, math.ceil(len(fit) / config.min_batches_per_epoch)))
    generator = torch.Generator().manual_seed(config.seed)
    result = TrainResult(bundle=ForecasterBundle(model, meta), device=str(accelerator.device))
    best_loss, best_state, stale = math.inf, copy.deepcopy(model.state_dict()), 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        train_loss = _run_epoch(step_model, fit, optimizer, quantiles, accelerator, batch_size, generator)
        val_loss = _evaluate(step_model, val_device, quantiles, accelerator)
        metrics = {"train_pinball": train_loss, "val_pinball": val_loss}
        result.history.append(metrics)
        if on_epoch:
            on_epoch(epoch, metrics)
        if val_loss < best_loss - 1e-6:
            best_loss, best_state, stale, result.best_epoch = (
                val_loss,
                copy.deepcopy(model.state_dict()),
                0,
                epoch,
            )
        else:
            stale += 1
            if stale >= config.patience:
                break
    model.load_state_dict(best_state)
    result.bundle = ForecasterBundle(model.to("cpu"), meta)
    return result


def _run_epoch(
    model,
    data: Tensors,
    optimizer,
    quantiles,
    accelerator: Accelerator,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    order = torch.randperm(len(data), generator=generator)
    total, count = 0.0, 0
    for start in range(0, len(data), batch_size):
        batch = data.take(order[start : start + batch_size]).to(accelerator.device, non_blocking=True)
        with accelerator.autocast():
            pred = model(batch.store, batch.sku, batch.numeric, batch.calendar)
        loss = pinball_loss(pred.float(), batch.target, quantiles)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
        count += len(batch)
    return total / count


@torch.no_grad()
def _evaluate(model, data: Tensors, quantiles, accelerator: Accelerator) -> float:
    model.eval()
    with accelerator.autocast():
        pred = model(data.store, data.sku, data.numeric, data.calendar)
    return pinball_loss(pred.float(), data.target, quantiles).item()
