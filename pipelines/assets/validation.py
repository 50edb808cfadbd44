"""Stage 5: rolling-origin backtest against the baselines, and the Trained -> Validated | Rejected decision."""

import base64
import tempfile
from pathlib import Path

import dagster as dg
from mlflow import MlflowClient

from demandops.errors import GuardRefusedError
from demandops.progress import progress_line
from lifecycle.evidence import champion_tags
from lifecycle.states import ALIASES, State
from pipelines.metadata import registry_metadata, rounded
from pipelines.resources import Demandops
from salesdata.datasets import read_oracle
from training.candidates import plan_for_serving
from training.dataset import origin_split
from training.evaluate import BACKTEST_PHASES, Evaluation, champion_mismatch, evaluate_backtest
from training.sales_table import SalesTable
from training.statistical_engines import statistical_engine
from training.tracking import (
    download_backtest_bundle,
    download_bundle_or_why,
    download_window_bundles,
    log_backtest,
    log_serving_plan,
)
from training.training_folder import RowsUpTo, TrainingSetFolder
from training.windows import windows_for


@dg.asset(
    ins={"raw_sales": dg.AssetIn(dagster_type=dg.Nothing)},  # read from the lake series by series
    io_manager_key="lake",
    group_name="validation",
    kinds={"mlflow", "scikitlearn"},
)
def model_evaluation(
    context: dg.AssetExecutionContext, training_set: TrainingSetFolder, trained_model: dict, demandops: Demandops
) -> dg.Output[dict]:
    """Backtest of the new version against seasonal naive, gradient boosting, AutoETS and Theta and (on
    simulated data) the oracle, logged to its MLflow run; its guards move it to Validated, or to Rejected."""
    run_id, version = trained_model["run_id"], trained_model["model_version"]
    registry = demandops.registry()
    sales = demandops.lake().sales_table(context.asset_partition_keys_for_input("raw_sales"))
    with registry.compensating(version, step="model_evaluation"):
        evaluation, plots = _backtest(context, demandops, registry, sales, training_set, version, run_id)
    evidence = {
        **evaluation.metrics,
        "dataset_version": trained_model["dataset_version"],
        "data_checks_passed": trained_model["data_checks_passed"],
    }
    try:
        info = registry.transition(version, State.VALIDATED, actor="pipeline", reason="backtest", evidence=evidence)
        refusal = ""
    except GuardRefusedError as refused:
        refusal = str(refused)
        info = registry.transition(version, State.REJECTED, actor="pipeline", reason=refusal, evidence=evidence)
    value = {"model_version": version, "state": str(info.state), "refusal": refusal, **evaluation.metrics}
    served = {"served_per_group": dg.MetadataValue.json(evaluation.choice)} if evaluation.choice else {}
    overall = evaluation.table[evaluation.table["segment_kind"] != "window"].round(4)
    run_page = demandops.settings().ui.mlflow_run_url(trained_model["experiment_id"], run_id)
    metadata = {
        **value,
        "mlflow_run": dg.MetadataValue.url(run_page),
        **served,
        "backtest": dg.MetadataValue.md(overall.to_markdown(index=False)),
        **_plot_metadata(plots),
    }
    return dg.Output(value, metadata=rounded({**metadata, **registry_metadata(registry)}))


def _plot_metadata(plots: dict[str, bytes]) -> dict:
    """The backtest's plots shown on the asset: the lead-time one when the model has lead-time quantiles."""
    shown = {
        "forecast_plot": ("forecast_vs_actual.png", "forecast versus actual"),
        "calibration_plot": ("calibration.png", "calibration"),
        "lead_time_plot": ("lead_time_service.png", "lead-time service levels, achieved against target"),
    }
    return {key: _markdown_image(plots[name], alt) for key, (name, alt) in shown.items() if name in plots}


def _backtest(
    context: dg.AssetExecutionContext,
    demandops: Demandops,
    registry,
    sales: SalesTable,
    training_set: TrainingSetFolder,
    version: str,
    run_id: str,
) -> tuple[Evaluation, dict[str, bytes]]:
    """Score the version beside its baselines and the champion; log it all to the training run."""
    settings = demandops.settings()

    def progress(done: int, total: int, doing: str) -> None:
        context.log.info(progress_line(done, total, f"backtest: {doing}"))

    champion = registry.by_alias(ALIASES[State.PRODUCTION])
    cadence = windows_for(training_set.typical_origins, demandops.cadence()).cadence  # as trained_model chose them
    last_fit, first_holdout = origin_split(training_set.origins(), cadence.horizon, cadence.backtest_origins)
    fit = RowsUpTo(training_set, last_fit)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = download_backtest_bundle(settings.mlflow_tracking_uri, run_id, Path(tmp) / "challenger")
        later = download_window_bundles(settings.mlflow_tracking_uri, run_id, Path(tmp) / "windows")
        incumbent, unscorable = (
            download_bundle_or_why(settings.mlflow_tracking_uri, champion.run_id, Path(tmp) / "champion")
            if champion
            else (None, "")
        )
    if incumbent is not None:
        unscorable = champion_mismatch(incumbent, bundle, training_set.head(1))  # by the columns
    oracle = read_oracle(settings.data, since=first_holdout) if demandops.data_frequency() == "D" else None
    engine = statistical_engine(
        settings.cluster.engine, settings.cluster.ray_address, settings.cluster.embedded_processes
    )
    evaluation = evaluate_backtest(
        bundle,
        fit,
        training_set.read(since=first_holdout),  # held by evaluate_backtest alone, which drops it once scored
        period=cadence.seasonal_period,
        oracle=oracle,
        champion=None if unscorable else incumbent,
        sales=sales,
        statistical=settings.lifecycle.statistical_baselines,
        statistical_series=settings.lifecycle.statistical_series,
        window_bundles=later,
        recalibration_window=cadence.validation_periods,  # as the service refits its tables (serving/predictor.py)
        statistical_on=engine,
        progress=progress,
    )
    progress(BACKTEST_PHASES - 1, BACKTEST_PHASES, "plots and the serving plan")
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    plots = log_backtest(client, run_id, evaluation)
    plan = plan_for_serving(
        evaluation.choice, evaluation.rows, sales, frequency=bundle.meta.frequency,
        horizon=bundle.meta.horizon, period=cadence.seasonal_period, on=engine,
    )  # fmt: skip
    log_serving_plan(client, run_id, evaluation.choice, plan)
    progress(BACKTEST_PHASES, BACKTEST_PHASES, "scored")
    registry.annotate(version, champion_tags(evaluation.metrics, champion.version if champion else None, unscorable))
    return evaluation, plots


def _markdown_image(png: bytes, title: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})")
