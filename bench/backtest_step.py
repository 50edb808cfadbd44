"""The backtest step alone on a project the chain already ran (bench/scale.py --keep DIR), for its
time and peak memory without the steps before it:

    DEMANDOPS_PROJECT_DIR=DIR/25000 /usr/bin/time -v .venv/bin/python -m bench.backtest_step

It scores the newest version on the lake's training set, as model_evaluation does, and logs the
backtest to its run again; it moves no lifecycle state.
"""

from __future__ import annotations

import json
import time

from demandops.settings import Settings
from pipelines.assets.validation import _backtest
from pipelines.partitions import SALES_PERIODS
from pipelines.resources import DemandopsResource
from pipelines.run import open_instance
from training.training_folder import TrainingSetFolder


def main() -> None:
    settings = Settings()
    demandops = DemandopsResource.from_settings(settings)
    lake = demandops.lake()
    trained = json.loads(lake.value_file(["trained_model"], "json").read_text())
    manifest = json.loads(lake.value_file(["training_set"], "json").read_text())
    folder = TrainingSetFolder.from_manifest(manifest, lake.asset_dir(["training_set"]))
    with open_instance(settings) as instance:
        keys = sorted(instance.get_dynamic_partitions(SALES_PERIODS.name))
    start = time.perf_counter()
    sales = lake.sales_table(keys)
    evaluation, _plots = _backtest(
        demandops, demandops.registry(), sales, folder, trained["model_version"], trained["run_id"]
    )
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": round(seconds, 1), "wape": evaluation.metrics["wape"], "rows": len(evaluation.rows)}))


if __name__ == "__main__":
    main()
