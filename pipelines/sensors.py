"""New sales days flow in by themselves, a lagging online store is refilled, and interrupted work is closed."""

from __future__ import annotations

import hashlib

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from feature_repo.freshness import online_lag
from lifecycle.states import ALIASES, State
from monitoring.decisions import champion_retraining_reason
from monitoring.drift import read_drift_summary
from monitoring.live_summary import read_summary
from pipelines.assets.features import online_features, sales_features
from pipelines.assets.ingestion import raw_sales
from pipelines.partitions import SALES_PERIODS, periods_to_gate, periods_to_refill, unregistered_periods
from pipelines.reconcile import reconcile
from pipelines.resources import Demandops
from pipelines.run_tags import RETRAIN_REASON
from training.tracking import backtest_wape

REFILL_TAG = "demandops/online_refill"


@dg.sensor(
    asset_selection=[raw_sales, sales_features, online_features],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def new_sales_days(context: dg.SensorEvaluationContext, demandops: Demandops) -> dg.SensorResult:
    """Registers days that appeared under data/sales and ingests the new or changed ones, then refreshes features."""
    settings = demandops.settings()
    new, future = unregistered_periods(context.instance, settings)
    if future:
        context.log.warning(f"ignoring {len(future)} partitions dated in the future: {future[:5]}")
    pending = periods_to_gate(context.instance, settings, demandops.lake().gate_ledger(), also_known=new)
    requests = []
    if pending:
        first, last = min(pending), max(pending)
        requests.append(
            dg.RunRequest(
                run_key=f"{first}..{last}:{hashlib.md5('|'.join(pending).encode()).hexdigest()}",
                tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
            )
        )
    return dg.SensorResult(
        run_requests=requests, dynamic_partitions_requests=[SALES_PERIODS.build_add_request(new)] if new else []
    )


@dg.sensor(
    asset_selection=[online_features],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def online_store_refill(context: dg.SensorEvaluationContext, demandops: Demandops) -> dg.SensorResult:
    """Refills the online store when it lags the offline features (emptied by a restart, or half-written)."""
    settings = demandops.settings()
    lag = online_lag(demandops.feature_store(), settings.feast_dir)
    if lag.current:
        return dg.SensorResult(skip_reason=lag.describe())
    underway = context.instance.get_run_records(
        dg.RunsFilter(tags={REFILL_TAG: "true"}, statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTED]),
        limit=1,
    )
    if underway:
        return dg.SensorResult(skip_reason=f"{lag.describe()}; refill run {underway[0].dagster_run.run_id} underway")
    days = periods_to_refill(context.instance, lag)
    if not days:
        return dg.SensorResult(skip_reason=f"{lag.describe()}; no registered period to materialize it from")
    context.log.warning(f"{lag.describe()}: materializing {days[0]}..{days[-1]} again")
    tags = {ASSET_PARTITION_RANGE_START_TAG: days[0], ASSET_PARTITION_RANGE_END_TAG: days[-1], REFILL_TAG: "true"}
    return dg.SensorResult(run_requests=[dg.RunRequest(tags=tags)])


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def interrupted_work(context: dg.SensorEvaluationContext, demandops: Demandops) -> dg.SkipReason:
    """Closes what killed runs left unfinished: their runs failed, their versions Failed or Rejected."""
    done = reconcile(demandops.settings(), context.instance, demandops.registry())
    if done:
        context.log.warning(f"reconciled: {done.describe()}")
    return dg.SkipReason(done.describe())


TRAINING_ASSETS = ["training_set", "trained_model", "model_evaluation", "bento"]


@dg.sensor(
    asset_selection=dg.AssetSelection.assets(*TRAINING_ASSETS),
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def retraining_trigger(context: dg.SensorEvaluationContext, demandops: Demandops) -> dg.SensorResult:
    """Starts a training run when the champion's live WAPE exceeds its backtest WAPE by the configured margin
    for the configured periods, drift is significant, or its reorder points kept their promised service
    level less often than configured; the reason is the run's tag and the new version's
    evidence. Once per scored period: the run key is the champion and the latest period scored."""
    settings = demandops.settings()
    champion = demandops.registry().by_alias(ALIASES[State.PRODUCTION])
    summary, drift = read_summary(settings.lake_dir), read_drift_summary(settings.lake_dir) or {}
    if champion is None or summary is None:
        return dg.SensorResult(skip_reason="no champion, or no period scored yet")
    backtest = backtest_wape(settings.mlflow_tracking_uri, champion.run_id)
    reason = champion_retraining_reason(champion.version, backtest, summary, drift, settings.monitoring)
    if reason is None:
        return dg.SensorResult(skip_reason=f"version {champion.version} holds up on live evidence")
    context.log.warning(f"retraining: {reason}")
    run_key = f"retrain:{champion.version}:{summary['period']}"
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=run_key, tags={RETRAIN_REASON: reason})])


weekly_retraining = dg.ScheduleDefinition(
    name="weekly_retraining",
    target=dg.AssetSelection.assets(*TRAINING_ASSETS),
    cron_schedule="0 3 * * 1",
    tags={RETRAIN_REASON: "schedule: weekly_retraining (Mondays 03:00)"},
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
