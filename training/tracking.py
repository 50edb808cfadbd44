"""MLflow tracking of a training run: params, per-epoch metrics, the model and its bundle, the backtest.

The run's record is written here (its params, the backtest's metrics and artifacts) and read back
here (what a reproduction needs): no other module names a param or a metric of it.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from importlib.metadata import version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from packaging.version import Version

from demandops.errors import ReproductionError
from demandops.settings import Cadence
from training.bundle import META_FILE, PLAN_FILE, ForecasterBundle
from training.evaluate import Evaluation, write_residuals
from training.plots import calibration_plot, forecast_plot, lead_time_plot, residual_plot
from training.train import Hyperparameters, TrainConfig, TrainResult

BUNDLE_ARTIFACT = "bundle"
BACKTEST_BUNDLE_ARTIFACT = "backtest_bundle"  # the backtest's model, when the served one was refit on every row
BACKTEST_ARTIFACTS = "backtest"
WINDOW_BUNDLE_PREFIX = "backtest_bundle_window_"  # the backtest's models of its later windows, when refit
NOT_A_CHECKOUT = "not-a-git-checkout"
# The cadence a run was trained with; `horizon` comes with the TrainConfig params.
CADENCE_PARAMS = ("horizon", "seasonal_period", "validation_periods", "backtest_origins")
# What loading the pyfunc imports. Named rather than inferred: MLflow's inference loads the model
# in a subprocess (3 to 6 s a run) and left torch out of the list it wrote.
MODEL_DISTRIBUTIONS = (
    "demandops", "mlflow", "cloudpickle", "torch", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn",
)  # fmt: skip


def model_requirements() -> list[str]:
    """The pyfunc's pip requirements: each distribution it imports, at the version installed here."""
    # The public version: a CPU build's "+cpu" would name a wheel only PyTorch's own index has.
    return [f"{name}=={Version(version(name)).public}" for name in MODEL_DISTRIBUTIONS]


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
    return done.stdout.strip() if done.returncode == 0 else NOT_A_CHECKOUT


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


def start_run(
    tracking_uri: str, artifact_root: Path, experiment: str, tags: dict[str, str] | None = None
) -> mlflow.ActiveRun:
    """An MLflow run in the experiment."""
    use_experiment(tracking_uri, artifact_root, experiment)
    return mlflow.start_run(tags=tags)


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
            pip_requirements=model_requirements(),
        )
    return info.model_uri


def cadence_params(cadence: Cadence) -> dict[str, int]:
    """The cadence params a job logs beside its TrainConfig."""
    return {
        "seasonal_period": cadence.seasonal_period,
        "validation_periods": cadence.validation_periods,
        "backtest_origins": cadence.backtest_origins,
    }


def log_bundle(bundle: ForecasterBundle, artifact_path: str) -> None:
    """A bundle's files into the active run, under `artifact_path`."""
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.log_artifacts(str(bundle.save(Path(tmp) / artifact_path)), artifact_path=artifact_path)


def download_bundle(
    tracking_uri: str, run_id: str, destination: Path, *, artifact_path: str = BUNDLE_ARTIFACT
) -> ForecasterBundle:
    """The bundle logged by a run (the served one by default), fetched from MLflow."""
    mlflow.set_tracking_uri(tracking_uri)
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path, dst_path=str(destination))
    return ForecasterBundle.load(Path(path))


def bundle_lead_time(tracking_uri: str, run_id: str, destination: Path) -> tuple[dict, int]:
    """The served bundle's lead-time calibration and horizon, from its meta file alone (not its weights)."""
    mlflow.set_tracking_uri(tracking_uri)
    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=f"{BUNDLE_ARTIFACT}/{META_FILE}", dst_path=str(destination)
    )
    meta = json.loads(Path(path).read_text())
    return meta.get("lead_time") or {}, int(meta["horizon"])


def download_backtest_bundle(tracking_uri: str, run_id: str, destination: Path) -> ForecasterBundle:
    """The model the backtest scores: the one trained without the backtest's rows."""
    logged = {entry.path for entry in MlflowClient(tracking_uri).list_artifacts(run_id)}
    path = BACKTEST_BUNDLE_ARTIFACT if BACKTEST_BUNDLE_ARTIFACT in logged else BUNDLE_ARTIFACT
    return download_bundle(tracking_uri, run_id, destination, artifact_path=path)


def window_bundle_artifact(window: int) -> str:
    return f"{WINDOW_BUNDLE_PREFIX}{window}"


def download_window_bundles(tracking_uri: str, run_id: str, destination: Path) -> dict[int, ForecasterBundle]:
    """The backtest's models of its later windows, by window number ({} when it has one model)."""
    logged = [entry.path for entry in MlflowClient(tracking_uri).list_artifacts(run_id)]
    windows = sorted(
        int(path.removeprefix(WINDOW_BUNDLE_PREFIX)) for path in logged if path.startswith(WINDOW_BUNDLE_PREFIX)
    )
    return {
        window: download_bundle(
            tracking_uri, run_id, destination / str(window), artifact_path=window_bundle_artifact(window)
        )
        for window in windows
    }


def download_bundle_or_why(tracking_uri: str, run_id: str, destination: Path) -> tuple[ForecasterBundle | None, str]:
    """A run's bundle, or why this code cannot load it (a bundle of an older network)."""
    try:
        return download_bundle(tracking_uri, run_id, destination), ""
    except (RuntimeError, TypeError) as incompatible:  # state-dict or metadata of another architecture
        return None, f"its bundle does not load with this code: {str(incompatible)[:300]}"


def backtest_metric(name: str) -> str:
    """The run metric of one of the backtest's headline metrics (training.evaluate names them)."""
    return f"backtest_{name}"


def log_serving_plan(client: MlflowClient, run_id: str, choice: dict[str, str], plan: pd.DataFrame) -> None:
    """The backtest's choice per series group, and the statistical part of what is served, into the
    run's bundle (which the Bento and the batch forecast load) and its params."""
    client.log_param(run_id, "served_per_group", json.dumps(choice, sort_keys=True))
    if plan.empty:
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / PLAN_FILE
        plan.to_parquet(path, index=False)
        client.log_artifact(run_id, str(path), artifact_path=BUNDLE_ARTIFACT)


def log_backtest(client: MlflowClient, run_id: str, evaluation: Evaluation) -> dict[str, bytes]:
    """Headline metrics, the backtest table, residuals and the diagnostic plots, into the training run;
    returns the plots (PNG bytes by file name)."""
    for name, value in evaluation.metrics.items():
        client.log_metric(run_id, backtest_metric(name), value)
    plots = {
        "forecast_vs_actual.png": forecast_plot(evaluation),
        "residuals.png": residual_plot(evaluation),
        "calibration.png": calibration_plot(evaluation),
    }
    if evaluation.lead_time:
        plots["lead_time_service.png"] = lead_time_plot(evaluation)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        evaluation.table.to_csv(folder / "backtest.csv", index=False)
        write_residuals(evaluation, folder / "residuals.parquet")
        for name, png in plots.items():
            (folder / name).write_bytes(png)
        client.log_artifacts(run_id, str(folder), artifact_path=BACKTEST_ARTIFACTS)
    return plots


@dataclass(frozen=True)
class TrainingRecord:
    """What a training run recorded that a reproduction needs."""

    git_commit: str
    git_dirty: bool
    dataset_version: str
    frequency: str
    cadence: dict[str, str]  # CADENCE_PARAMS
    lags: str  # comma-separated, as logged
    windows: str
    hyperparameters: dict  # Hyperparameters fields, typed
    backtest_wape: float


def read_training_record(run_id: str, params: Mapping[str, str], metrics: Mapping[str, float]) -> TrainingRecord:
    """A run's record, typed; refuses one that lacks what a reproduction needs, naming it."""
    wape = backtest_metric("wape")
    needed = ["git_commit", "dataset_version", "frequency", "lags", "windows", *CADENCE_PARAMS]
    absent = [name for name in needed if name not in params] + ([wape] if wape not in metrics else [])
    if absent:
        raise ReproductionError(f"run {run_id} did not record {', '.join(absent)}; it cannot be reproduced")
    return TrainingRecord(
        git_commit=params["git_commit"],
        git_dirty=params.get("git_dirty") == "True",
        dataset_version=params["dataset_version"],
        frequency=params["frequency"],
        cadence={name: params[name] for name in CADENCE_PARAMS},
        lags=params["lags"],
        windows=params["windows"],
        hyperparameters=_typed_hyperparameters(params),
        backtest_wape=metrics[wape],
    )


def _typed_hyperparameters(params: Mapping[str, str]) -> dict:
    """The logged Hyperparameters fields (MLflow keeps strings), as the types their defaults have."""
    typed = {}
    for spec in fields(Hyperparameters):
        if spec.name in params:
            kind = type(spec.default)
            raw = params[spec.name]
            typed[spec.name] = raw == "True" if kind is bool else kind(raw)
    return typed


def backtest_wape(tracking_uri: str, run_id: str) -> float | None:
    """The WAPE a version's backtest measured (None when its run logged no backtest)."""
    return MlflowClient(tracking_uri=tracking_uri).get_run(run_id).data.metrics.get(backtest_metric("wape"))
