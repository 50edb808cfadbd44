"""Stage 4: a point-in-time training set from Feast, and a PyTorch model tracked in MLflow."""

import hashlib
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext
from pydantic import Field

from feature_repo.definitions import FEATURE_SERVICE_NAME
from pipelines.assets.features import online_features
from pipelines.assets.ingestion import gate_ledger
from pipelines.lineage import latest_metadata, raw_sales_lineage
from pipelines.resources import Demandops
from training.dataset import entity_rows, split_by_origin
from training.job import TrainingJob
from training.train import TrainConfig

EXPERIMENT = "demand_forecaster"
MLFLOW_UI = "http://127.0.0.1:5000"


class TrainingConfig(dg.Config):
    """Hyperparameters, editable in the Launchpad; defaults come from training.train.TrainConfig."""

    epochs: int = TrainConfig.epochs
    batch_size: int = TrainConfig.batch_size
    learning_rate: float = TrainConfig.learning_rate
    hidden: int = TrainConfig.hidden
    embedding_dim: int = TrainConfig.embedding_dim
    patience: int = TrainConfig.patience
    min_batches_per_epoch: int = TrainConfig.min_batches_per_epoch
    seed: int = TrainConfig.seed
    device: str = TrainConfig.device
    compile: bool = TrainConfig.compile
    calibrate_intervals: bool = TrainConfig.calibrate_intervals
    processes: int = Field(default=1, ge=1, description="DDP ranks under torchrun; 1 runs a plain subprocess.")


@dg.asset(deps=[online_features], io_manager_key="lake", group_name="training", kinds={"feast", "parquet"})
def training_set(
    context: AssetExecutionContext, raw_sales: pd.DataFrame, demandops: Demandops
) -> dg.Output[pd.DataFrame]:
    """Entity rows with labels for the next H periods, joined point-in-time to the feature service by Feast."""
    spec = demandops.feature_spec()
    entities = entity_rows(raw_sales, demandops.cadence().horizon, spec)
    store = demandops.feature_store()
    joined = store.get_historical_features(
        entity_df=entities, features=store.get_feature_service(FEATURE_SERVICE_NAME)
    ).to_df()
    if len(joined) != len(entities):
        raise ValueError(f"Feast returned {len(joined)} rows for {len(entities)} entity rows")
    joined = joined.sort_values(["store_id", "sku_id", "event_timestamp"], ignore_index=True)
    lineage = raw_sales_lineage(
        context.instance, gate_ledger(demandops), context.asset_partition_keys_for_input("raw_sales")
    )
    return dg.Output(
        joined,
        metadata={
            **lineage,
            "rows": len(joined),
            "feature_service": FEATURE_SERVICE_NAME,
            "origins": int(joined["event_timestamp"].nunique()),
            "frequency": spec.frequency,
            "feature_null_share": float(joined[spec.feature_names].isna().mean().mean()),
        },
    )


@dg.asset(io_manager_key="lake", group_name="training", kinds={"pytorch", "mlflow"})
def trained_model(
    context: AssetExecutionContext,
    config: TrainingConfig,
    training_set: pd.DataFrame,
    demandops: Demandops,
    pipes_subprocess_client: dg.PipesSubprocessClient,
) -> dg.Output[dict]:
    """A global quantile network trained on all but the backtest origins, in an external process
    launched through Dagster Pipes; logged to MLflow and registered as a new version."""
    settings = demandops.settings()
    lineage = latest_metadata(context.instance, "training_set")
    cadence = demandops.cadence()
    spec = demandops.feature_spec()
    fit, _backtest = split_by_origin(training_set, cadence.horizon, cadence.backtest_origins)
    hyperparameters = config.model_dump(exclude={"processes"})
    train_config = TrainConfig(
        horizon=cadence.horizon,
        quantiles=settings.model.quantiles,
        validation_origins=cadence.validation_periods,
        **hyperparameters,
    )
    tags = {"dataset_version": lineage["dataset_version"], "feature_service": FEATURE_SERVICE_NAME}
    jobs_dir = settings.state / "training_jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=jobs_dir) as tmp:
        fit.to_parquet(Path(tmp) / "fit.parquet", index=False)
        job = TrainingJob(
            training_set=str(Path(tmp) / "fit.parquet"),
            config=asdict(train_config),
            frequency=spec.frequency,
            lags=list(spec.lags),
            windows=list(spec.windows),
            feature_service=FEATURE_SERVICE_NAME,
            dataset_version=lineage["dataset_version"],
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_root=str(settings.mlflow_artifact_root),
            experiment=EXPERIMENT,
            project_dir=str(settings.project_dir),
            checkpoint_dir=str(settings.state / "checkpoints" / _job_key(lineage["dataset_version"], train_config)),
            tags=tags,
            params={
                "seasonal_period": cadence.seasonal_period,
                "validation_periods": cadence.validation_periods,
                "backtest_origins": cadence.backtest_origins,
            },
        )
        job_file = job.write(Path(tmp) / "job.json")
        invocation = pipes_subprocess_client.run(
            command=training_command(job_file, config.processes),
            context=context,
            env=settings.child_env(),
            cwd=str(settings.project_dir),
        )
    reported = {key: entry.value for key, entry in invocation.get_materialize_result().metadata.items()}
    version = demandops.registry().register(model_uri=reported["model_uri"], run_id=reported["run_id"], tags=tags)
    value = {
        "model_version": version.version,
        "run_id": reported["run_id"],
        "experiment_id": reported["experiment_id"],
        "model_uri": reported["model_uri"],
        "dataset_version": lineage["dataset_version"],
        "data_checks_passed": lineage["data_checks_passed"],
    }
    return dg.Output(
        value,
        metadata={
            **reported,
            **value,
            "mlflow_run": dg.MetadataValue.url(mlflow_run_url(reported["experiment_id"], reported["run_id"])),
        },
    )


def training_command(job_file: Path, processes: int) -> list[str]:
    """The job as one process, or as `processes` DDP ranks under torchrun."""
    if processes <= 1:
        return [sys.executable, "-m", "training.job", str(job_file)]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    return [*launcher, "-m", "training.job", str(job_file)]


def mlflow_run_url(experiment_id: str, run_id: str) -> str:
    """The run in the MLflow UI that `demandops ui` starts."""
    return f"{MLFLOW_UI}/#/experiments/{experiment_id}/runs/{run_id}"


def _job_key(dataset_version: str, config: TrainConfig) -> str:
    """Same data and settings, same checkpoint folder: an interrupted launch resumes there."""
    return hashlib.sha256(json.dumps([dataset_version, asdict(config)], sort_keys=True).encode()).hexdigest()[:16]
