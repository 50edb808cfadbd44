"""Work an interrupted run left behind, found and closed (`demandops lifecycle reconcile`, and the
start of every run).

A run that is killed (kill -9, a lost machine) cannot clean up after itself: its Dagster run stays
STARTED, the model version it was carrying stays Trained or Validated, its MLflow training run stays
RUNNING and its job folder stays on disk. Every run records the process that executes it (host,
pid, start time: demandops/processes.py); a run whose process is gone is dead, and so is
everything it left unfinished:
- the Dagster run is marked failed;
- each version it registered and did not finish goes to Failed or Rejected, reason "interrupted";
- its MLflow run is marked FAILED;
- its job folder is removed (checkpoints are kept elsewhere: a relaunch resumes from them).
A run recorded on another host, or one without a recorded process, is never judged dead from here.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from demandops.processes import ProcessIdentity
from demandops.settings import Settings
from lifecycle.evidence import pipeline_run_of
from lifecycle.registry import ModelRegistry
from training.interruption import fail_interrupted_runs

OWNER_PREFIX = "demandops/owner_"  # run tags naming the process that executes the run
JOBS_DIRNAME = "training_jobs"


def owner_tags() -> dict[str, str]:
    """Tags that make this process the owner of a run (given at launch, or added by its first step)."""
    return ProcessIdentity.current().to_tags(OWNER_PREFIX)


def claim_run(context: dg.AssetExecutionContext) -> None:
    """Record this process as the run's owner unless the launch did (a run started from the UI)."""
    if ProcessIdentity.from_tags(context.run.tags, OWNER_PREFIX) is None:
        context.instance.add_run_tags(context.run_id, owner_tags())


@contextmanager
def job_folder(settings: Settings, run_id: str) -> Iterator[Path]:
    """Where a run's training job writes its inputs: removed when the step ends, or by reconcile
    when the run was killed first."""
    folder = settings.state / JOBS_DIRNAME / run_id
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Reconciled:
    runs: list[str] = field(default_factory=list)  # Dagster runs marked failed
    versions: list[str] = field(default_factory=list)  # "v3 Trained -> Rejected"
    mlflow_runs: list[str] = field(default_factory=list)
    job_folders: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.runs or self.versions or self.mlflow_runs or self.job_folders)

    def describe(self) -> str:
        if not self:
            return "nothing was left unfinished"
        parts = [
            f"{len(self.runs)} interrupted run(s) marked failed",
            f"versions {', '.join(self.versions)}" if self.versions else "",
            f"{len(self.mlflow_runs)} MLflow run(s) marked FAILED" if self.mlflow_runs else "",
            f"{len(self.job_folders)} job folder(s) removed" if self.job_folders else "",
        ]
        return "; ".join(p for p in parts if p)


def reconcile(settings: Settings, instance: dg.DagsterInstance, registry: ModelRegistry) -> Reconciled:
    """Close everything dead runs left unfinished; runs still alive and their work are left alone."""
    done = Reconciled()
    live: set[str] = set()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES)):
        owner = ProcessIdentity.from_tags(run.tags, OWNER_PREFIX)
        if owner is None or owner.alive():
            live.add(run.run_id)
            continue
        instance.report_run_failed(run, message=f"interrupted: its {owner.describe()} is gone")
        done.runs.append(run.run_id)
    for version in registry.unfinished():
        run_id = pipeline_run_of(version.tags)
        if run_id in live or (not run_id and live):  # still carried, or can't tell while a run works
            continue
        reason = f"interrupted: run {run_id or '(unrecorded)'} ended with this version {version.state}"
        closed = registry.compensate(version.version, reason=reason)
        done.versions.append(f"v{version.version} {version.state} -> {closed.state}")
    reason = "interrupted: the Dagster run that launched it is dead"
    done.mlflow_runs = fail_interrupted_runs(settings.mlflow_tracking_uri, settings.model.experiment, live, reason)
    jobs = settings.state / JOBS_DIRNAME
    for folder in sorted(jobs.iterdir()) if jobs.is_dir() else []:
        if folder.name not in live:
            shutil.rmtree(folder, ignore_errors=True)
            done.job_folders.append(folder.name)
    return done
