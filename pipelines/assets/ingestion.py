"""Stage 1: raw sales from the DVC-tracked data folder, one daily partition at a time."""

from datetime import date

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext

from demandops.contract import read_sales
from demandops.lineage import dataset_version
from pipelines.resources import DemandopsResource


def build_raw_sales(partitions_def: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    """The raw_sales asset over the given days (a backfill of many days runs as one run)."""

    @dg.asset(
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="lake",
        group_name="ingestion",
        kinds={"dvc", "parquet"},
    )
    def raw_sales(context: AssetExecutionContext, demandops: DemandopsResource) -> dg.Output[pd.DataFrame]:
        """Daily point-of-sale rows, read from data/ at the DVC version recorded in data.dvc."""
        settings = demandops.settings()
        version = dataset_version(settings.project_dir, settings.data)
        days = [date.fromisoformat(key) for key in context.partition_keys]
        frame = read_sales(settings.data, days)
        return dg.Output(
            frame,
            metadata={
                "dataset_version": version,
                "rows": len(frame),
                "days": len(days),
                "series": int(frame.groupby(["store_id", "sku_id"]).ngroups),
                "units_sold": float(frame["units_sold"].sum()),
            },
        )

    return raw_sales
