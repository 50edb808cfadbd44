"""Blocking data-quality gates: a failed check stops everything downstream of raw_sales."""

import dagster as dg
import pandas as pd
from dagster import AssetCheckExecutionContext

from demandops.expectations import validate_sales


def build_raw_sales_check(partitions_def: dg.DailyPartitionsDefinition) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset="raw_sales",
        blocking=True,
        partitions_def=partitions_def,
        description="Great Expectations checkpoint: schema, non-null keys, units >= 0, unique rows.",
    )
    def check_raw_sales_expectations(
        context: AssetCheckExecutionContext, raw_sales: pd.DataFrame
    ) -> dg.AssetCheckResult:
        report = validate_sales(raw_sales)
        keys = context.partition_keys
        return dg.AssetCheckResult(
            passed=report.success,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                # A range run records one evaluation for all its days, so it names the days it covered.
                "partition_first": keys[0],
                "partition_last": keys[-1],
                "partitions": len(keys),
                "rows": len(raw_sales),
                "expectations": len(report.outcomes),
                "failed": [
                    f"{o.expectation}({o.column}): {o.unexpected_count} unexpected, e.g. {o.sample[:3]}"
                    for o in report.failed
                ],
            },
        )

    return check_raw_sales_expectations
