"""The loop: served forecasts scored against the actuals of each newly gated period."""

import base64

import dagster as dg

from monitoring.live_summary import per_period_wape, write_summary
from monitoring.plots import live_versus_backtest_plot
from pipelines.assets.ingestion import raw_sales
from pipelines.live_accuracy import backtest_wapes, live_accuracy
from pipelines.metadata import rounded
from pipelines.partitions import SALES_PERIODS
from pipelines.resources import Demandops


@dg.asset(
    partitions_def=SALES_PERIODS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[raw_sales],
    group_name="monitoring",
    kinds={"parquet"},
)
def forecast_accuracy(context: dg.AssetExecutionContext, demandops: Demandops) -> dg.MaterializeResult:
    """Every forecast served for the period (prediction log) scored against its gated sales; the rolling
    live WAPE, bias, p10-p90 coverage and pinball loss per model version, horizon step and mover class."""
    settings = demandops.settings()
    accuracy = live_accuracy(
        demandops.lake(), settings, context.partition_keys, demandops.data_frequency(), demandops.cadence().horizon
    )
    write_summary(settings.lake_dir, accuracy.summary)
    versions = accuracy.summary["versions"]
    promised = backtest_wapes(settings, demandops.registry(), versions)
    plot = live_versus_backtest_plot(per_period_wape(accuracy.window), promised) if versions else None
    metadata = {
        "scored_forecasts": sum(len(s) for s in accuracy.scored),
        "window_periods": accuracy.summary["periods"],
        "live_wape": dg.MetadataValue.json({v: s["wape"] for v, s in versions.items()}),
        "backtest_wape": dg.MetadataValue.json(promised),
        "accuracy": dg.MetadataValue.md(accuracy.table.round(4).to_markdown(index=False)),
    }
    if plot is not None:
        image = f"![live versus backtest](data:image/png;base64,{base64.b64encode(plot).decode()})"
        metadata["live_vs_backtest_plot"] = dg.MetadataValue.md(image)
    return dg.MaterializeResult(metadata=rounded(metadata))
