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

from demandops.datasets import LOCAL_REMOTE_DIRNAME
from demandops.errors import ReproductionError
from demandops.lineage import LOCAL_REMOTE_NAME, dvc_file, ensure_repo, recorded_version
from demandops.settings import Settings
from pipelines.assets.training import TrainingConfig

METRIC = "backtest_wape"
# Recorded cadence params and the settings that reproduce them, e.g. DEMANDOPS_CADENCES__D__HORIZON.
CADENCE_PARAMS = {
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


def recorded_run(settings: Settings, run_id: str) -> tuple[dict[str, str], float]:
    """The params and backtest WAPE a run recorded; refuses a run that cannot be reproduced."""
    try:
        run = MlflowClient(tracking_uri=settings.mlflow_tracking_uri).get_run(run_id)
    except MlflowException as missing:
        raise ReproductionError(f"no MLflow run {run_id} in {settings.mlflow_tracking_uri}") from missing
    params = run.data.params
    needed = ["git_commit", "dataset_version", "frequency", *CADENCE_PARAMS]
    absent = [name for name in needed if name not in params]
    if absent or METRIC not in run.data.metrics:
        raise ReproductionError(f"run {run_id} did not record {', '.join(absent) or METRIC}; it cannot be reproduced")
    if params["git_commit"] == "not-a-git-checkout":
        raise ReproductionError(f"run {run_id} ran outside a git checkout: its code is unknown")
    if params.get("git_dirty") == "True":
        raise ReproductionError(f"run {run_id} ran on uncommitted changes to {params['git_commit'][:12]}")
    return params, run.data.metrics[METRIC]


def training_config(params: dict[str, str]) -> dict:
    """The Launchpad hyperparameters of the run, typed as TrainingConfig declares them."""
    fields = TrainingConfig.model_fields
    raw = {name: params[name] for name in fields if name in params}
    return TrainingConfig.model_validate(
        {k: json.loads(v.lower()) if v in ("True", "False") else v for k, v in raw.items()}
    ).model_dump()


def reproduce(settings: Settings, run_id: str, workdir: Path) -> Reproduction:
    """Re-run the recorded training in `workdir` and return both backtest WAPEs."""
    params, original = recorded_run(settings, run_id)
    source = workdir / "src"
    if source.exists():
        raise ReproductionError(f"{source} exists already; give an empty --workdir")
    workdir.mkdir(parents=True, exist_ok=True)
    _git(settings.project_dir, "worktree", "add", "--detach", str(source), params["git_commit"])
    try:
        _restore_data(settings, source, params["dataset_version"])
        _run_chain(settings, source, workdir / "state", params)
        reproduced = _latest_wape(workdir / "state")
    finally:
        _git(settings.project_dir, "worktree", "remove", "--force", str(source))
    return Reproduction(
        run_id=run_id,
        git_commit=params["git_commit"],
        dataset_version=params["dataset_version"],
        original_wape=original,
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


def _run_chain(settings: Settings, source: Path, state: Path, params: dict[str, str]) -> None:
    frequency = params["frequency"]
    # The reproduction's own settings: a local profile whose state (Dagster, BentoML, MLflow) is the fresh folder.
    reproduction = Settings(profile="local", project_dir=source, state_dir=state, data_dir=source / "data")
    env = {
        **reproduction.child_env(),
        "PYTHONPATH": str(source),  # the recorded commit's code, not this checkout's
        "DEMANDOPS_PRESET": settings.preset,
        **{f"DEMANDOPS_CADENCES__{frequency}__{name}": params[key] for key, name in CADENCE_PARAMS.items()},
        f"DEMANDOPS_CADENCES__{frequency}__LAGS": f"[{params['lags']}]",
        f"DEMANDOPS_CADENCES__{frequency}__WINDOWS": f"[{params['windows']}]",
    }
    cli = "from pipelines.cli import app; app()"  # the recorded commit's CLI, found through PYTHONPATH
    command = [sys.executable, "-c", cli, "run", "--training-config", json.dumps(training_config(params))]
    log = state.parent / "chain.log"
    with log.open("w") as output:
        done = subprocess.run(command, cwd=source, env=env, stdout=output, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise ReproductionError(f"the reproduction's chain failed; its log is {log}:\n{log.read_text()[-3000:]}")


def _latest_wape(state: Path) -> float:
    client = MlflowClient(tracking_uri=f"sqlite:///{state / 'mlflow' / 'mlflow.db'}")
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], order_by=["attributes.start_time DESC"], max_results=1
    )
    if not runs or METRIC not in runs[0].data.metrics:
        raise ReproductionError(f"the reproduction in {state} logged no {METRIC}")
    return runs[0].data.metrics[METRIC]
