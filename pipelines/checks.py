"""The blocking data-quality check: nothing that fails the suite may reach what is downstream of raw_sales."""

import dagster as dg
import pandas as pd
from dagster import AssetCheckExecutionContext

from demandops.contract import read_master
from demandops.expectations import PARTITION_COLUMN, SalesValidator
from pipelines.assets.ingestion import gate_ledger
from pipelines.partitions import SALES_DAYS
from pipelines.resources import DemandopsResource


@dg.asset_check(
    asset="raw_sales",
    blocking=True,
    partitions_def=SALES_DAYS,
    description="Great Expectations suite re-run on the data that reached the lake; lists quarantined days.",
)
def check_raw_sales_expectations(
    context: AssetCheckExecutionContext, raw_sales: pd.DataFrame, demandops: DemandopsResource
) -> dg.AssetCheckResult:
    settings = demandops.settings()
    stores, skus = read_master(settings.data, "stores"), read_master(settings.data, "skus")
    validator = SalesValidator(
        columns=list(raw_sales.columns), stores=list(stores["store_id"]), skus=list(skus["sku_id"]), gate=settings.gate
    )
    # Rows in the lake were matched to their day by the gate; the rest of the suite runs again here.
    report = validator.validate_rows(raw_sales.assign(**{PARTITION_COLUMN: raw_sales["date"]}))
    ledger = gate_ledger(demandops)
    quarantined = [k for k in context.partition_keys if (e := ledger.read(k)) and e["status"] == "quarantined"]
    return dg.AssetCheckResult(
        passed=report.success,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "rows": len(raw_sales),
            "expectations": len(report.outcomes),
            "failed": [
                f"{o.expectation}({o.column}): {o.unexpected_count} unexpected, e.g. {o.sample[:3]}"
                for o in report.failed
            ],
            "quarantined_days": quarantined,
        },
    )
