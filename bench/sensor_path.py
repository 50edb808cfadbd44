"""The sensor path once, as the Dagster daemon runs it: `new_sales_days` is evaluated on the project
and its run request (gate, features and materialization of the new periods, no training) executed.
The new days are expected in place and recorded with DVC, as `demandops data append` leaves them.

    DEMANDOPS_PROJECT_DIR=... .venv/bin/python -m bench.sensor_path

bench/scale.py runs it after appending one day to a catalogue it ran cold; it prints what ran as JSON.
"""

from __future__ import annotations

import json
import sys

import dagster as dg

from demandops.settings import Settings
from pipelines.definitions import build_definitions
from pipelines.resources import DemandopsResource
from pipelines.run import open_instance
from pipelines.sensors import new_sales_days


def main() -> int:
    settings = Settings()
    resources = {"demandops": DemandopsResource.from_settings(settings)}
    with open_instance(settings) as instance:
        result = new_sales_days(dg.build_sensor_context(instance=instance, resources=resources))
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        job = build_definitions(settings).resolve_implicit_global_asset_job_def()
        ran = []
        for request in result.run_requests:
            selection = [dg.AssetKey(name) for name in ("raw_sales", "sales_features", "online_features")]
            done = job.execute_in_process(instance=instance, asset_selection=selection, tags=request.tags)
            ran.append({"tags": request.tags, "success": done.success})
    print(json.dumps({"runs": ran}))
    return 0 if ran and all(r["success"] for r in ran) else 1


if __name__ == "__main__":
    sys.exit(main())
