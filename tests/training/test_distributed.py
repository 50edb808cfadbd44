"""Checkpoints resume bit for bit, and 2 DDP ranks under torchrun (gloo, CPU) match one process."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import DAILY
from training.checkpoint import CHECKPOINT_FILE
from training.dataset import split_by_origin
from training.job import TrainingJob
from training.tracking import download_backtest_bundle, download_bundle, download_window_bundles
from training.train import TrainConfig, train_forecaster
from training.training_folder import TrainingSetFolder
from training.windows import later_window_holdouts

CONFIG = TrainConfig(horizon=7, epochs=4, patience=10, validation_origins=14, seed=11)


@pytest.fixture(scope="module")
def fit_rows(small_training_set: pd.DataFrame) -> pd.DataFrame:
    fit, _holdout = split_by_origin(small_training_set, horizon=7, holdout_origins=21)
    return fit


def _train(rows: pd.DataFrame, config: TrainConfig, checkpoints: Path | None = None):
    return train_forecaster(
        rows, config, feature_service="s", dataset_version="v", spec=DAILY, checkpoint_dir=checkpoints
    )


def test_an_interrupted_run_resumes_to_the_same_weights(fit_rows: pd.DataFrame, tmp_path: Path) -> None:
    straight = _train(fit_rows, CONFIG)
    first_half = _train(fit_rows, replace(CONFIG, epochs=2), tmp_path)
    assert (tmp_path / CHECKPOINT_FILE).exists() and len(first_half.history) == 2
    resumed = _train(fit_rows, CONFIG, tmp_path)
    assert resumed.resumed_from_epoch == 2
    assert resumed.history == straight.history
    for name, weights in straight.bundle.model.state_dict().items():
        torch.testing.assert_close(resumed.bundle.model.state_dict()[name], weights, rtol=0, atol=0)


def test_a_checkpoint_of_other_settings_is_refused(fit_rows: pd.DataFrame, tmp_path: Path) -> None:
    _train(fit_rows, replace(CONFIG, epochs=1), tmp_path)
    with pytest.raises(ValueError, match=r"settings differ \(batch_size: checkpoint 512, now 256\)"):
        _train(fit_rows, replace(CONFIG, batch_size=256), tmp_path)


def _job(
    tmp_path: Path, rows: pd.DataFrame, name: str, every_row: pd.DataFrame | None = None, windows: dict | None = None
) -> Path:
    folder = tmp_path / name
    TrainingSetFolder(folder / "fit").write_part(0, rows)
    if every_row is not None:
        TrainingSetFolder(folder / "all").write_part(0, every_row)
    job = TrainingJob(
        training_set=str(folder / "fit"),
        config=asdict(CONFIG),
        frequency="D",
        lags=[1, 2, 3, 4, 5, 6, 7, 14, 28],
        windows=[7, 28],
        feature_service="demand_forecast_v1",
        dataset_version="test",
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_root=str(tmp_path / "artifacts"),
        experiment="ddp-test",
        project_dir=str(Path.cwd()),
        refit_set=None if every_row is None else str(folder / "all"),
        backtest_windows=windows or {},
    )
    return job.write(folder / "job.json")


def _launch(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_gloo_ranks_under_torchrun_match_one_process(fit_rows: pd.DataFrame, tmp_path: Path) -> None:
    single = _launch([sys.executable, "-m", "training.job", str(_job(tmp_path, fit_rows, "single"))])
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    ddp = _launch([*torchrun, "-m", "training.job", str(_job(tmp_path, fit_rows, "ddp"))])
    assert (single["world_size"], ddp["world_size"]) == (1, 2)
    assert ddp["epochs_run"] == single["epochs_run"] == CONFIG.epochs

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    one = download_bundle(uri, single["run_id"], tmp_path / "one").predict(fit_rows.tail(200))
    two = download_bundle(uri, ddp["run_id"], tmp_path / "two").predict(fit_rows.tail(200))
    # Same batches, gradients averaged over two half-batches: equal up to float rounding.
    assert ddp["val_pinball"] == pytest.approx(single["val_pinball"], rel=1e-4)
    np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_a_refit_job_serves_a_model_of_every_row_and_keeps_the_backtests(
    fit_rows: pd.DataFrame, small_training_set: pd.DataFrame, tmp_path: Path
) -> None:
    windows = later_window_holdouts(21, CONFIG.horizon)  # fit_rows hold out 21 origins: windows 2 and 3 get models
    job = _job(tmp_path, fit_rows, "refit", small_training_set, {str(w): held for w, held in windows.items()})
    summary = _launch([sys.executable, "-m", "training.job", str(job)])
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    params = mlflow.MlflowClient(uri).get_run(summary["run_id"]).data.params
    assert params["refit_on_every_row"] == "True" and int(params["backtest_best_epoch"]) >= 1
    assert params["backtest_window_models"] == "2"
    backtest = download_backtest_bundle(uri, summary["run_id"], tmp_path / "backtest")
    served = download_bundle(uri, summary["run_id"], tmp_path / "served")
    latest = small_training_set[small_training_set["event_timestamp"] == small_training_set["event_timestamp"].max()]
    assert not np.allclose(backtest.predict(latest), served.predict(latest)), "two models, two forecasts"
    # The latest window's model is refit like the served one, on the rows before that window only.
    later = download_window_bundles(uri, summary["run_id"], tmp_path / "windows")
    assert sorted(later) == [2, 3]
    before, _ = split_by_origin(small_training_set, CONFIG.horizon, windows[3])
    expected = _train(before, replace(CONFIG, epochs=int(params["backtest_best_epoch"]))).bundle
    np.testing.assert_allclose(later[3].predict(latest), expected.predict(latest), rtol=1e-5)
    # The backtest's model is the plain job's: the same fitting rows and seed give the same weights.
    plain = _launch([sys.executable, "-m", "training.job", str(_job(tmp_path, fit_rows, "plain"))])
    np.testing.assert_allclose(
        download_bundle(uri, plain["run_id"], tmp_path / "plain").predict(latest), backtest.predict(latest), rtol=1e-5
    )
