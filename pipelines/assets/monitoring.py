"""The loop: served forecasts scored against the actuals of each newly gated period, and drift from the
champion's training window."""

import base64

import dagster as dg

from monitoring.drift import drift_plot, write_drift_summary
from monitoring.live_summary import per_period_wape, write_summary
from monitoring.plots import live_versus_backtest_plot
from pipelines.assets.features import sales_features
from pipelines.assets.ingestion import raw_sales
from pipelines.drift import Drift, measure_drift
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
    live WAPE, bias, p10-p90 coverage and pinball loss per model version, horizon step and mover class;
    and every reorder point served (decision log) whose lead time ends with the period, against the
    demand of that lead time: the live cycle service per version, lead time and level."""
    settings = demandops.settings()
    accuracy = live_accuracy(
        demandops.lake(),
        settings,
        context.partition_keys,
        demandops.data_frequency(),
        demandops.cadence().horizon,
        demandops.registry(),
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
        "scored_decisions": sum(len(s) for s in accuracy.decided),
        "lead_time_evidence": accuracy.evidence,
        "lead_time_tables_served": dg.MetadataValue.json(accuracy.served_tables),
    }
    if not accuracy.service.empty:
        metadata["lead_time_service"] = dg.MetadataValue.md(accuracy.service.round(4).to_markdown(index=False))
    if plot is not None:
        image = f"![live versus backtest](data:image/png;base64,{base64.b64encode(plot).decode()})"
        metadata["live_vs_backtest_plot"] = dg.MetadataValue.md(image)
    return dg.MaterializeResult(metadata=rounded(metadata))


DRIFT_CHECK = "drift_within_bands"


@dg.asset(
    deps=[sales_features],
    group_name="monitoring",
    kinds={"parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            DRIFT_CHECK,
            asset="feature_drift",
            description="PSI of every feature and of units sold: warns from 0.10 (moderate), fails above 0.25.",
        )
    ],
)
def feature_drift(demandops: Demandops) -> dg.MaterializeResult:
    """Population stability index of each served feature, and of the sales, in the latest periods against
    the Production version's training window; and the share of selling series the model never saw."""
    settings = demandops.settings()
    drift = measure_drift(
        settings,
        demandops.lake(),
        demandops.registry(),
        horizon=demandops.cadence().horizon,
        frequency=demandops.data_frequency(),
    )
    write_drift_summary(settings.lake_dir, drift.summary())
    metadata = {
        "champion": drift.champion or "none",
        "band": drift.band if not drift.why_not_measured else "not measured",
        "unseen_series_share": drift.unseen_share,
        "reference": " .. ".join(drift.summary()["reference"] or ["-"]),
        "recent": " .. ".join(drift.summary()["recent"] or ["-"]),
        "psi": dg.MetadataValue.md(drift.table.round(4).to_markdown(index=False) or drift.why_not_measured),
    }
    if not drift.table.empty:
        image = f"![drift](data:image/png;base64,{base64.b64encode(drift_plot(drift.table)).decode()})"
        metadata["drift_plot"] = dg.MetadataValue.md(image)
    return dg.MaterializeResult(metadata=rounded(metadata), check_results=[_drift_check(drift)])


def _drift_check(drift: Drift) -> dg.AssetCheckResult:
    drifted = drift.table[drift.table["band"] != "stable"]
    described = ", ".join(f"{f} {p:.3f}" for f, p in zip(drifted["feature"], drifted["psi"], strict=True))
    if drift.why_not_measured or drift.band == "stable":
        return dg.AssetCheckResult(
            check_name=DRIFT_CHECK, passed=True, description=drift.why_not_measured or "every feature stable"
        )
    severity = dg.AssetCheckSeverity.ERROR if drift.band == "significant" else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        check_name=DRIFT_CHECK, passed=False, severity=severity, description=f"{drift.band} drift: {described}"
    )
