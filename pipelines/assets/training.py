"""Stage 4: a point-in-time training set from Feast, and a PyTorch model tracked in MLflow."""

import dagster as dg
import mlflow
import pandas as pd
from dagster import AssetExecutionContext

from feature_repo.definitions import FEATURE_SERVICE_NAME
from pipelines.assets.features import online_features
from pipelines.assets.ingestion import gate_ledger
from pipelines.lineage import latest_metadata, raw_sales_lineage
from pipelines.resources import DemandopsResource
from training.dataset import entity_rows, split_by_origin
from training.tracking import log_training, start_run
from training.train import TrainConfig, train_forecaster

EXPERIMENT = "demand_forecaster"


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


@dg.asset(deps=[online_features], io_manager_key="lake", group_name="training", kinds={"feast", "parquet"})
def training_set(
    context: AssetExecutionContext, raw_sales: pd.DataFrame, demandops: DemandopsResource
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
    demandops: DemandopsResource,
) -> dg.Output[dict]:
    """A global quantile network trained on all but the holdout days, logged and registered in MLflow."""
    settings = demandops.settings()
    lineage = latest_metadata(context.instance, "training_set")
    cadence = demandops.cadence()
    fit, _holdout = split_by_origin(training_set, cadence.horizon, cadence.holdout_periods)
    train_config = TrainConfig(
        horizon=cadence.horizon,
        quantiles=settings.model.quantiles,
        validation_origins=cadence.validation_periods,
        **config.model_dump(),
    )
    with start_run(settings.mlflow_tracking_uri, settings.mlflow_artifact_root, EXPERIMENT) as run:
        result = train_forecaster(
            fit,
            train_config,
            feature_service=FEATURE_SERVICE_NAME,
            dataset_version=lineage["dataset_version"],
            spec=demandops.feature_spec(),
            on_epoch=lambda epoch, metrics: mlflow.log_metrics(metrics, step=epoch),
        )
        model_uri = log_training(result, train_config, example=fit.head(3), project_dir=settings.project_dir)
        mlflow.set_tags({"dataset_version": lineage["dataset_version"], "feature_service": FEATURE_SERVICE_NAME})
    version = demandops.registry().register(
        model_uri=model_uri,
        run_id=run.info.run_id,
        tags={"dataset_version": lineage["dataset_version"], "feature_service": FEATURE_SERVICE_NAME},
    )
    value = {
        "model_version": version.version,
        "run_id": run.info.run_id,
        "model_uri": model_uri,
        "dataset_version": lineage["dataset_version"],
        "data_checks_passed": lineage["data_checks_passed"],
    }
    return dg.Output(
        value,
        metadata={
            **value,
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "device": result.device,
            "val_pinball": result.history[result.best_epoch - 1]["val_pinball"],
            "fit_rows": len(fit),
            "mlflow_run": dg.MetadataValue.url(
                f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
            ),
        },
    )
