"""Stage 5: holdout backtest against seasonal naive, and the Trained -> Validated | Rejected decision."""

import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd
from mlflow import MlflowClient

from demandops.errors import GuardRefusedError
from lifecycle.states import State
from pipelines.resources import DemandopsResource
from training.dataset import split_by_origin
from training.evaluate import evaluate_holdout
from training.tracking import download_bundle


@dg.asset(io_manager_key="lake", group_name="validation", kinds={"mlflow"})
def model_evaluation(training_set: pd.DataFrame, trained_model: dict, demandops: DemandopsResource) -> dg.Output[dict]:
    """Holdout metrics of the new version; its guards move it to Validated, or to Rejected."""
    settings = demandops.settings()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = download_bundle(settings.mlflow_tracking_uri, trained_model["run_id"], Path(tmp))
    cadence = demandops.cadence()
    _fit, holdout = split_by_origin(training_set, cadence.horizon, cadence.holdout_periods)
    metrics = evaluate_holdout(bundle, holdout, period=cadence.seasonal_period)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    for name, value in metrics.items():
        client.log_metric(trained_model["run_id"], f"holdout_{name}", value)
    evidence = {
        **metrics,
        "dataset_version": trained_model["dataset_version"],
        "data_checks_passed": trained_model["data_checks_passed"],
    }
    registry = demandops.registry()
    version = trained_model["model_version"]
    try:
        info = registry.transition(
            version, State.VALIDATED, actor="pipeline", reason="holdout backtest", evidence=evidence
        )
        refusal = ""
    except GuardRefusedError as refused:
        refusal = str(refused)
        info = registry.transition(version, State.REJECTED, actor="pipeline", reason=refusal, evidence=evidence)
    value = {"model_version": version, "state": str(info.state), "refusal": refusal, **metrics}
    return dg.Output(value, metadata=value)
