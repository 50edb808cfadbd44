"""`demandops run`: materialize the whole asset graph in-process, then promote a first model."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import yaml
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from demandops.datasets import ensure_dataset
from demandops.errors import DemandopsError
from demandops.settings import Settings
from lifecycle.states import State
from pipelines.assets.ingestion import gate_ledger
from pipelines.definitions import build_definitions
from pipelines.lineage import RAW_SALES
from pipelines.partitions import days_to_gate, days_without_features, register_days
from pipelines.resources import DemandopsResource

DEMO_ACTOR = "local-demo"
PARTITIONED = {dg.AssetKey(name) for name in ("raw_sales", "sales_features", "online_features")}


def open_instance(settings: Settings) -> dg.DagsterInstance:
    """The profile's Dagster instance: local files, or PostgreSQL storage in production."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    config: dict = {"telemetry": {"enabled": False}}
    if settings.profile == "production":
        config["storage"] = {"postgres": {"postgres_url": settings.production.postgres_url}}
    (settings.dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return dg.DagsterInstance.from_config(str(settings.dagster_home))


@dataclass(frozen=True)
class ChainSummary:
    dataset_version: str
    run_id: str
    model_version: str
    state: str
    bento_tag: str
    production_version: str | None
    frequency: str
    example_item: dict


def run_chain(settings: Settings, *, promote_first: bool = True, training: dict | None = None) -> ChainSummary:
    """Gate the new or changed days, then every downstream asset, in one run; raises naming the failed step.

    `training` overrides hyperparameters of the trained_model asset (its Launchpad config).
    """
    settings.ensure_state_dirs()
    version = ensure_dataset(settings)
    resource = DemandopsResource.from_settings(settings)
    job = build_definitions(settings).resolve_implicit_global_asset_job_def()
    with open_instance(settings) as instance:
        register_days(instance, settings)
        pending = days_to_gate(instance, settings, gate_ledger(resource), also_known=[])
        unfeatured = days_without_features(instance, settings)
        span = pending + unfeatured
        # Partitioned stages run only over new or changed periods; with none, training starts from what is there.
        skip = set() if pending else {RAW_SALES} if unfeatured else PARTITIONED
        selection = [key for key in job.asset_layer.executable_asset_keys if key not in skip]
        tags = {ASSET_PARTITION_RANGE_START_TAG: min(span), ASSET_PARTITION_RANGE_END_TAG: max(span)} if span else {}
        run_config = {"ops": {"trained_model": {"config": training}}} if training else None
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, asset_selection=selection, tags=tags, run_config=run_config
        )
    if not result.success:
        failures = [
            f"{e.step_key}: {e.step_failure_data.error.message.strip() if e.step_failure_data.error else ''}"
            for e in result.all_events
            if e.is_step_failure
        ]
        raise DemandopsError(f"run {result.run_id} failed:\n" + "\n".join(failures))
    deployed = result.output_for_node("bento")
    registry = resource.registry()
    if promote_first and registry.by_alias("production") is None:
        registry.transition(
            deployed["model_version"],
            State.PRODUCTION,
            actor=DEMO_ACTOR,
            reason="first model of this installation (make run)",
            evidence={},
        )
    production = registry.by_alias("production")
    return ChainSummary(
        dataset_version=version,
        run_id=result.run_id,
        model_version=deployed["model_version"],
        state=str(registry.get(deployed["model_version"]).state),
        bento_tag=deployed["bento_tag"],
        production_version=production.version if production else None,
        frequency=deployed["frequency"],
        example_item=deployed["example_item"],
    )
