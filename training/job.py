"""The training job: trains, logs the MLflow run, and reports back to whoever launched it.

Dagster launches it through Dagster Pipes: a local subprocess here, the same command on a GPU
node elsewhere, and under torchrun for several processes. Every rank trains (DDP); rank 0
alone logs to MLflow and reports. It also runs by hand, printing its summary as JSON:

    python -m training.job JOB.json
    torchrun --nproc_per_node 2 -m training.job JOB.json
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import mlflow
import pandas as pd
from dagster_pipes import PipesContext, PipesEnvVarParamsLoader, open_dagster_pipes

from demandops.progress import progress_line
from demandops.settings import Cadence, Settings
from training.dataset import origin_split
from training.distributed import Worker, start_worker, stop_worker
from training.features import FeatureSpec
from training.interruption import run_tags, watch_launcher
from training.origins import PERIODS_PER_YEAR
from training.tracking import (
    BACKTEST_BUNDLE_ARTIFACT,
    cadence_params,
    log_bundle,
    log_training,
    start_run,
    window_bundle_artifact,
)
from training.train import EpochCallback, Hyperparameters, TrainConfig, TrainResult, train_forecaster
from training.training_folder import TrainingSetFolder


@dataclass
class TrainingJob:
    """Everything the job needs, as plain JSON: it may run on another machine."""

    training_set: str  # folder of Parquet parts (training/training_folder.py): features, labels, recorded plan
    config: dict
    frequency: str
    lags: list[int]
    windows: list[int]
    feature_service: str
    dataset_version: str
    tracking_uri: str
    artifact_root: str
    experiment: str
    project_dir: str
    checkpoint_dir: str | None = None  # resume from here after an interruption
    params: dict[str, str | int | float] = field(default_factory=dict)  # logged with the run, e.g. the cadence
    series: str | None = None  # Parquet of every series to forecast, those without fitting rows included
    fit_until: str | None = None  # the last fitting origin (ISO); None: every row of training_set fits
    refit_set: str | None = None  # folder of every row: the served model is refit on it (training/windows.py)
    # With refit_set: backtest window number -> origins from its start on; each window after the
    # first gets a model refit on the rows before it (training/windows.later_window_holdouts).
    backtest_windows: dict[str, int] = field(default_factory=dict)

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def read(cls, path: Path) -> TrainingJob:
        return cls(**json.loads(path.read_text()))


def prepare_job(
    folder: Path,
    training: TrainingSetFolder,
    hyperparameters: Hyperparameters,
    *,
    fit_until: pd.Timestamp,
    settings: Settings,
    cadence: Cadence,
    spec: FeatureSpec,
    feature_service: str,
    dataset_version: str,
    series: pd.DataFrame | None = None,
    refit: bool = False,
    backtest_windows: dict[int, int] | None = None,
) -> Path:
    """Write every series to forecast and the job into `folder`; returns the job file. The job reads
    its rows from the training set's folder: those up to `fit_until`, and every row when `refit`.

    The job may run on its own machine (with the lake mounted). The checkpoint folder is keyed by
    data and config: an interrupted launch of the same job resumes there.
    """
    config = TrainConfig(
        **asdict(hyperparameters),
        horizon=cadence.horizon,
        quantiles=settings.model.quantiles,
        validation_origins=cadence.validation_periods,
        seasonal_period=cadence.seasonal_period,
        recency_half_life=settings.training_set.recency_half_life_years * PERIODS_PER_YEAR[spec.frequency],
    )
    if series is not None:
        series.to_parquet(folder / "series.parquet", index=False)
    key = hashlib.sha256(json.dumps([dataset_version, asdict(config)], sort_keys=True).encode()).hexdigest()[:16]
    job = TrainingJob(
        training_set=str(training.directory),
        fit_until=fit_until.isoformat(),
        config=asdict(config),
        frequency=spec.frequency,
        lags=list(spec.lags),
        windows=list(spec.windows),
        feature_service=feature_service,
        dataset_version=dataset_version,
        tracking_uri=settings.mlflow_tracking_uri,
        artifact_root=str(settings.mlflow_artifact_root),
        experiment=settings.model.experiment,
        project_dir=str(settings.project_dir),
        checkpoint_dir=str(settings.state / "checkpoints" / key),
        params=cadence_params(cadence),
        series=None if series is None else str(folder / "series.parquet"),
        refit_set=str(training.directory) if refit else None,
        backtest_windows={str(window): origins for window, origins in (backtest_windows or {}).items()},
    )
    return job.write(folder / "job.json")


def launch_command(job_file: Path, processes: int) -> list[str]:
    """The job as one process, or as `processes` DDP ranks under torchrun."""
    if processes <= 1:
        return [sys.executable, "-m", "training.job", str(job_file)]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    return [*launcher, "-m", "training.job", str(job_file)]


def run_job(job: TrainingJob, worker: Worker, on_epoch: EpochCallback | None = None) -> dict | None:
    """Train; on rank 0 also log the run and return its summary (None on the other ranks)."""
    until = pd.Timestamp(job.fit_until) if job.fit_until else None
    rows = TrainingSetFolder(Path(job.training_set))  # read part by part (training/training_rows.py)
    config = TrainConfig(**{**job.config, "quantiles": tuple(job.config["quantiles"])})
    spec = FeatureSpec(frequency=job.frequency, lags=tuple(job.lags), windows=tuple(job.windows))
    checkpoints = Path(job.checkpoint_dir) if job.checkpoint_dir else None
    series = pd.read_parquet(job.series) if job.series else None
    train = dict(
        feature_service=job.feature_service,
        dataset_version=job.dataset_version,
        spec=spec,
        worker=worker,
        series=series,
    )
    if not worker.is_main:
        first = train_forecaster(rows, config, checkpoint_dir=checkpoints, until=until, **train)
        _refits(job, config, first, train)
        return None

    def log_epoch(epoch: int, metrics: dict[str, float]) -> None:
        mlflow.log_metrics(metrics, step=epoch)
        if on_epoch:
            on_epoch(epoch, metrics)

    with start_run(job.tracking_uri, Path(job.artifact_root), job.experiment, tags=run_tags()) as run:
        result = train_forecaster(rows, config, checkpoint_dir=checkpoints, on_epoch=log_epoch, until=until, **train)
        later, served = _refits(job, config, result, train)
        for window, model in later.items():
            log_bundle(model.bundle, window_bundle_artifact(window))
        if served is not result:  # the backtest scores the models that did not see its rows
            log_bundle(result.bundle, BACKTEST_BUNDLE_ARTIFACT)
        model_uri = log_training(served, config, example=rows.head(3), project_dir=Path(job.project_dir))
        mlflow.log_params(
            {
                **job.params,
                "world_size": worker.world_size,
                "resumed_from_epoch": result.resumed_from_epoch,
                "refit_on_every_row": served is not result,
                "backtest_best_epoch": result.best_epoch,
                "backtest_window_models": len(later),
            }
        )
    if checkpoints:  # the run holds the model now; a later launch starts afresh
        shutil.rmtree(checkpoints, ignore_errors=True)
    return {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "model_uri": model_uri,
        "device": result.device,
        "world_size": worker.world_size,
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "val_pinball": result.history[result.best_epoch - 1]["val_pinball"],
        "resumed_from_epoch": result.resumed_from_epoch,
        "fit_rows": result.rows_read,
    }


def _refits(
    job: TrainingJob, config: TrainConfig, first: TrainResult, train: dict
) -> tuple[dict[int, TrainResult], TrainResult]:
    """When the job asks for a refit (training/windows.py): the backtest's models of its later
    windows, each on the rows before its window, and the model to serve, on every row; all for the
    epochs `first` found best (no checkpoints: they are short, and their config differs).
    Otherwise no window models, and `first` is served."""
    if not job.refit_set:
        return {}, first
    every_row = TrainingSetFolder(Path(job.refit_set))
    fixed = replace(config, epochs=max(1, first.best_epoch))
    later, origins = {}, every_row.origins()
    for window, held in sorted(job.backtest_windows.items(), key=lambda item: int(item[0])):
        before, _first_held = origin_split(origins, config.horizon, held)  # the rows before its window
        later[int(window)] = train_forecaster(every_row, fixed, until=before, **train)
    return later, train_forecaster(every_row, fixed, **train)


def _report_to_dagster(job: TrainingJob, worker: Worker) -> None:
    with open_dagster_pipes() as pipes:
        pipes.log.info(f"training on {worker.world_size} process(es) from {job.training_set}")
        epochs = int(job.config["epochs"])  # at most: early stopping may end sooner
        summary = run_job(job, worker, on_epoch=lambda epoch, m: _log_epoch(pipes, epoch, epochs, m))
        pipes.report_asset_materialization(metadata=summary)


def _log_epoch(pipes: PipesContext, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
    scores = ", ".join(f"{k} {v:.5f}" for k, v in metrics.items())
    pipes.log.info(progress_line(epoch, max(epoch, epochs), f"epoch {epoch}: {scores}"))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m training.job JOB.json", file=sys.stderr)
        return 2
    job = TrainingJob.read(Path(argv[1]))
    watch_launcher()
    worker = start_worker()
    try:
        if worker.is_main and PipesEnvVarParamsLoader().is_dagster_pipes_process():
            _report_to_dagster(job, worker)
        else:
            summary = run_job(job, worker)
            if summary is not None:
                print(json.dumps(summary))
    finally:
        stop_worker(worker)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
