"""The demandops code location: every stage of the chain as one connected asset graph."""

from __future__ import annotations

import dagster as dg

from demandops.settings import Settings, get_settings
from pipelines.assets.deployment import bento
from pipelines.assets.features import online_features, sales_features
from pipelines.assets.ingestion import build_raw_sales
from pipelines.assets.training import trained_model, training_set
from pipelines.assets.validation import model_evaluation
from pipelines.checks import build_raw_sales_check
from pipelines.io_managers import LakeIOManager
from pipelines.partitions import sales_partitions
from pipelines.resources import DemandopsResource

DOWNSTREAM_ASSETS = [sales_features, online_features, training_set, trained_model, model_evaluation, bento]


def build_definitions(settings: Settings) -> dg.Definitions:
    """Assets, checks and resources for one profile's settings."""
    partitions = sales_partitions(settings)
    return dg.Definitions(
        assets=[build_raw_sales(partitions), *DOWNSTREAM_ASSETS],
        asset_checks=[build_raw_sales_check(partitions)],
        resources={
            "demandops": DemandopsResource.from_settings(settings),
            "lake": LakeIOManager(base_dir=str(settings.lake_dir)),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded by `dagster dev -w workspace.yaml`; built when the location loads, not at import."""
    return build_definitions(get_settings())
