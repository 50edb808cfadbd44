"""Blocking checks: raw sales that fail the suite, and training sets with too many nulls, stop the chain."""

import dagster as dg
from dagster import AssetCheckExecutionContext

from demandops.contract import read_master
from demandops.settings import Settings
from pipelines.lake import Lake
from pipelines.partitions import SALES_PERIODS
from pipelines.resources import Demandops
from salesdata.expectations import SalesValidator, as_gated
from training.completeness import judge_null_shares
from training.training_folder import TrainingSetFolder


@dg.asset_check(
    asset="raw_sales",
    blocking=True,
    partitions_def=SALES_PERIODS,
    description="Great Expectations suite re-run on the data that reached the lake; lists quarantined days.",
)
def check_raw_sales_expectations(context: AssetCheckExecutionContext, demandops: Demandops) -> dg.AssetCheckResult:
    settings, lake = demandops.settings(), demandops.lake()
    ledger = lake.gate_ledger()
    quarantined = [k for k in context.partition_keys if (e := ledger.read(k)) and e["status"] == "quarantined"]
    # Read from the lake, not as an input: a run whose periods were all quarantined stored none of
    # them, and that is a finding to report, not a failure to load.
    rows, expectations, failed = revalidate_lake(lake, list(context.partition_keys), settings)
    if not rows:
        nothing = f"nothing new was accepted: {len(quarantined)} period(s) quarantined"
        return dg.AssetCheckResult(
            passed=True, metadata={"rows": 0, "quarantined_days": quarantined}, description=nothing
        )
    return dg.AssetCheckResult(
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"rows": rows, "expectations": expectations, "failed": failed, "quarantined_days": quarantined},
    )


def revalidate_lake(lake: Lake, keys: list[str], settings: Settings) -> tuple[int, int, list[str]]:
    """The suite re-run on the lake's rows of these periods, a gate batch at a time (a long range
    costs one batch's memory): rows read, expectations per batch, and each failed expectation."""
    stores, skus = read_master(settings.data, "stores"), read_master(settings.data, "skus")
    rows, expectations, failed, step = 0, 0, [], settings.gate.batch_partitions
    for start in range(0, len(keys), step):
        raw_sales = lake.raw_sales_of(keys[start : start + step])
        if raw_sales is None:
            continue
        validator = SalesValidator(
            columns=list(raw_sales.columns), stores=list(stores["store_id"]), skus=list(skus["sku_id"]),
            gate=settings.gate,
        )  # fmt: skip
        # Rows in the lake were matched to their day by the gate; the rest of the suite runs again here.
        report = validator.validate_rows(as_gated(raw_sales))
        rows, expectations = rows + len(raw_sales), max(expectations, len(report.outcomes))
        failed += [
            f"{o.expectation}({o.column}): {o.unexpected_count} unexpected, e.g. {o.sample[:3]}" for o in report.failed
        ]
    return rows, expectations, failed


@dg.asset_check(
    asset="training_set",
    blocking=True,
    description="Null share of every feature in the point-in-time training set, against the configured bound.",
)
def check_training_set_nulls(training_set: TrainingSetFolder, demandops: Demandops) -> dg.AssetCheckResult:
    settings, spec = demandops.settings(), demandops.feature_spec()
    report = judge_null_shares(
        training_set.null_shares(spec.feature_names),
        spec,
        data_columns=demandops.lake().raw_sales_columns(),
        bound=settings.feature_quality.max_null_share,
    )
    return dg.AssetCheckResult(
        passed=not report.violations,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "null_share": dg.MetadataValue.json({k: round(v, 5) for k, v in report.shares.items()}),
            "bound": report.bound,
            "not_judged": sorted(set(report.shares) - set(report.judged)),
            "over_bound": dg.MetadataValue.json(report.violations),
        },
    )
