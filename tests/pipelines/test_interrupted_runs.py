"""kill -9 in the middle of a run: the training job stops with it, and the next run (or `demandops
lifecycle reconcile`) leaves no run STARTED, no version Trained, no MLflow run RUNNING, no job folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psutil
import pytest
from mlflow import MlflowClient

from demandops.settings import Settings
from lifecycle.registry import ModelRegistry
from lifecycle.states import State
from pipelines.reconcile import JOBS_DIRNAME
from pipelines.run import open_instance, run_chain
from tests.conftest import wait_until
from training.interruption import INTERRUPTED_TAG

DEMANDOPS = str(Path(sys.executable).with_name("demandops"))


def start_run(settings: Settings, training: dict, log: Path) -> subprocess.Popen:
    command = [DEMANDOPS, "run", "--training-config", json.dumps(training)]
    return subprocess.Popen(
        command, env=settings.child_env(), cwd=settings.project_dir, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def mlflow_runs(settings: Settings, status: str) -> list:
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(settings.model.experiment)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], filter_string=f"attributes.status = '{status}'")


def dagster_runs(settings: Settings) -> dict[str, dg.DagsterRunStatus]:
    with open_instance(settings) as instance:
        return {run.run_id: run.status for run in instance.get_runs()}


# 428 s in the suite on 2 cores on a slow day (2026-12-02): too near the default 600 s.
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_killed_run_leaves_nothing_unfinished(project_with_data: Settings, tmp_path: Path) -> None:
    settings = project_with_data
    registry = ModelRegistry.from_settings(settings)

    # Killed while training: its training job notices and stops; it registered nothing.
    run = start_run(settings, {"epochs": 500, "patience": 500}, tmp_path / "first.log")
    wait_until(lambda: mlflow_runs(settings, "RUNNING"), "training started", timeout_s=600)
    [trainer] = [p for p in psutil.Process(run.pid).children(recursive=True) if "training.job" in " ".join(p.cmdline())]
    run.kill()  # the run's own process only: its trainer is orphaned, not killed
    run.wait()
    trainer.wait(timeout=30)  # raises TimeoutExpired unless the trainer stops within seconds of its launcher
    assert list(dagster_runs(settings).values()) == [dg.DagsterRunStatus.STARTED]
    assert any((settings.state / JOBS_DIRNAME).iterdir()), "the job folder was left behind"

    reconciled = subprocess.run(
        [DEMANDOPS, "lifecycle", "reconcile"], env=settings.child_env(), capture_output=True, text=True, timeout=300
    )
    assert reconciled.returncode == 0, reconciled.stderr
    assert reconciled.stdout.startswith("1 interrupted run(s) marked failed; 1 MLflow run(s) marked FAILED; 1 job")
    assert list(dagster_runs(settings).values()) == [dg.DagsterRunStatus.FAILURE]
    [failed] = mlflow_runs(settings, "FAILED")
    assert failed.data.tags[INTERRUPTED_TAG].startswith("interrupted") and not mlflow_runs(settings, "RUNNING")
    assert not any((settings.state / JOBS_DIRNAME).iterdir()) and registry.versions() == []

    # Killed (with everything it started) while the backtest judges the new version: it stays Trained.
    run = start_run(settings, {"epochs": 2}, tmp_path / "second.log")
    wait_until(lambda: any(v.state == State.TRAINED for v in registry.versions()), "a version trained", 600)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    [orphan] = registry.unfinished()

    # The next run closes it before doing its own work.
    summary = run_chain(settings)
    assert summary.reconciled.startswith("1 interrupted run(s) marked failed; versions v1 ")
    closed = registry.get(orphan.version)
    assert closed.state in (State.REJECTED, State.FAILED) and registry.unfinished() == []
    [entry] = [e for e in registry.audit.history(settings.model.name) if e.version == orphan.version][-1:]
    assert entry.reason.startswith(f"interrupted: run {closed.tags['pipeline.run_id']} ended with this version")
    statuses = sorted(dagster_runs(settings).values(), key=str)
    assert statuses.count(dg.DagsterRunStatus.STARTED) == 0 and statuses.count(dg.DagsterRunStatus.SUCCESS) == 1
    assert summary.production_version == summary.model_version != orphan.version
