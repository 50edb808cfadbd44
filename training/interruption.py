"""A training job that outlives the run that launched it, and the MLflow runs such jobs leave behind.

The launching process (a Dagster step) passes its pid and its Dagster run id in the environment.
The job watches that pid: when its launcher is killed, nothing will ever register what it trains,
so it stops at once instead of training for hours into the void. Its MLflow run, still RUNNING,
carries the Dagster run id; `fail_interrupted_runs` marks such runs FAILED once that Dagster run is
over (pipelines/reconcile.py decides which runs still live).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Collection, Mapping

from mlflow import MlflowClient
from mlflow.entities import RunStatus

# Not DEMANDOPS_*: the settings read those, and these are no setting.
LAUNCHER_PID_ENV = "TRAINING_LAUNCHER_PID"
DAGSTER_RUN_ENV = "TRAINING_DAGSTER_RUN"
DAGSTER_RUN_TAG = "demandops.dagster_run"
INTERRUPTED_TAG = "demandops.interrupted"
EXIT_ORPHANED = 75  # EX_TEMPFAIL: the work may be launched again
WATCH_INTERVAL_S = 1.0


def launch_env(env: Mapping[str, str], dagster_run_id: str) -> dict[str, str]:
    """The job's environment: `env` plus who launched it."""
    return {**env, LAUNCHER_PID_ENV: str(os.getpid()), DAGSTER_RUN_ENV: dagster_run_id}


def run_tags() -> dict[str, str]:
    """Tags of the job's MLflow run: the Dagster run it trains for, when launched by one."""
    run_id = os.environ.get(DAGSTER_RUN_ENV)
    return {DAGSTER_RUN_TAG: run_id} if run_id else {}


def watch_launcher() -> threading.Thread | None:
    """Exit as soon as the launching process is gone; None when the job was started by hand."""
    pid = os.environ.get(LAUNCHER_PID_ENV)
    if not pid:
        return None

    launcher, direct = int(pid), os.getppid() == int(pid)

    def watch() -> None:
        while _alive(launcher, direct):
            time.sleep(WATCH_INTERVAL_S)
        print(f"training job: its launcher (process {pid}) is gone; stopping", file=sys.stderr, flush=True)
        os._exit(EXIT_ORPHANED)  # no cleanup to run: the next reconcile marks the MLflow run FAILED

    watcher = threading.Thread(target=watch, name="launcher-watch", daemon=True)
    watcher.start()
    return watcher


def _alive(launcher: int, direct: bool) -> bool:
    """A direct child knows for sure: it is reparented when its parent dies (a reused pid can't fool
    that). Under torchrun the launcher is a grandparent, asked by pid."""
    if direct:
        return os.getppid() == launcher
    try:
        os.kill(launcher, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def fail_interrupted_runs(tracking_uri: str, experiment: str, live_runs: Collection[str], reason: str) -> list[str]:
    """Mark FAILED every RUNNING MLflow run of the experiment launched by a Dagster run not in `live_runs`.

    Runs started by hand (no Dagster run recorded) are never touched.
    """
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    running = client.search_runs(
        [found.experiment_id], filter_string=f"attributes.status = '{RunStatus.to_string(RunStatus.RUNNING)}'"
    )
    failed = []
    for run in running:
        launched_by = run.data.tags.get(DAGSTER_RUN_TAG)
        if launched_by and launched_by not in live_runs:
            client.set_tag(run.info.run_id, INTERRUPTED_TAG, reason)
            client.set_terminated(run.info.run_id, status=RunStatus.to_string(RunStatus.FAILED))
            failed.append(run.info.run_id)
    return failed
