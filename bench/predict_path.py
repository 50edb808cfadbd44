"""Where a forecast's time goes in the process that answers it: the online read, the feature code
(`to_tensors`), the network, and building the answers; per batch size.

    make run && .venv/bin/python -m bench.predict_path --label after

It measures `serving.predictor.Predictor`, the object the Bento and `demandops forecast` answer
through, over the Production model and the local online store of `make run`, in this process (no
HTTP: bench/serve.py measures the service). Each size is timed `--repeats` times, stages
alternating; medians go to bench/results/predict_path.json under the label, beside the other
labels kept there. To measure older code, run this file from a worktree of it, on this project's
state and results file:

    git worktree add /tmp/old REV && cp bench/predict_path.py /tmp/old/bench/
    cd /tmp/old && DEMANDOPS_PROJECT_DIR=$OLDPWD $OLDPWD/.venv/bin/python -m bench.predict_path \
        --label before --results $OLDPWD/bench/results/predict_path.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

from demandops.settings import get_settings
from lifecycle.cli import open_registry
from serving.batch import champion_predictor
from serving.schemas import ForecastItem

RESULT = Path(__file__).parent / "results" / "predict_path.json"
SIZES = (1, 64, 256)


def stage_times(predictor, size: int, repeats: int) -> dict[str, float]:
    """Median milliseconds of each stage for a batch of `size` series."""
    items = [ForecastItem(store_id=s, sku_id=k, horizon=14) for s, k in predictor.all_pairs[:size]]
    bundle = predictor.bundle
    features, _, _ = predictor._read(items)
    stages = {
        "read": lambda: predictor._read(items),
        "to_tensors": lambda: bundle.tensors(features),
        "predict": lambda: bundle.predict(features),
        "forecast": lambda: predictor.forecast(items),
    }
    times: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(repeats):
        for name, stage in stages.items():
            start = time.perf_counter()
            stage()
            times[name].append(1e3 * (time.perf_counter() - start))
    medians = {f"{name}_ms": round(statistics.median(values), 3) for name, values in times.items()}
    medians["model_ms"] = round(medians["predict_ms"] - medians["to_tensors_ms"], 3)
    medians["answers_ms"] = round(medians["forecast_ms"] - medians["read_ms"] - medians["predict_ms"], 3)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", required=True, help="Name of this measurement in the results file.")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--results", type=Path, default=RESULT, help="The JSON file the label is written into.")
    args = parser.parse_args()
    _, predictor = champion_predictor(get_settings(), open_registry())
    result = {"machine": f"{platform.machine()}, {platform.python_version()}", "sizes": {}}
    for size in SIZES:
        result["sizes"][str(size)] = stage_times(predictor, size, args.repeats)
        print(f"{args.label}, {size:>3} series: {result['sizes'][str(size)]}")
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    recorded = json.loads(args.results.read_text()) if args.results.exists() else {}
    recorded[args.label] = result
    args.results.write_text(json.dumps(recorded, indent=2))


if __name__ == "__main__":
    main()
