"""Stage 1 and 2: raw sales from the DVC-tracked data folder, through the Great Expectations gate."""

from datetime import date
from functools import partial

import dagster as dg
from dagster import AssetExecutionContext

from demandops.progress import progress_reporter
from pipelines.lake import RAW_SALES
from pipelines.partitions import SALES_PERIODS
from pipelines.resources import Demandops
from salesdata.dvc_versions import dataset_version
from salesdata.gate import gate_periods

DATA_DOCS_DIRNAME = "data_docs"  # GX Data Docs of quarantined partitions, inside the gate ledger


@dg.asset(
    partitions_def=SALES_PERIODS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="lake",
    group_name="ingestion",
    kinds={"dvc", "parquet"},
)
def raw_sales(context: AssetExecutionContext, demandops: Demandops) -> dg.MaterializeResult:
    """Sales partitions (one per period) that passed the gate; failing ones are quarantined with a report.

    Accepted partitions are written to the lake batch by batch as the gate judges them (the lake IO
    manager reads them back for the assets downstream). The report of a quarantined partition is in
    this materialization's metadata, the run's warnings, the gate ledger, and a Great Expectations
    Data Docs page.
    """
    settings, lake = demandops.settings(), demandops.lake()
    version = dataset_version(settings.project_dir, settings.data)
    ledger = lake.gate_ledger()
    docs_dir = ledger.directory / DATA_DOCS_DIRNAME
    days = [date.fromisoformat(k) for k in context.partition_keys]
    keep = partial(lake.write_partitions, [RAW_SALES])
    gated = progress_reporter(context.log.info, "periods gated")
    result = gate_periods(settings.data, days, ledger, settings.gate, docs_dir=docs_dir, keep=keep, progress=gated)
    ledger.record_result(result, dataset_version=version, run_id=context.run_id)
    for day in result.quarantined:
        first = result.verdicts[day].failures[0]
        context.log.warning(f"quarantined {day}: {first['expectation']}({first['column']}) e.g. {first['sample'][:2]}")
    accepted = [verdict for verdict in result.verdicts.values() if verdict.accepted]
    return dg.MaterializeResult(
        metadata={
            "dataset_version": version,
            "days": len(context.partition_keys),
            "accepted_days": len(accepted),
            "quarantined_days": result.quarantined,
            "quarantine_reports": {
                d: {"failures": result.verdicts[d].failures, "data_docs": result.verdicts[d].docs}
                for d in result.quarantined[:20]
            },
            "quarantine_data_docs": dg.MetadataValue.path(str(docs_dir / "index.html")),
            "rows": sum(verdict.rows for verdict in accepted),
            "gate_ledger": dg.MetadataValue.path(str(ledger.directory)),
        },
    )
