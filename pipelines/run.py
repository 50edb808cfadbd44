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
from pipelines.definitions import build_definitions
from pipelines.partitions import sales_partitions
from pipelines.resources import DemandopsResource

DEMO_ACTOR = "local-demo"


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


def run_chain(settings: Settings, *, promote_first: bool = True) -> ChainSummary:
    """Every asset over every partition in one run; raises naming the failed step."""
    settings.ensure_state_dirs()
    version = ensure_dataset(settings)
    keys = sales_partitions(settings).get_partition_keys()
    job = build_definitions(settings).resolve_implicit_global_asset_job_def()
    with open_instance(settings) as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]},
        )
    if not result.success:
        failures = [
            f"{e.step_key}: {e.step_failure_data.error.message.strip() if e.step_failure_data.error else ''}"
            for e in result.all_events
            if e.is_step_failure
        ]
        raise DemandopsError(f"run {result.run_id} failed:\n" + "\n".join(failures))
    deployed = result.output_for_node("bento")
    registry = DemandopsResource.from_settings(settings).registry()
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
    )
