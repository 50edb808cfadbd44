"""`demandops run`: materialize the whole asset graph in-process, then promote a first model."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import yaml
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from dagster_shared.error import SerializableErrorInfo
from pydantic import ValidationError

from demandops.errors import DemandopsError
from demandops.settings import Settings
from feature_repo.freshness import OnlineLag, online_lag
from lifecycle.states import State
from pipelines.assets.training import TrainingConfig
from pipelines.definitions import build_definitions
from pipelines.partitions import periods_to_gate, periods_to_refill, periods_without_features, register_periods
from pipelines.provenance import RAW_SALES
from pipelines.reconcile import owner_tags, reconcile
from pipelines.resources import DemandopsResource
from pipelines.run_log import RUN_LOGGERS
from pipelines.run_tags import RETRAIN_REASON
from salesdata.datasets import ensure_dataset

DEMO_ACTOR = "local-demo"
SALES_FEATURES, ONLINE_FEATURES = dg.AssetKey("sales_features"), dg.AssetKey("online_features")
FORECAST_ACCURACY = dg.AssetKey("forecast_accuracy")
PARTITIONED = {RAW_SALES, SALES_FEATURES, ONLINE_FEATURES, FORECAST_ACCURACY}
TRAINING_STAGES = frozenset(
    dg.AssetKey(name) for name in ("training_set", "trained_model", "model_evaluation", "bento")
)


def open_instance(settings: Settings) -> dg.DagsterInstance:
    """The profile's Dagster instance: local files, or PostgreSQL storage (schema `dagster`) in production."""
    settings.prepare_state()
    # No telemetry, and no "join the community" dialog over the UI on a new instance.
    config: dict = {"telemetry": {"enabled": False}, "nux": {"enabled": False}}
    if settings.dagster_database_url:
        config["storage"] = {"postgres": {"postgres_url": settings.dagster_database_url}}
    (settings.dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return dg.DagsterInstance.from_config(str(settings.dagster_home))


@dataclass(frozen=True)
class ChainSummary:
    dataset_version: str
    run_id: str
    gate: str  # what the gate accepted and quarantined of the new periods
    reconciled: str  # what interrupted runs had left unfinished, now closed ("" when nothing)
    model_version: str
    state: str
    bento_tag: str
    production_version: str | None
    frequency: str
    example_item: dict


def run_chain(
    settings: Settings, *, promote_first: bool = True, training: dict | None = None, retrain_reason: str = ""
) -> ChainSummary:
    """Gate the new or changed days, then every downstream asset, in one run; raises naming the failed step.

    `training` overrides hyperparameters of the trained_model asset (its Launchpad config);
    `retrain_reason`, when the loop started the run, goes into its tags and the new version's evidence.
    """
    run_config = training_run_config(training)  # a bad config is refused before anything runs
    tags = {RETRAIN_REASON: retrain_reason} if retrain_reason else {}
    version, reconciled, result = _execute(settings, run_config=run_config, tags=tags)
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
        gate=gate_outcome(result),
        reconciled=reconciled,
        model_version=deployed["model_version"],
        state=str(registry.get(deployed["model_version"]).state),
        bento_tag=deployed["bento_tag"],
        production_version=production.version if production else None,
        frequency=deployed["frequency"],
        example_item=deployed["example_item"],
    )


def monitor_new_periods(settings: Settings) -> tuple[str, str]:
    """Gate the new periods, refresh their features, score the forecasts served for them and measure drift,
    without training; (run id, what the gate did)."""
    _, _, result = _execute(settings, run_config=None, tags={}, skip=TRAINING_STAGES)
    return result.run_id, gate_outcome(result)


def _execute(
    settings: Settings, *, run_config: dict | None, tags: dict[str, str], skip: frozenset[dg.AssetKey] = frozenset()
) -> tuple[str, str, dg.ExecuteInProcessResult]:
    """One in-process run of the asset graph over the periods with work; (dataset version, what was
    reconciled, the run's result)."""
    settings.prepare_state()
    version = ensure_dataset(settings)
    resource = DemandopsResource.from_settings(settings)
    job = build_definitions(settings).resolve_implicit_global_asset_job_def()
    with open_instance(settings) as instance:
        reconciled = reconcile(settings, instance, resource.registry())
        register_periods(instance, settings)
        pending = periods_to_gate(instance, settings, resource.lake().gate_ledger(), also_known=[])
        unfeatured = periods_without_features(instance, settings)
        # An online store emptied (a Redis restart) or left half-written is refilled without new periods.
        refill = [] if pending or unfeatured else lagging_periods(instance, resource)
        span = pending + unfeatured or refill
        skip = skip | _skipped(pending=bool(pending), unfeatured=bool(unfeatured), refill=bool(refill))
        selection = [key for key in job.asset_layer.executable_asset_keys if key not in skip]
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            asset_selection=selection,
            tags={**_span_tags(span), **owner_tags(), **tags},
            run_config={**(run_config or {}), "loggers": RUN_LOGGERS},
        )
    _raise_on_failure(result)
    return version, reconciled.describe() if reconciled else "", result


def _skipped(*, pending: bool, unfeatured: bool, refill: bool) -> set[dg.AssetKey]:
    """Partitioned stages run only where there is work; with none, training starts from what is there.
    New periods are scored against the forecasts served for them (forecast_accuracy) as they are gated."""
    if pending:
        return set()
    if unfeatured:
        return {RAW_SALES, FORECAST_ACCURACY}
    if refill:
        return {RAW_SALES, SALES_FEATURES, FORECAST_ACCURACY}
    return PARTITIONED


@dataclass(frozen=True)
class RefillSummary:
    run_id: str | None
    before: str
    after: str


def refill_online_store(settings: Settings) -> RefillSummary:
    """Materialize the feature TTL's periods into the online store when it lags the offline features
    (`demandops features refill`); a run only when there is something to refill."""
    settings.prepare_state()
    resource = DemandopsResource.from_settings(settings)
    job = build_definitions(settings).resolve_implicit_global_asset_job_def()
    with open_instance(settings) as instance:
        before = online_lag(resource.feature_store(), settings.feast_dir)
        days = lagging_periods(instance, resource, before)
        if not days:
            return RefillSummary(run_id=None, before=before.describe(), after=before.describe())
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            asset_selection=[ONLINE_FEATURES],
            tags={**_span_tags(days), **owner_tags()},
            run_config={"loggers": RUN_LOGGERS},
        )
    _raise_on_failure(result)
    after = online_lag(resource.feature_store(), settings.feast_dir)
    return RefillSummary(run_id=result.run_id, before=before.describe(), after=after.describe())


def lagging_periods(
    instance: dg.DagsterInstance, resource: DemandopsResource, lag: OnlineLag | None = None
) -> list[str]:
    """The periods to materialize again when the online store lags the offline features, else none."""
    lag = lag or online_lag(resource.feature_store(), resource.settings().feast_dir)
    return periods_to_refill(instance, lag)


def training_run_config(training: dict | None) -> dict | None:
    """The run config of trained_model, checked before anything runs: unknown keys and values out of
    range are named here, not found by Dagster halfway through the run."""
    if not training:
        return None
    allowed = sorted(TrainingConfig.model_fields)
    unknown = sorted(set(training) - set(allowed))
    if unknown:
        raise DemandopsError(f"training config: unknown key(s) {unknown}; expected some of {allowed}")
    try:
        TrainingConfig(**training)
    except ValidationError as invalid:
        problems = [f"{'.'.join(map(str, e['loc']))}={e.get('input')!r}: {e['msg']}" for e in invalid.errors()]
        raise DemandopsError("training config: " + "; ".join(problems)) from None
    return {"ops": {"trained_model": {"config": training}}}


def gate_outcome(result: dg.ExecuteInProcessResult) -> str:
    """'3 period(s) gated: 2 accepted, 1 quarantined (2024-05-01)', or that there was nothing to gate."""
    gated = result.asset_materializations_for_node(RAW_SALES.path[-1])  # one per partition, the same metadata
    if not gated:
        return "no new or changed periods"
    meta = {key: value.value for key, value in gated[0].metadata.items()}
    quarantined = meta["quarantined_days"]
    named = f" ({', '.join(quarantined[:5])}{', ...' if len(quarantined) > 5 else ''})" if quarantined else ""
    return f"{meta['days']} period(s) gated: {meta['accepted_days']} accepted, {len(quarantined)} quarantined{named}"


def _span_tags(span: list[str]) -> dict[str, str]:
    """A single run over the partition range from the first to the last of span."""
    return {ASSET_PARTITION_RANGE_START_TAG: min(span), ASSET_PARTITION_RANGE_END_TAG: max(span)} if span else {}


class ChainFailed(DemandopsError):
    """A run of the chain failed: which run, which stage, and the stage's own error message."""

    def __init__(self, run_id: str, step: str, cause: str):
        super().__init__(f"run {run_id} failed:\n{step}: {cause}")
        self.run_id, self.step, self.cause = run_id, step, cause


def _raise_on_failure(result: dg.ExecuteInProcessResult) -> None:
    if result.success:
        return
    failures = [e for e in result.all_events if e.is_step_failure]
    if not failures:  # the run failed outside any step (e.g. while starting)
        raise ChainFailed(result.run_id, "(run)", "the run failed before or between its stages; see its log")
    first = failures[0]
    raise ChainFailed(result.run_id, str(first.step_key), stage_error(first.step_failure_data.error))


def stage_error(error: SerializableErrorInfo | None) -> str:
    """The stage's own error, as its code raised it: Dagster wraps it in an error of its own, whose
    message names only the step ('Error occurred while executing op ...'), and its cause is ours."""
    while error is not None and error.cls_name.startswith("Dagster") and error.cause is not None:
        error = error.cause
    if error is None:
        return "no error was recorded"
    # 'demandops.errors.DataContractError: <what was wrong>' reads as its message; another error keeps
    # its class name ('FileNotFoundError: ...'), without the module path.
    module, named, message = error.message.strip().partition(f"{error.cls_name}: ")
    if not named or (module and not module.endswith(".")):
        return error.message.strip()
    return message if module == "demandops.errors." else f"{error.cls_name}: {message}"
