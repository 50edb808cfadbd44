"""New sales days flow in by themselves: register them as partitions and ingest only what is new."""

from __future__ import annotations

import hashlib

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipelines.assets.features import online_features, sales_features
from pipelines.assets.ingestion import gate_ledger, raw_sales
from pipelines.partitions import SALES_DAYS, days_to_gate, unregistered_days
from pipelines.resources import DemandopsResource


@dg.sensor(
    asset_selection=[raw_sales, sales_features, online_features],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def new_sales_days(context: dg.SensorEvaluationContext, demandops: DemandopsResource) -> dg.SensorResult:
    """Registers days that appeared under data/sales and ingests the new or changed ones, then refreshes features."""
    settings = demandops.settings()
    new, future = unregistered_days(context.instance, settings)
    if future:
        context.log.warning(f"ignoring {len(future)} partitions dated in the future: {future[:5]}")
    pending = days_to_gate(context.instance, settings, gate_ledger(demandops), also_known=new)
    requests = []
    if pending:
        first, last = min(pending), max(pending)
        requests.append(
            dg.RunRequest(
                run_key=f"{first}..{last}:{hashlib.md5('|'.join(pending).encode()).hexdigest()}",
                tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
            )
        )
    return dg.SensorResult(
        run_requests=requests, dynamic_partitions_requests=[SALES_DAYS.build_add_request(new)] if new else []
    )
