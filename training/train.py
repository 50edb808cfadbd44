"""The training loop: whole-tensor batches, pinball loss, early stopping on a time-based window.

The same code runs on one CPU, one GPU (bf16 autocast, pinned host tensors, non-blocking
copies, optional torch.compile) or several processes under torchrun (DDP; see
training/distributed.py). With a checkpoint folder it saves after every epoch and resumes from
the last checkpoint, reaching the same weights as an uninterrupted run.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn.parallel import DistributedDataParallel

from training.bundle import BundleMeta, ForecasterBundle, build_model
from training.calibration import apply_interval_shift, fit_interval_shift
from training.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from training.dataset import Tensors
from training.device import Accelerator, pick_accelerator
from training.distributed import SINGLE_PROCESS, Worker
from training.features import FeatureSpec
from training.lead_time import calibration
from training.model import pinball_loss
from training.origins import epoch_windows
from training.training_rows import PreparedRows, Rows, part_tensors, prepare_rows

DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:\d+)?)$"
EVAL_BATCH_ROWS = 16_384  # validation rows forecast at once


@dataclass(frozen=True, kw_only=True)
class Hyperparameters:
    """What a data scientist tunes: the `trained_model` Launchpad config is made from these fields."""

    epochs: int = field(default=30, metadata={"help": "Most epochs; training stops earlier without progress.", "ge": 1})
    batch_size: int = field(default=512, metadata={"help": "Training rows per optimizer step.", "ge": 1})
    learning_rate: float = field(default=3e-3, metadata={"help": "AdamW's step size.", "gt": 0, "le": 1})
    hidden: int = field(default=128, metadata={"help": "Width of the network's hidden layers.", "ge": 1})
    embedding_dim: int = field(default=8, metadata={"help": "Size of the store, SKU and category embeddings.", "ge": 1})
    patience: int = field(
        default=5, metadata={"help": "Epochs without a better validation loss before stopping.", "ge": 1}
    )
    min_batches_per_epoch: int = field(
        default=8, metadata={"help": "Small datasets would otherwise take one optimizer step per epoch.", "ge": 1}
    )
    seed: int = field(default=0, metadata={"help": "Seeds weights, shuffling and dropout: same seed, same model."})
    device: str = field(
        default="auto",
        metadata={
            "help": "auto (CUDA, MPS, else CPU), cuda, cuda:N, mps or cpu.",
            "pattern": r"^(auto|cpu|mps|cuda(:\d+)?)$",
        },
    )
    compile: bool = field(default=False, metadata={"help": "torch.compile the network (pays off on GPUs)."})
    seasonal_skip: bool = field(
        default=False,
        metadata={
            "help": "Mix each step's median with its seasonal-naive value (training/model.py). Off by default: "
            "it forecasts Tourism and M1 far better, but its bands under-cover series it has not seen."
        },
    )
    calibrate_intervals: bool = field(
        default=True, metadata={"help": "Shift the outer quantiles to hold on the validation window."}
    )
    windows_per_series: int = field(
        default=0,
        metadata={
            "help": "Fitting origins each epoch draws per series, recent ones likelier (training/origins.py); "
            "0 takes every fitting row every epoch, up to rows_per_epoch.",
            "ge": 0,
        },
    )
    # A cap, so that an epoch costs about the same at any catalogue size (about 12 s on 2 cores):
    # below it (the 200-series default catalogue, 125,000 fitting rows) every row is seen every
    # epoch; above it, each series gets an equal share of windows (12 at 25,000 series).
    validation_rows: int = field(
        default=100_000,
        metadata={
            "help": "Most validation rows the early stopping scores each epoch, drawn once from the seed; "
            "the intervals are still calibrated on every validation row. 0 scores every row.",
            "ge": 0,
        },
    )
    rows_per_epoch: int = field(
        default=300_000,
        metadata={
            "help": "Most fitting rows an epoch draws when windows_per_series is 0: a larger training set gives "
            "each series an equal share of windows, recent ones likelier; 0 takes every row.",
            "ge": 0,
        },
    )


@dataclass(frozen=True, kw_only=True)
class TrainConfig(Hyperparameters):
    """The hyperparameters, plus what the data's cadence fixes."""

    horizon: int
    quantiles: tuple[float, float, float] = (0.1, 0.5, 0.9)
    seasonal_period: int | None = None  # periods per season (the cadence's), read by the seasonal skip
    validation_origins: int = 28
    weight_decay: float = 1e-4
    recency_half_life: float = 365.0  # periods back after which an origin is half as likely in an epoch's draw


@dataclass
class TrainResult:
    bundle: ForecasterBundle
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    device: str = "cpu"
    resumed_from_epoch: int = 0
    rows_read: int = 0  # training rows read: fitting, validation and the gap between them


EpochCallback = Callable[[int, dict[str, float]], None]


def train_forecaster(
    training_set: Rows,
    config: TrainConfig,
    *,
    feature_service: str,
    dataset_version: str,
    spec: FeatureSpec,
    on_epoch: EpochCallback | None = None,
    worker: Worker = SINGLE_PROCESS,
    checkpoint_dir: Path | None = None,
    series: pd.DataFrame | None = None,
    until: pd.Timestamp | None = None,
) -> TrainResult:
    """Fit a DemandForecaster on the features and labels of a frame or a folder read part by part
    (rows up to `until`); returns the best bundle.

    With `checkpoint_dir`, a checkpoint left there by an earlier run of the same settings is
    resumed rather than started over. `series` (store_id, sku_id) names series the model must
    forecast although they have no fitting rows (too short, or launched lately); they get the
    average store and SKU embedding of the series it learned.
    """
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    accelerator = pick_accelerator(config.device, local_rank=worker.local_rank)
    rows = _prepared(training_set, config, spec, series, feature_service, dataset_version, until)
    meta, fit, val = rows.meta, rows.fit, rows.val.to(accelerator.device)
    meta.n_numeric = fit.numeric.shape[1]
    if accelerator.is_cuda:  # pinned host memory makes the non_blocking copies truly asynchronous
        fit = fit.pin_memory()

    model = build_model(meta).to(accelerator.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    state, resumed_from_epoch = _initial_state(model, optimizer, generator, config, checkpoint_dir)
    quantiles = torch.tensor(config.quantiles, device=accelerator.device)
    loop = _Loop(_step_model(model, config, accelerator, worker), optimizer, quantiles, accelerator, worker)
    watched, draw = _watched_validation(val, config), _EpochDraw.of(rows, config)
    while not state.finished and state.epoch < config.epochs:
        state.epoch += 1
        drawn = draw.rows(generator)
        metrics = loop.epoch(fit, _batch_size(config, len(drawn)), generator, drawn, watched)
        if on_epoch:
            on_epoch(state.epoch, metrics)
        _record_epoch(state, metrics, model, optimizer, generator, patience=config.patience)
        if checkpoint_dir and worker.is_main:
            save_checkpoint(state, checkpoint_dir)
    model.load_state_dict(state.best_state)
    average_unseen_embeddings(model, meta, rows.seen)
    _calibrate(meta, loop.predict(val), val, config)
    return TrainResult(
        bundle=ForecasterBundle(model.to("cpu"), meta),
        history=state.history,
        best_epoch=state.best_epoch,
        device=str(accelerator.device),
        resumed_from_epoch=resumed_from_epoch,
        rows_read=rows.rows_read,
    )


def _batch_size(config: TrainConfig, rows: int) -> int:
    """The configured batch, or smaller so that an epoch takes at least min_batches_per_epoch steps."""
    return min(config.batch_size, max(1, math.ceil(rows / config.min_batches_per_epoch)))


def _prepared(
    training_set: Rows,
    config: TrainConfig,
    spec: FeatureSpec,
    series: pd.DataFrame | None,
    feature_service: str,
    dataset_version: str,
    until: pd.Timestamp | None,
) -> PreparedRows:
    return prepare_rows(
        training_set, horizon=config.horizon, validation_origins=config.validation_origins, spec=spec, until=until,
        meta_of=lambda stores, skus, vocab: bundle_meta(
            stores, skus, vocab, series, config, spec, feature_service, dataset_version
        ),
        tensors_of=lambda frame, meta: part_tensors(frame, meta, config.horizon, spec),
    )  # fmt: skip


def _initial_state(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    config: TrainConfig,
    checkpoint_dir: Path | None,
) -> tuple[TrainingState, int]:
    """A fresh state, or the checkpoint's (loaded into model, optimizer and generator); and the epoch resumed."""
    resumed = load_checkpoint(checkpoint_dir, asdict(config)) if checkpoint_dir else None
    if resumed is None:
        fresh = TrainingState(
            epoch=0,
            model=model.state_dict(),
            optimizer=optimizer.state_dict(),
            generator=generator.get_state(),
            best_state=copy.deepcopy(model.state_dict()),
            best_loss=math.inf,
            best_epoch=0,
            stale=0,
            history=[],
            config=asdict(config),
        )
        return fresh, 0
    model.load_state_dict(resumed.model)
    optimizer.load_state_dict(resumed.optimizer)
    generator.set_state(resumed.generator)
    return resumed, resumed.epoch


def _step_model(model: torch.nn.Module, config: TrainConfig, accelerator: Accelerator, worker: Worker):
    """What takes the optimizer steps: the model, under DDP across ranks, compiled when asked."""
    if worker.distributed:
        model = DistributedDataParallel(model, device_ids=[accelerator.device.index] if accelerator.is_cuda else None)
    return torch.compile(model) if config.compile else model


def _record_epoch(
    state: TrainingState,
    metrics: dict[str, float],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    *,
    patience: int,
) -> None:
    """Keep the epoch's metrics, the best weights so far, and whether to stop early."""
    state.history.append(metrics)
    if metrics["val_pinball"] < state.best_loss - 1e-6:
        state.best_loss, state.best_epoch, state.stale = metrics["val_pinball"], state.epoch, 0
        state.best_state = copy.deepcopy(model.state_dict())
    else:
        state.stale += 1
        state.finished = state.stale >= patience
    state.model, state.optimizer = model.state_dict(), optimizer.state_dict()
    state.generator = generator.get_state()


def bundle_meta(
    stores: list[str],
    skus: list[str],
    vocab: dict[str, list[str]],
    series: pd.DataFrame | None,
    config: TrainConfig,
    spec: FeatureSpec,
    feature_service: str,
    dataset_version: str,
) -> BundleMeta:
    """The bundle's description of the rows' stores, SKUs and categories, and of `series` besides."""
    extra = series if series is not None else pd.DataFrame(columns=["store_id", "sku_id"])
    return BundleMeta(
        horizon=config.horizon,
        quantiles=list(config.quantiles),
        stores=sorted({*stores, *extra["store_id"]}),
        skus=sorted({*skus, *extra["sku_id"]}),
        n_numeric=0,  # known once the inputs are built
        hidden=config.hidden,
        embedding_dim=config.embedding_dim,
        feature_service=feature_service,
        dataset_version=dataset_version,
        frequency=spec.frequency,
        lags=list(spec.lags),
        windows=list(spec.windows),
        stock=spec.stock,
        seasonal_period=config.seasonal_period if config.seasonal_skip else None,
        vocabularies=vocab,
    )


@torch.no_grad()
def average_unseen_embeddings(model: torch.nn.Module, meta: BundleMeta, fit_rows: pd.DataFrame) -> None:
    """Stores and SKUs without a fitting row get the mean embedding of those with one: an average series,
    read through its own history features, rather than an untrained random vector."""
    for embedding, ids, column in (
        (model.store_embedding, meta.stores, "store_id"),
        (model.sku_embedding, meta.skus, "sku_id"),
    ):
        seen = np.isin(np.asarray(ids, dtype=object), fit_rows[column].unique())
        if seen.any() and not seen.all():
            weights = embedding.weight
            weights[torch.from_numpy(~seen)] = weights[torch.from_numpy(seen)].mean(dim=0)


def _calibrate(meta: BundleMeta, predicted: torch.Tensor, val: Tensors, config: TrainConfig) -> None:
    """On the validation window: the bands' shifts (when asked), then the lead-time quantiles over the
    bands as served (shifted, in units)."""
    if config.calibrate_intervals:
        meta.interval_shift = fit_interval_shift(predicted, val.target, config.quantiles)
    scale = val.scale.double()
    units = (apply_interval_shift(predicted.double(), meta.interval_shift) * scale[:, None, None]).clamp(min=0.0)
    meta.lead_time = calibration(units.cpu().numpy(), (val.target.double() * scale[:, None]).cpu().numpy())


def _watched_validation(val: Tensors, config: TrainConfig) -> Tensors:
    """The validation rows early stopping scores: every one, or `validation_rows` of them drawn
    once from the seed (the same on every rank). At 25,000 daily series the validation window is
    700,000 rows, and scoring them all took a third of each epoch. The sample is fixed, so the
    epochs are compared on the same rows."""
    if not config.validation_rows or len(val) <= config.validation_rows:
        return val
    generator = torch.Generator().manual_seed(config.seed)
    index = torch.randperm(len(val), generator=generator)[: config.validation_rows].sort().values
    return val.take(index.to(val.store.device))


def epoch_windows_per_series(config: TrainConfig, fit_series: torch.Tensor) -> int:
    """The windows each series draws per epoch: `windows_per_series` when set, else every row (0)
    unless there are more than `rows_per_epoch`, then an equal share of those per series."""
    if config.windows_per_series or not config.rows_per_epoch or len(fit_series) <= config.rows_per_epoch:
        return config.windows_per_series
    return max(1, config.rows_per_epoch // len(torch.unique(fit_series)))


@dataclass
class _EpochDraw:
    """The fitting rows of each epoch: all of them, or `per_series` drawn per series."""

    series: torch.Tensor
    age: torch.Tensor  # periods before the latest fitting origin
    per_series: int
    half_life: float

    @staticmethod
    def of(rows: PreparedRows, config: TrainConfig) -> _EpochDraw:
        per_series = epoch_windows_per_series(config, rows.fit_series)
        return _EpochDraw(rows.fit_series, rows.fit_age, per_series, config.recency_half_life)

    def rows(self, generator: torch.Generator) -> torch.Tensor:
        if not self.per_series:
            return torch.arange(len(self.series))
        return epoch_windows(
            self.series, self.age, per_series=self.per_series, half_life=self.half_life, generator=generator
        )


@dataclass
class _Loop:
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    quantiles: torch.Tensor
    accelerator: Accelerator
    worker: Worker

    def epoch(
        self, data: Tensors, batch_size: int, generator: torch.Generator, rows: torch.Tensor, watched: Tensors
    ) -> dict[str, float]:
        """One epoch of training, and the validation loss after it."""
        return {
            "train_pinball": self.train_epoch(data, batch_size, generator, rows),
            "val_pinball": self.evaluate(watched),
        }

    def train_epoch(self, data: Tensors, batch_size: int, generator: torch.Generator, rows: torch.Tensor) -> float:
        """One pass over shuffled batches of `rows` sliced from whole tensors; returns the mean pinball loss."""
        self.model.train()
        order = rows[torch.randperm(len(rows), generator=generator)]
        total, count = 0.0, 0
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            shard = data.take(self.worker.shard(rows)).to(self.accelerator.device, non_blocking=True)
            with self.accelerator.autocast():
                pred = self.model(*shard.inputs)
            # Each rank's share of the whole batch's mean, times the world size that DDP divides by.
            loss_sum = pinball_loss(pred.float(), shard.target, self.quantiles, reduction="sum")
            elements = len(rows) * shard.target.shape[1] * len(self.quantiles)
            loss = loss_sum * self.worker.world_size / elements
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss_sum.item()
            count += len(shard) * shard.target.shape[1] * len(self.quantiles)
        total, count = self.worker.sum([total, float(count)])
        return total / count

    @torch.no_grad()
    def predict(self, data: Tensors) -> torch.Tensor:
        """Scaled quantile forecasts of the rows of `data`, in full precision, EVAL_BATCH_ROWS at a time:
        the decoder's activations are rows x H x width, 5 GB for 25,000 series' validation rows at once."""
        self.model.eval()
        parts = []
        for start in range(0, len(data), EVAL_BATCH_ROWS):
            with self.accelerator.autocast():
                parts.append(self.model(*data.rows(start, start + EVAL_BATCH_ROWS).inputs).float())
        return torch.cat(parts)

    def evaluate(self, data: Tensors) -> float:
        """Pinball loss on the validation window; every rank holds the same weights and gets the same number."""
        return pinball_loss(self.predict(data), data.target, self.quantiles).item()
