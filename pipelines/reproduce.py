"""`demandops reproduce RUN_ID`: re-run a training from its MLflow params alone, and compare.

The run recorded the git commit, the DVC dataset version, the hyperparameters and the cadence.
Reproducing it checks that commit out into a git worktree, restores that dataset version from
the DVC remote (or regenerates it, for the simulator's data), runs the chain there in a fresh
state folder with the recorded hyperparameters, and compares the backtest WAPE.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from demandops.errors import ReproductionError
from demandops.settings import Settings
from salesdata.datasets import LOCAL_REMOTE_DIRNAME
from salesdata.dvc_versions import LOCAL_REMOTE_NAME, dvc_file, ensure_repo, recorded_version
from training.tracking import NOT_A_CHECKOUT, TrainingRecord, read_training_record

# Recorded cadence params and the settings that reproduce them, e.g. DEMANDOPS_CADENCES__D__HORIZON.
CADENCE_SETTINGS = {
    "horizon": "HORIZON",
    "seasonal_period": "SEASONAL_PERIOD",
    "validation_periods": "VALIDATION_PERIODS",
    "backtest_origins": "BACKTEST_PERIODS",
}


@dataclass(frozen=True)
class Reproduction:
    run_id: str
    git_commit: str
    dataset_version: str
    original_wape: float
    reproduced_wape: float
    workdir: str

    @property
    def relative_difference(self) -> float:
        return abs(self.reproduced_wape - self.original_wape) / self.original_wape


def recorded_run(settings: Settings, run_id: str) -> TrainingRecord:
    """What a run recorded; refuses a run that cannot be reproduced, saying why."""
    try:
        run = MlflowClient(tracking_uri=settings.mlflow_tracking_uri).get_run(run_id)
    except MlflowException as missing:
        raise ReproductionError(f"no MLflow run {run_id} in {settings.mlflow_tracking_uri}") from missing
    record = read_training_record(run_id, run.data.params, run.data.metrics)
    if record.git_commit == NOT_A_CHECKOUT:
        raise ReproductionError(f"run {run_id} ran outside a git checkout: its code is unknown")
    if record.git_dirty:
        raise ReproductionError(f"run {run_id} ran on uncommitted changes to {record.git_commit[:12]}")
    return record


def reproduce(settings: Settings, run_id: str, workdir: Path) -> Reproduction:
    """Re-run the recorded training in `workdir` and return both backtest WAPEs."""
    record = recorded_run(settings, run_id)
    source = workdir / "src"
    if source.exists():
        raise ReproductionError(f"{source} exists already; give an empty --workdir")
    workdir.mkdir(parents=True, exist_ok=True)
    _git(settings.project_dir, "worktree", "add", "--detach", str(source), record.git_commit)
    try:
        _restore_data(settings, source, record.dataset_version)
        _run_chain(settings, source, workdir / "state", record)
        reproduced = _latest_wape(workdir / "state")
    finally:
        _git(settings.project_dir, "worktree", "remove", "--force", str(source))
    return Reproduction(
        run_id=run_id,
        git_commit=record.git_commit,
        dataset_version=record.dataset_version,
        original_wape=record.backtest_wape,
        reproduced_wape=reproduced,
        workdir=str(workdir),
    )


def _git(cwd: Path, *args: str) -> None:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ReproductionError(f"git {' '.join(args)} failed: {done.stderr.strip()}")


def _restore_data(settings: Settings, source: Path, version: str) -> None:
    """Point the worktree's DVC at this checkout's remote, and its record at the run's version.

    The chain then pulls that version (or regenerates it, for simulated data absent from the remote).
    """
    remote = settings.project_dir / LOCAL_REMOTE_DIRNAME
    if remote.is_dir():
        with ensure_repo(source).config.edit("local") as config:
            config["remote"][LOCAL_REMOTE_NAME] = {"url": str(remote)}
            config["core"]["remote"] = LOCAL_REMOTE_NAME
    record = dvc_file(source / "data")
    if not record.is_file() or recorded_version(source / "data") != version:
        record.write_text(f"outs:\n- md5: {version}.dir\n  hash: md5\n  path: data\n")


def _run_chain(settings: Settings, source: Path, state: Path, record: TrainingRecord) -> None:
    frequency = record.frequency
    # The reproduction's own settings: a local profile whose state (Dagster, BentoML, MLflow) is the fresh folder.
    reproduction = Settings(profile="local", project_dir=source, state_dir=state, data_dir=source / "data")
    env = {
        **reproduction.child_env(),
        "PYTHONPATH": str(source),  # the recorded commit's code, not this checkout's
        "DEMANDOPS_PRESET": settings.preset,
        **{f"DEMANDOPS_CADENCES__{frequency}__{name}": record.cadence[key] for key, name in CADENCE_SETTINGS.items()},
        f"DEMANDOPS_CADENCES__{frequency}__LAGS": f"[{record.lags}]",
        f"DEMANDOPS_CADENCES__{frequency}__WINDOWS": f"[{record.windows}]",
    }
    cli = "from pipelines.cli import app; app()"  # the recorded commit's CLI, found through PYTHONPATH
    command = [sys.executable, "-c", cli, "run", "--training-config", json.dumps(record.hyperparameters)]
    log = state.parent / "chain.log"
    with log.open("w") as output:
        done = subprocess.run(command, cwd=source, env=env, stdout=output, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise ReproductionError(f"the reproduction's chain failed; its log is {log}:\n{log.read_text()[-3000:]}")


def _latest_wape(state: Path) -> float:
    client = MlflowClient(tracking_uri=Settings(profile="local", state_dir=state).mlflow_tracking_uri)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], order_by=["attributes.start_time DESC"], max_results=1
    )
    if not runs:
        raise ReproductionError(f"the reproduction in {state} logged no training run")
    return read_training_record(runs[0].info.run_id, runs[0].data.params, runs[0].data.metrics).backtest_wape
