"""Training benchmark: the batch-sliced tensor loop against a per-sample DataLoader, fp32 against
bf16 autocast, eager against torch.compile, and the wall time to reach the quality bars.

    .venv/bin/python -m bench.train              # on the device at hand (CUDA when present)
    .venv/bin/python -m bench.train --no-quality # throughput only

Variants run side by side, alternating, on the default preset's training set (computed by the
same feature code as the chain, without Feast). Medians and ratios are printed and written to
bench/results/train.json; the quality run's backtest table to bench/results/backtest_default.csv.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from demandops.settings import DailyCadence
from salesdata.simulator import PRESETS, simulate
from training.bundle import build_model
from training.dataset import Tensors, entity_rows, split_by_origin, vocabularies
from training.device import pick_accelerator
from training.evaluate import evaluate_backtest
from training.features import FeatureSpec, compute_features
from training.model import pinball_loss
from training.static_features import with_static
from training.train import TrainConfig, bundle_meta, train_forecaster
from training.training_rows import part_tensors

RESULTS = Path(__file__).parent / "results"
BATCH = 512
QUALITY_BARS = {
    "wape_ratio_to_seasonal_naive": (None, 0.80),
    "wape_ratio_to_gradient_boosting": (None, 1.02),
    "coverage_p10_p90": (0.75, 0.85),
    "wape_ratio_to_oracle": (None, 1.15),
}


def default_training_set():
    data = simulate(PRESETS["default"])
    cadence = DailyCadence()
    spec = FeatureSpec.for_cadence("D", cadence)
    rows = entity_rows(data.sales, cadence.horizon, spec)
    rows = rows.merge(compute_features(data.sales, spec), on=["store_id", "sku_id", "event_timestamp"])
    return with_static(rows, data.stores, data.skus), data, cadence, spec


class RowDataset(Dataset):
    """The per-sample path: one Python __getitem__ per training example, collated by the DataLoader."""

    def __init__(self, tensors: Tensors):
        self.t = tensors

    def __len__(self) -> int:
        return len(self.t)

    def __getitem__(self, i: int):
        t = self.t
        naive = () if t.seasonal_naive is None else (t.seasonal_naive[i],)  # with the seasonal skip only
        return t.store[i], t.sku[i], t.category[i], t.numeric[i], t.future[i], *naive, t.target[i]


def _step(model, optimizer, quantiles, inputs, target, autocast) -> None:
    with autocast():
        pred = model(*inputs)
    loss = pinball_loss(pred.float(), target, quantiles)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def sliced_loop(model, optimizer, quantiles, data: Tensors, batches: int, device, autocast) -> float:
    order = torch.randperm(len(data))
    start = time.perf_counter()
    for b in range(batches):
        batch = data.take(order[b * BATCH : (b + 1) * BATCH]).to(device, non_blocking=True)
        _step(model, optimizer, quantiles, batch.inputs, batch.target, autocast)
    _sync(device)
    return batches * BATCH / (time.perf_counter() - start)


def dataloader_loop(model, optimizer, quantiles, data: Tensors, batches: int, device, autocast) -> float:
    loader = DataLoader(RowDataset(data), batch_size=BATCH, shuffle=True, pin_memory=device.type == "cuda")
    start = time.perf_counter()
    for b, (*inputs, target) in enumerate(loader):
        if b == batches:
            break
        inputs = [x.to(device, non_blocking=True) for x in inputs]
        _step(model, optimizer, quantiles, inputs, target.to(device, non_blocking=True), autocast)
    _sync(device)
    return batches * BATCH / (time.perf_counter() - start)


def sliced_batches(data: Tensors, batches: int, device) -> float:
    """The data path alone: shuffled batches sliced from whole tensors and moved to the device."""
    order = torch.randperm(len(data))
    start = time.perf_counter()
    for b in range(batches):
        data.take(order[b * BATCH : (b + 1) * BATCH]).to(device, non_blocking=True)
    _sync(device)
    return batches * BATCH / (time.perf_counter() - start)


def dataloader_batches(data: Tensors, batches: int, device) -> float:
    """The data path alone: one __getitem__ per example, collated, moved to the device."""
    loader = DataLoader(RowDataset(data), batch_size=BATCH, shuffle=True, pin_memory=device.type == "cuda")
    start = time.perf_counter()
    for b, batch in enumerate(loader):
        if b == batches:
            break
        [x.to(device, non_blocking=True) for x in batch]
    _sync(device)
    return batches * BATCH / (time.perf_counter() - start)


def _autocast(device: torch.device, bf16: bool):
    if not bf16:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16)


def throughput(fit: pd.DataFrame, config: TrainConfig, spec: FeatureSpec, repeats: int, batches: int) -> dict:
    device = pick_accelerator().device
    meta = bundle_meta(
        sorted(fit["store_id"].unique()), sorted(fit["sku_id"].unique()), vocabularies(fit), None, config, spec,
        "bench", "bench",
    )  # fmt: skip
    data = part_tensors(fit, meta, config.horizon, spec)
    meta.n_numeric = data.numeric.shape[1]
    if device.type == "cuda":
        data = data.pin_memory()
    quantiles = torch.tensor(config.quantiles, device=device)

    def fresh(compiled: bool):
        torch.manual_seed(0)
        model = build_model(meta).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
        return (torch.compile(model) if compiled else model), optimizer

    variants = {
        "sliced_fp32_eager": (sliced_loop, False, False),
        "dataloader_fp32_eager": (dataloader_loop, False, False),
        "sliced_bf16_eager": (sliced_loop, True, False),
        "sliced_fp32_compiled": (sliced_loop, False, True),
    }
    models, compile_seconds = {}, {}
    for name, (_loop, _bf16, compiled) in variants.items():
        models[name] = fresh(compiled)
        start = time.perf_counter()  # warm-up: the compiled variant compiles here
        _loop(*models[name], quantiles, data, 3, device, lambda b=_bf16: _autocast(device, b))
        compile_seconds[name] = time.perf_counter() - start
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, (loop, bf16, _compiled) in variants.items():
            samples[name].append(
                loop(*models[name], quantiles, data, batches, device, lambda b=bf16: _autocast(device, b))
            )
            print(f"  {name}: {samples[name][-1]:,.0f} samples/s", flush=True)
    data_paths = {"data_only_sliced": sliced_batches, "data_only_dataloader": dataloader_batches}
    samples.update({name: [] for name in data_paths})
    for _ in range(repeats):
        for name, loop in data_paths.items():
            samples[name].append(loop(data, batches, device))
            print(f"  {name}: {samples[name][-1]:,.0f} samples/s", flush=True)
    median = {name: statistics.median(v) for name, v in samples.items()}
    base = median["sliced_fp32_eager"]
    return {
        "device": str(device),
        "batch_size": BATCH,
        "batches_per_measurement": batches,
        "repeats": repeats,
        "samples_per_s_median": median,
        "warmup_seconds": compile_seconds,
        "ratios": {
            "sliced_vs_dataloader_training_step": base / median["dataloader_fp32_eager"],
            "sliced_vs_dataloader_data_path": median["data_only_sliced"] / median["data_only_dataloader"],
            "bf16_vs_fp32": median["sliced_bf16_eager"] / base,
            "compiled_vs_eager": median["sliced_fp32_compiled"] / base,
        },
    }


def quality(training_set, data, cadence, spec) -> dict:
    fit, backtest = split_by_origin(training_set, cadence.horizon, cadence.backtest_origins)
    config = TrainConfig(
        horizon=cadence.horizon, validation_origins=cadence.validation_periods, seasonal_period=cadence.seasonal_period
    )
    start = time.perf_counter()
    result = train_forecaster(fit, config, feature_service="bench", dataset_version="bench", spec=spec)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    evaluation = evaluate_backtest(result.bundle, fit, backtest, period=cadence.seasonal_period, oracle=data.oracle)
    evaluation_seconds = time.perf_counter() - start
    metrics = evaluation.metrics
    bars = {
        name: {
            "value": metrics[name],
            "low": low,
            "high": high,
            "holds": (low is None or metrics[name] >= low) and metrics[name] <= high,
        }
        for name, (low, high) in QUALITY_BARS.items()
    }
    evaluation.table.round(5).to_csv(RESULTS / "backtest_default.csv", index=False)
    return {
        "config": asdict(config),
        "device": result.device,
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "train_seconds": train_seconds,
        "backtest_seconds": evaluation_seconds,
        "bars": bars,
        "all_bars_hold": all(b["holds"] for b in bars.values()),
        "metrics": metrics,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--no-quality", action="store_true")
    args = parser.parse_args()
    training_set, data, cadence, spec = default_training_set()
    fit, _ = split_by_origin(training_set, cadence.horizon, cadence.backtest_origins)
    config = TrainConfig(horizon=cadence.horizon, seasonal_period=cadence.seasonal_period)
    result = {
        "machine": {"platform": platform.platform(), "cpus": torch.get_num_threads(), "torch": torch.__version__},
        "throughput": throughput(fit, config, spec, args.repeats, args.batches),
    }
    print(json.dumps(result["throughput"]["ratios"], indent=2))
    if not args.no_quality:
        result["quality"] = quality(training_set, data, cadence, spec)
        print(json.dumps({k: v for k, v in result["quality"].items() if k != "metrics"}, indent=2, default=str))
    RESULTS.mkdir(exist_ok=True)
    name = "train.json" if pick_accelerator().device.type == "cpu" else f"train_{pick_accelerator().device.type}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
