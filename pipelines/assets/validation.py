"""Stage 5: rolling-origin backtest against the baselines, and the Trained -> Validated | Rejected decision."""

import base64
import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd
from mlflow import MlflowClient

from demandops.datasets import read_oracle
from demandops.errors import GuardRefusedError
from lifecycle.registry import CHAMPION_TAG
from lifecycle.states import ALIASES, State
from pipelines.assets.training import mlflow_run_url
from pipelines.registry_metadata import registry_metadata
from pipelines.resources import Demandops
from training.bundle import ForecasterBundle
from training.dataset import split_by_origin
from training.evaluate import Evaluation, champion_mismatch, evaluate_backtest
from training.plots import calibration_plot, forecast_plot, residual_plot
from training.tracking import download_bundle


@dg.asset(io_manager_key="lake", group_name="validation", kinds={"mlflow", "scikitlearn"})
def model_evaluation(training_set: pd.DataFrame, trained_model: dict, demandops: Demandops) -> dg.Output[dict]:
    """Backtest of the new version against seasonal naive, gradient boosting and (on simulated data)
    the oracle, logged to its MLflow run; its guards move it to Validated, or to Rejected."""
    run_id = trained_model["run_id"]
    registry = demandops.registry()
    version = trained_model["model_version"]
    with registry.compensating(version, step="model_evaluation"):
        evaluation, plots = _backtest(demandops, registry, training_set, version, run_id)
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
    overall = evaluation.table[evaluation.table["segment_kind"] != "window"].round(4)
    return dg.Output(
        value,
        metadata={
            **value,
            "mlflow_run": dg.MetadataValue.url(mlflow_run_url(trained_model["experiment_id"], run_id)),
            "backtest": dg.MetadataValue.md(overall.to_markdown(index=False)),
            "forecast_plot": _markdown_image(plots["forecast_vs_actual.png"], "forecast versus actual"),
            "calibration_plot": _markdown_image(plots["calibration.png"], "calibration"),
            **registry_metadata(registry),
        },
    )


def _backtest(
    demandops: Demandops, registry, training_set: pd.DataFrame, version: str, run_id: str
) -> tuple[Evaluation, dict[str, bytes]]:
    """Score the version beside its baselines and the champion; log it all to the training run."""
    settings = demandops.settings()
    champion = registry.by_alias(ALIASES[State.PRODUCTION])
    cadence = demandops.cadence()
    fit, backtest = split_by_origin(training_set, cadence.horizon, cadence.backtest_origins)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = download_bundle(settings.mlflow_tracking_uri, run_id, Path(tmp) / "challenger")
        incumbent, unscorable = _champion_bundle(settings.mlflow_tracking_uri, champion, Path(tmp) / "champion")
    if incumbent is not None:
        unscorable = champion_mismatch(incumbent, bundle, backtest)
    oracle = read_oracle(settings.data) if demandops.data_frequency() == "D" else None
    evaluation = evaluate_backtest(
        bundle, fit, backtest, period=cadence.seasonal_period, oracle=oracle, champion=None if unscorable else incumbent
    )
    plots = _log_backtest(MlflowClient(tracking_uri=settings.mlflow_tracking_uri), run_id, evaluation)
    registry.annotate(version, _champion_tags(evaluation.metrics, champion, unscorable))
    return evaluation, plots


def _champion_bundle(tracking_uri: str, champion, folder: Path) -> tuple[ForecasterBundle | None, str]:
    """The Production version's bundle, or why this code cannot load it (a bundle of an older network)."""
    if champion is None:
        return None, ""
    try:
        return download_bundle(tracking_uri, champion.run_id, folder), ""
    except (RuntimeError, TypeError) as incompatible:  # state-dict or metadata of another architecture
        return None, f"its bundle does not load with this code: {str(incompatible)[:300]}"


def _champion_tags(metrics: dict, champion, unscorable: str) -> dict[str, str]:
    """What the Staged -> Production guard compares: both versions on the latest backtest window,
    or why the champion could not be scored (the guard then waives the comparison, saying why)."""
    if champion is None:
        return {}
    if unscorable or "champion_latest_window_wape" not in metrics:
        return {
            "backtest.champion_skipped": unscorable or "no sales by series both versions know",
            "backtest.champion_skipped_version": champion.version,
        }
    return {
        CHAMPION_TAG: champion.version,
        "backtest.champion_latest_window_wape": str(metrics["champion_latest_window_wape"]),
        "backtest.latest_window_wape_vs_champion": str(metrics["latest_window_wape_vs_champion"]),
    }


def _log_backtest(client: MlflowClient, run_id: str, evaluation: Evaluation) -> dict[str, bytes]:
    """Headline metrics, the backtest table, residuals and the diagnostic plots, into the training run."""
    for name, value in evaluation.metrics.items():
        client.log_metric(run_id, f"backtest_{name}", value)
    plots = {
        "forecast_vs_actual.png": forecast_plot(evaluation),
        "residuals.png": residual_plot(evaluation),
        "calibration.png": calibration_plot(evaluation),
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        evaluation.table.to_csv(folder / "backtest.csv", index=False)
        _residuals(evaluation).to_parquet(folder / "residuals.parquet", index=False)
        for name, png in plots.items():
            (folder / name).write_bytes(png)
        client.log_artifacts(run_id, str(folder), artifact_path="backtest")
    return plots


def _residuals(evaluation: Evaluation) -> pd.DataFrame:
    """One line per (backtest row, step): actual, the model's quantiles and the p50 residual."""
    rows, forecast = evaluation.rows, evaluation.forecasts["model"]
    horizon = forecast.shape[1]
    frame = rows.loc[rows.index.repeat(horizon), ["store_id", "sku_id", "event_timestamp", "window", "mover"]]
    frame = frame.reset_index(drop=True).assign(step=list(range(1, horizon + 1)) * len(rows))
    frame["actual"] = evaluation.actual.ravel()
    for i, name in enumerate(("p10", "p50", "p90")):
        frame[name] = forecast[..., i].ravel()
    frame["residual"] = frame["actual"] - frame["p50"]
    return frame


def _markdown_image(png: bytes, title: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})")
