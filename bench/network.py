"""The network's options side by side: the stock features on the simulator, the seasonal skip on real data.

    .venv/bin/python -m bench.network                 # both parts (about 20 minutes on 2 cores)
    .venv/bin/python -m bench.network --part real     # Tourism and M1 only

- **Stock** (simulator, default preset): the network trained with and without the features read
  from `stock_on_hand` (FeatureSpec.stock), same seeds, same rows; backtest WAPE overall and on
  the origins whose shelf was empty (the `shelf` segment; also its first step alone), beside
  gradient boosting and the oracle.
- **Seasonal skip** (Tourism h = 24, M1 h = 18): the network trained on every row of the
  history (early stopping on the last validation origins), with and without the skip, forecasting
  the official holdout from the last history month; MASE and sMAPE of the network alone and of
  its even blend with AutoETS, beside AutoETS and seasonal naive fitted in the same run. This is
  the network offline, not the chain: `bench.real` runs the chain.

Medians over seeds and ratios are printed and written to bench/results/network.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from bench.real import _matrix, anchors, scores
from bench.train import default_training_set
from demandops.settings import MonthlyCadence
from salesdata.competitions import monthly_competition
from training.dataset import entity_rows, rows_with_history, split_by_origin
from training.evaluate import evaluate_backtest
from training.features import FeatureSpec, compute_features
from training.metrics import wape
from training.static_features import with_static
from training.train import TrainConfig, train_forecaster

RESULTS = Path(__file__).parent / "results"
KEYS = ["store_id", "sku_id", "event_timestamp"]


def _segment(table: pd.DataFrame, forecaster: str, kind: str, segment: str) -> float:
    rows = table[(table["forecaster"] == forecaster) & (table["segment_kind"] == kind) & (table["segment"] == segment)]
    return float(rows["wape"].iloc[0]) if len(rows) else float("nan")


def stock_part(seeds: list[int]) -> dict:
    """Stock features off and on, alternating per seed, on the same training rows."""
    training_set, data, cadence, spec = default_training_set()
    fit, backtest = split_by_origin(training_set, cadence.horizon, cadence.backtest_origins)
    runs: dict[str, list[dict]] = {"without stock": [], "with stock": []}
    for seed in seeds:
        for name, variant in (("without stock", replace(spec, stock=False)), ("with stock", spec)):
            config = TrainConfig(horizon=cadence.horizon, validation_origins=cadence.validation_periods, seed=seed)
            result = train_forecaster(fit, config, feature_service="bench", dataset_version="bench", spec=variant)
            # The shelf segment needs stock_left on the backtest rows, whichever features the model read.
            evaluation = evaluate_backtest(
                result.bundle, fit, backtest, period=cadence.seasonal_period, oracle=data.oracle
            )
            table, metrics = evaluation.table, evaluation.metrics
            empty = (evaluation.rows["shelf"] == "empty").to_numpy()
            first_step = evaluation.actual[empty, 0], evaluation.forecasts["model"][empty, 0, 1]
            runs[name].append(
                {
                    "seed": seed,
                    "wape": metrics["wape"],
                    "empty_shelf_wape": _segment(table, "model", "shelf", "empty"),
                    "stocked_shelf_wape": _segment(table, "model", "shelf", "stocked"),
                    # The next period after an empty shelf: sales are capped until the next delivery.
                    "empty_shelf_first_step_wape": wape(*first_step),
                    "coverage_p10_p90": metrics["coverage_p10_p90"],
                    "bias": metrics["bias"],
                    "wape_ratio_to_gradient_boosting": metrics["wape_ratio_to_gradient_boosting"],
                    "wape_ratio_to_oracle": metrics["wape_ratio_to_oracle"],
                    "empty_shelf_rows": int(
                        table[(table["segment_kind"] == "shelf") & (table["segment"] == "empty")]["rows"].iloc[0]
                    ),
                }
            )
            print(name, json.dumps({k: round(v, 4) for k, v in runs[name][-1].items()}), flush=True)
    medians = {
        name: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "seed"} for name, rs in runs.items()
    }
    ratios = {
        f"{k}_with_over_without": medians["with stock"][k] / medians["without stock"][k]
        for k in ("wape", "empty_shelf_wape", "empty_shelf_first_step_wape", "stocked_shelf_wape")
    }
    return {"seeds": seeds, "runs": runs, "medians": medians, "ratios": ratios}


def _origin_rows(name: str):
    data = monthly_competition(name)
    cadence = MonthlyCadence(horizon=data.horizon)
    spec = FeatureSpec.for_cadence("M", cadence)
    stores = pd.DataFrame({"store_id": [name]})
    skus = pd.DataFrame({"sku_id": data.history["sku_id"].unique()})
    features = compute_features(data.history, spec)
    rows = with_static(entity_rows(data.history, data.horizon, spec).merge(features, on=KEYS), stores, skus)
    last = features[features["event_timestamp"] == features["event_timestamp"].max()]
    return data, cadence, spec, rows_with_history(rows, spec), with_static(last, stores, skus)


def skip_part(datasets: list[str], seeds: list[int]) -> dict:
    """The seasonal skip off and on, per dataset and seed, scored on the official holdout."""
    out = {}
    for name in datasets:
        data, cadence, spec, rows, last = _origin_rows(name)
        order = sorted(data.history["sku_id"].unique())
        dates = sorted(data.holdout["date"].unique())
        fitted = {k: _matrix(v, order, dates) for k, v in anchors(data).items()}
        runs: dict[str, list[dict]] = {"without skip": [], "with skip": []}
        for seed in seeds:
            for variant, skip in (("without skip", False), ("with skip", True)):
                config = TrainConfig(
                    horizon=data.horizon,
                    validation_origins=cadence.validation_periods,
                    seasonal_period=cadence.seasonal_period,
                    seasonal_skip=skip,
                    seed=seed,
                )
                started = time.perf_counter()
                result = train_forecaster(rows, config, feature_service="bench", dataset_version="bench", spec=spec)
                seconds = time.perf_counter() - started
                p50 = result.bundle.predict(last)[..., 1]
                forecast = pd.DataFrame(
                    {"sku_id": np.repeat(last["sku_id"].to_numpy(), data.horizon), "date": dates * len(last)}
                ).assign(p50=p50.ravel())
                network = _matrix(forecast, order, dates)
                scored = scores(data, {"network": network, "network+AutoETS": (network + fitted["AutoETS"]) / 2}, order)
                runs[variant].append({"seed": seed, "train_s": round(seconds, 1), **scored})
                print(name, variant, seed, json.dumps(scored), flush=True)
        anchor_scores = scores(data, {k: fitted[k] for k in ("SeasonalNaive", "AutoETS")}, order)
        medians = {
            variant: {
                f"{forecaster}_{metric}": statistics.median(r[forecaster][metric] for r in rs)
                for forecaster in ("network", "network+AutoETS")
                for metric in ("mase", "smape")
            }
            for variant, rs in runs.items()
        }
        out[name] = {"anchors": anchor_scores, "runs": runs, "medians": medians}
    return out


def _peak_rss_mb() -> float:
    """This process's peak RSS so far (ru_maxrss is KiB on Linux): each part records it when done."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "stock", "real"], default="all")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args(argv)
    recorded = RESULTS / "network.json"
    result = json.loads(recorded.read_text()) if recorded.is_file() else {}
    result["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count()}
    if args.part in ("all", "stock"):
        result["stock"] = stock_part(args.seeds) | {"peak_rss_mb_so_far": _peak_rss_mb()}
        print(json.dumps({"stock": result["stock"]["medians"] | result["stock"]["ratios"]}, indent=2))
    if args.part in ("all", "real"):
        result["seasonal_skip"] = skip_part(["tourism", "m1"], args.seeds) | {"peak_rss_mb_so_far": _peak_rss_mb()}
        for name, entry in result["seasonal_skip"].items():
            if name == "peak_rss_mb_so_far":
                continue
            print(name, json.dumps({"anchors": entry["anchors"], "medians": entry["medians"]}, indent=2))
    RESULTS.mkdir(exist_ok=True)
    recorded.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
