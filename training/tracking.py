"""MLflow tracking of a training run: params, per-epoch metrics, the model and its bundle."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import asdict
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import infer_signature

from training.bundle import ForecasterBundle
from training.train import TrainConfig, TrainResult

BUNDLE_ARTIFACT = "bundle"


class ForecasterPyfunc(mlflow.pyfunc.PythonModel):
    """The bundle as an MLflow pyfunc: feature rows in, p10/p50/p90 per horizon day out."""

    def load_context(self, context) -> None:
        self.bundle = ForecasterBundle.load(Path(context.artifacts[BUNDLE_ARTIFACT]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return quantile_frame(self.bundle, model_input)


def quantile_frame(bundle: ForecasterBundle, features: pd.DataFrame) -> pd.DataFrame:
    forecast = bundle.predict(features)
    columns = {
        f"{q}_h{h + 1}": forecast[:, h, i]
        for i, q in enumerate(("p10", "p50", "p90"))
        for h in range(bundle.meta.horizon)
    }
    return pd.DataFrame(columns)


def model_input(features: pd.DataFrame, bundle: ForecasterBundle) -> pd.DataFrame:
    """The pyfunc input: series keys, the origin period (tz-naive, as MLflow schemas require), features."""
    frame = features[["store_id", "sku_id", "event_timestamp", *bundle.meta.spec.feature_names]]
    frame = frame.reset_index(drop=True)
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"]).dt.tz_localize(None)
    return frame


def git_commit(project_dir: Path) -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_dir, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "not-a-git-checkout"


def git_dirty(project_dir: Path) -> bool:
    """Whether tracked code differs from the commit (then the commit alone cannot reproduce the run)."""
    done = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=project_dir, capture_output=True, text=True
    )
    return done.returncode != 0 or bool(done.stdout.strip())


def use_experiment(tracking_uri: str, artifact_root: Path, experiment: str) -> None:
    """Make `experiment` current, creating it with artifacts under artifact_root (not ./mlruns)."""
    mlflow.set_tracking_uri(tracking_uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment, artifact_location=artifact_root.as_uri())
    mlflow.set_experiment(experiment)


def start_run(tracking_uri: str, artifact_root: Path, experiment: str) -> mlflow.ActiveRun:
    """An MLflow run in the experiment."""
    use_experiment(tracking_uri, artifact_root, experiment)
    return mlflow.start_run()


def log_training(result: TrainResult, config: TrainConfig, *, example: pd.DataFrame, project_dir: Path) -> str:
    """Log params and the model into the active run; returns the logged model's URI."""
    meta = result.bundle.meta
    mlflow.log_params(
        {
            **asdict(config),
            "dataset_version": meta.dataset_version,
            "feature_service": meta.feature_service,
            "git_commit": git_commit(project_dir),
            "git_dirty": git_dirty(project_dir),
            "device": result.device,
            "frequency": meta.frequency,
            "lags": ",".join(map(str, meta.lags)),
            "windows": ",".join(map(str, meta.windows)),
            "best_epoch": result.best_epoch,
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = result.bundle.save(Path(tmp) / BUNDLE_ARTIFACT)
        mlflow.log_artifacts(str(bundle_dir), artifact_path=BUNDLE_ARTIFACT)
        example = model_input(example, result.bundle)
        signature = infer_signature(example, quantile_frame(result.bundle, example))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ForecasterPyfunc(),
            artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
            signature=signature,
            input_example=example,
        )
    return info.model_uri


def download_bundle(tracking_uri: str, run_id: str, destination: Path) -> ForecasterBundle:
    """The bundle logged by a run, fetched from MLflow."""
    mlflow.set_tracking_uri(tracking_uri)
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=BUNDLE_ARTIFACT, dst_path=str(destination))
    return ForecasterBundle.load(Path(path))
