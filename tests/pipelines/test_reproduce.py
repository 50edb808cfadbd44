"""A run is reproducible only from what it recorded; anything less is refused, naming what is missing."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from demandops.errors import ReproductionError
from demandops.settings import Settings
from pipelines.assets.training import TrainingConfig
from pipelines.reproduce import recorded_run

COMPLETE = {
    "git_commit": "0123456789abcdef0123456789abcdef01234567",
    "git_dirty": "False",
    "dataset_version": "e21a125983669fe70ad67f5824879c0d",
    "frequency": "D",
    "horizon": "14",
    "seasonal_period": "7",
    "validation_periods": "28",
    "backtest_origins": "42",
    "epochs": "12",
    "learning_rate": "0.001",
    "compile": "False",
    "calibrate_intervals": "True",
    "validation_origins": "28",  # recorded too, but not a Launchpad field
    "lags": "1,2,3,4,5,6,7,14,28",
    "windows": "7,28",
}


def _run(settings: Settings, params: dict[str, str], wape: float | None = 0.5) -> str:
    settings.prepare_state()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    experiment = mlflow.create_experiment("repro", artifact_location=settings.mlflow_artifact_root.as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_params(params)
        if wape is not None:
            mlflow.log_metric("backtest_wape", wape)
    return run.info.run_id


def test_a_complete_record_gives_params_and_the_wape(settings: Settings) -> None:
    record = recorded_run(settings, _run(settings, COMPLETE))
    assert record.backtest_wape == 0.5 and record.dataset_version == COMPLETE["dataset_version"]
    assert record.cadence == {
        "horizon": "14",
        "seasonal_period": "7",
        "validation_periods": "28",
        "backtest_origins": "42",
    }
    config = record.hyperparameters  # typed as the Launchpad declares them
    assert config == {"epochs": 12, "learning_rate": 0.001, "compile": False, "calibrate_intervals": True}
    assert TrainingConfig.model_validate(config).epochs == 12, "the Launchpad takes them as they are"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"git_commit": "not-a-git-checkout"}, "ran outside a git checkout"),
        ({"git_dirty": "True"}, "ran on uncommitted changes to 0123456789ab"),
    ],
)
def test_runs_whose_code_is_unknown_are_refused(settings: Settings, change: dict, message: str) -> None:
    with pytest.raises(ReproductionError, match=message):
        recorded_run(settings, _run(settings, {**COMPLETE, **change}))


def test_a_run_without_its_data_version_or_backtest_is_refused(settings: Settings) -> None:
    partial = {k: v for k, v in COMPLETE.items() if k != "dataset_version"}
    with pytest.raises(ReproductionError, match="did not record dataset_version; it cannot be reproduced"):
        recorded_run(settings, _run(settings, partial))


def test_an_unknown_run_is_refused(settings: Settings, tmp_path: Path) -> None:
    settings.prepare_state()
    with pytest.raises(ReproductionError, match="no MLflow run 0000 in sqlite"):
        recorded_run(settings, "0000")
