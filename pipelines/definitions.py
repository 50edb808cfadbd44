"""The demandops code location: every stage of the chain as one connected asset graph."""

from __future__ import annotations

import dagster as dg

from demandops.settings import Settings, get_settings
from pipelines.assets.deployment import bento
from pipelines.assets.features import online_features, sales_features
from pipelines.assets.ingestion import raw_sales
from pipelines.assets.monitoring import feature_drift, forecast_accuracy
from pipelines.assets.training import trained_model, training_set
from pipelines.assets.validation import model_evaluation
from pipelines.checks import check_raw_sales_expectations, check_training_set_nulls
from pipelines.io_managers import LakeIOManager
from pipelines.resources import DemandopsResource
from pipelines.run_log import LOGGERS
from pipelines.sensors import (
    interrupted_work,
    new_sales_days,
    online_store_refill,
    retraining_trigger,
    weekly_retraining,
)

ASSETS = [
    raw_sales,
    sales_features,
    online_features,
    training_set,
    trained_model,
    model_evaluation,
    bento,
    forecast_accuracy,
    feature_drift,
]


def build_definitions(settings: Settings) -> dg.Definitions:
    """Assets, checks, the sensor and resources for one profile's settings."""
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=[check_raw_sales_expectations, check_training_set_nulls],
        sensors=[new_sales_days, online_store_refill, interrupted_work, retraining_trigger],
        schedules=[weekly_retraining],
        # One process per run: the chain is a line of dependent steps (nothing to run side by side, and
        # training has its own process), and a run whose process is gone is known dead (reconcile.py).
        executor=dg.in_process_executor,
        loggers=LOGGERS,  # Dagster's console logger, and the one `demandops run` draws its view from
        resources={
            "demandops": DemandopsResource.from_settings(settings),
            "lake": LakeIOManager(base_dir=str(settings.lake_dir)),
            "pipes_subprocess_client": dg.PipesSubprocessClient(),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded by `dagster dev -w workspace.yaml`; built when the location loads, not at import."""
    return build_definitions(get_settings())
