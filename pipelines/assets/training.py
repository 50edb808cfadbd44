"""Stage 4: a point-in-time training set from Feast, and a PyTorch model tracked in MLflow."""

import shutil
from dataclasses import fields, replace
from typing import get_type_hints

import dagster as dg
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext
from pydantic import Field, create_model

from demandops.memory import release_free_memory
from feature_repo.definitions import FEATURE_SERVICE_NAME
from lifecycle.evidence import registration_tags
from pipelines.assets.features import online_features
from pipelines.metadata import rounded
from pipelines.provenance import latest_metadata, raw_sales_lineage
from pipelines.reconcile import claim_run, job_folder
from pipelines.resources import Demandops
from pipelines.run_tags import RETRAIN_REASON
from pipelines.training_chunks import build_training_set
from training.dataset import origin_split
from training.interruption import launch_env
from training.job import launch_command, prepare_job
from training.train import Hyperparameters
from training.training_folder import TrainingSetFolder
from training.windows import windows_for


def _launchpad_config() -> type[dg.Config]:
    """The Launchpad's config of trained_model: every Hyperparameters field with its default, help and
    bounds, plus processes; an unknown key is refused, not ignored."""
    types = get_type_hints(Hyperparameters)
    hyperparameters = {
        spec.name: (
            types[spec.name],
            Field(
                default=spec.default,
                description=spec.metadata.get("help"),
                **{bound: spec.metadata[bound] for bound in ("ge", "gt", "le", "pattern") if bound in spec.metadata},
            ),
        )
        for spec in fields(Hyperparameters)
    }
    processes = (int, Field(default=1, ge=1, description="DDP ranks under torchrun; 1 runs a plain subprocess."))
    return create_model("TrainingConfig", __base__=dg.Config, **hyperparameters, processes=processes)


TrainingConfig = _launchpad_config()


@dg.asset(
    ins={"raw_sales": dg.AssetIn(dagster_type=dg.Nothing)},  # read from the lake as Arrow, not loaded whole
    deps=[online_features],
    io_manager_key="lake",
    group_name="training",
    kinds={"feast", "parquet"},
)
def training_set(context: AssetExecutionContext, demandops: Demandops) -> dg.Output[TrainingSetFolder]:
    """Entity rows with labels for the next H periods, joined point-in-time to the feature service by
    Feast: every recent origin and a sample of older ones, written a chunk of series at a time."""
    spec, cadence, settings = demandops.feature_spec(), demandops.cadence(), demandops.settings()
    partitions = context.asset_partition_keys_for_input("raw_sales")
    directory = demandops.lake().asset_dir(["training_set"]) / context.run_id
    shutil.rmtree(directory, ignore_errors=True)  # a retried step's own partial folder
    built = build_training_set(
        demandops.feature_store(), demandops.lake().sales_table(partitions), directory, spec=spec,
        cadence=cadence, settings=settings.training_set, service=FEATURE_SERVICE_NAME,
    )  # fmt: skip
    lineage = raw_sales_lineage(context.instance, demandops.lake().gate_ledger(), partitions)
    return dg.Output(
        replace(built.folder, rows=built.rows),
        metadata={
            **lineage,
            "rows": built.rows,
            "rows_without_history": built.rows_without_history,
            "feature_service": FEATURE_SERVICE_NAME,
            "origins": len(built.origins),
            "series": built.series,
            "typical_origins": built.folder.typical_origins,
            "older_origins_per_series": built.older_origins_per_series,
            "chunks": built.chunks,
            "slices": built.slices,
            "frequency": spec.frequency,
            "feature_null_share": built.feature_null_share(),
        },
    )


@dg.asset(io_manager_key="lake", group_name="training", kinds={"pytorch", "mlflow"})
def trained_model(
    context: AssetExecutionContext,
    config: TrainingConfig,
    training_set: TrainingSetFolder,
    demandops: Demandops,
    pipes_subprocess_client: dg.PipesSubprocessClient,
) -> dg.Output[dict]:
    """A global quantile network trained on all but the backtest origins, in an external process
    launched through Dagster Pipes; logged to MLflow and registered as a new version."""
    claim_run(context)
    release_free_memory()  # what earlier steps freed, for the training process
    settings, windows = demandops.settings(), windows_for(training_set.typical_origins, demandops.cadence())
    context.log.info(f"backtest and validation windows: {windows.reason}")
    lineage = latest_metadata(context.instance, "training_set")
    origins = training_set.origins()
    last_fit, _ = origin_split(origins, windows.cadence.horizon, windows.backtest_origins)
    hyperparameters = Hyperparameters(**config.model_dump(exclude={"processes"}))
    with job_folder(settings, context.run_id) as folder:
        job_file = prepare_job(
            folder, training_set, hyperparameters, fit_until=last_fit, settings=settings, cadence=windows.cadence,
            spec=demandops.feature_spec(), feature_service=FEATURE_SERVICE_NAME,
            dataset_version=lineage["dataset_version"], series=training_set.series(), refit=windows.refit,
            backtest_windows=windows.later_window_holdouts if windows.refit else None,
        )  # fmt: skip
        command = launch_command(job_file, config.processes)
        env, cwd = launch_env(settings.child_env(), context.run_id), str(settings.project_dir)
        invocation = pipes_subprocess_client.run(command=command, context=context, env=env, cwd=cwd)
    reported = {key: entry.value for key, entry in invocation.get_materialize_result().metadata.items()}
    tags = _version_tags(context, lineage["dataset_version"], origins)
    version = demandops.registry().register(model_uri=reported["model_uri"], run_id=reported["run_id"], tags=tags)
    value = {
        "model_version": version.version,
        **{key: reported[key] for key in ("run_id", "experiment_id", "model_uri")},
        **{key: lineage[key] for key in ("dataset_version", "data_checks_passed")},
    }
    run_page = settings.ui.mlflow_run_url(reported["experiment_id"], reported["run_id"])
    metadata = {**reported, **value, **windows.metadata, "mlflow_run": dg.MetadataValue.url(run_page)}
    return dg.Output(value, metadata=rounded(metadata))


def _version_tags(context: AssetExecutionContext, dataset_version: str, origins: np.ndarray) -> dict[str, str]:
    """The new version's data, training window and (for a run the loop started) why it was trained."""
    return registration_tags(
        dataset_version=dataset_version,
        feature_service=FEATURE_SERVICE_NAME,
        pipeline_run=context.run_id,
        trained_until=pd.Timestamp(origins[-1]).date().isoformat(),
        retrain_reason=context.run.tags.get(RETRAIN_REASON, ""),
    )
