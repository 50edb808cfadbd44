"""What the Dagster instance knows about the data a model is trained on: version and gate status."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

RAW_SALES = dg.AssetKey("raw_sales")
RAW_SALES_CHECK = dg.AssetCheckKey(RAW_SALES, "check_raw_sales_expectations")


def raw_sales_lineage(instance: dg.DagsterInstance, partition_keys: Sequence[str]) -> dict:
    """Dataset version of the latest raw_sales materialization, and whether its gate passed for every day.

    The gate passed only if its latest evaluation ran in the same run as that materialization,
    succeeded, and covered the whole range of days being used.
    """
    event = instance.get_latest_materialization_event(RAW_SALES)
    if event is None or event.asset_materialization is None:
        raise LookupError("raw_sales has never been materialized; materialize it before training")
    version = str(event.asset_materialization.metadata["dataset_version"].value)
    history = instance.event_log_storage.get_asset_check_execution_history(RAW_SALES_CHECK, limit=1)
    gate = history[0] if history else None
    covered: dict = {}
    if gate is not None and gate.event is not None and gate.event.asset_check_evaluation is not None:
        covered = {
            k: v.value
            for k, v in gate.event.asset_check_evaluation.metadata.items()
            if k in ("partition_first", "partition_last", "partitions")
        }
    passed = (
        gate is not None
        and gate.status == AssetCheckExecutionRecordStatus.SUCCEEDED
        and gate.run_id == event.run_id
        and covered.get("partition_first", "~") <= min(partition_keys)
        and covered.get("partition_last", "") >= max(partition_keys)
    )
    return {
        "dataset_version": version,
        "data_checks_passed": bool(passed),
        "data_check_run_id": gate.run_id if gate else "",
        "data_check_covered": f"{covered.get('partition_first')}..{covered.get('partition_last')}",
    }


def latest_metadata(instance: dg.DagsterInstance, asset: str) -> dict:
    """Metadata values of an asset's latest materialization."""
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None or event.asset_materialization is None:
        raise LookupError(f"{asset} has never been materialized")
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}
