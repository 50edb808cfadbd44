"""One turn of the closed loop, as `demandops loop` runs it (from cron, or after each sales delivery):

1. gate the new periods, refresh their features, score the forecasts served for them
   (forecast_accuracy) and measure drift (feature_drift), without training;
2. roll back a champion whose live WAPE exceeds its predecessor's, the predecessor scored in shadow
   on the same forecasts, by `rollback_margin` over `rollback_periods` periods;
3. otherwise retrain when the champion's live WAPE exceeds its backtest WAPE by `retrain_margin` over
   `retrain_periods` periods, drift is significant, or the reorder points it served kept their promised
   service level less often than promised by over `retrain_service_shortfall` (monitoring/service_level.py):
   the reason goes into the run's tags and the new version's audit evidence, and the version goes through
   the same guards to Staged;
4. with `lifecycle.live_guard` on, score a Staged challenger in shadow on the forecasts the champion
   served after the challenger's training data ended, and promote it if the guards agree.

Every decision is in the audit log with its evidence; a refused promotion is an outcome, not an error.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

import pandas as pd

from demandops.errors import DemandopsError, GuardRefusedError, IllegalTransitionError
from demandops.frequency import shift_period
from demandops.settings import Settings
from lifecycle.evidence import bento_of, live_tags, trained_until_of
from lifecycle.registry import ModelRegistry, VersionInfo
from lifecycle.states import ALIASES, UNFINISHED, State, rollback_target
from monitoring.decisions import LiveRule, champion_retraining_reason, rollback_reason
from monitoring.drift import read_drift_summary
from monitoring.live_summary import read_summary
from pipelines.lake import RAW_SALES, Lake
from pipelines.live_accuracy import FORECAST_ACCURACY
from pipelines.resources import DemandopsResource
from pipelines.run import monitor_new_periods, run_chain
from pipelines.shadow import overall_wape, shadow_scored, wape_per_period
from training.tracking import backtest_wape

PENDING = {*UNFINISHED, State.TRAINED, State.VALIDATED, State.STAGED}
HOOK_TIMEOUT_S = 600


@dataclass
class LoopTurn:
    gate: str
    champion: str | None
    live_wape: float | None = None  # the champion's over the rolling window
    drift: str = ""
    rolled_back: str = ""  # why, when the loop rolled back
    retrained: str = ""  # why, when it started a training run
    new_version: str | None = None
    new_state: str | None = None
    promotion: str = ""  # what became of a Staged challenger
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"gate: {self.gate}", f"champion: {self.champion or 'none'}"]
        if self.live_wape is not None:
            lines.append(f"live WAPE of the champion (rolling window): {self.live_wape:.4f}")
        lines += [f"drift: {self.drift}"] if self.drift else []
        lines += [f"rolled back: {self.rolled_back}"] if self.rolled_back else []
        lines += (
            [f"retrained: {self.retrained} -> version {self.new_version} {self.new_state}"] if self.retrained else []
        )
        lines += [f"promotion: {self.promotion}"] if self.promotion else []
        return "\n".join(lines + self.notes)


def run_loop(settings: Settings) -> LoopTurn:
    _, gate = monitor_new_periods(settings)
    resource = DemandopsResource.from_settings(settings)
    registry, lake = resource.registry(), resource.lake()
    champion = registry.by_alias(ALIASES[State.PRODUCTION])
    turn = LoopTurn(gate=gate, champion=champion.version if champion else None)
    if champion is None:
        turn.notes.append("no version is in Production: nothing to watch")
        return turn
    summary = read_summary(settings.lake_dir) or {"versions": {}}
    live = summary["versions"].get(champion.version, {})
    turn.live_wape = live.get("wape")
    drift = read_drift_summary(settings.lake_dir) or {}
    turn.drift = drift.get("why_not_measured") or drift.get("band", "")
    served = champion_forecasts(lake, champion.version, settings.monitoring.window_periods)
    turn.rolled_back = _roll_back_if_worse(settings, registry, champion, served)
    if not turn.rolled_back:
        _retrain_if_needed(settings, resource, champion, summary, drift, turn)
        if settings.lifecycle.live_guard:
            turn.promotion = _promote_on_live_evidence(settings, registry, champion, served, resource)
    now = registry.by_alias(ALIASES[State.PRODUCTION])
    if now is not None and now.version != champion.version and settings.monitoring.on_alias_move:
        turn.notes.append(alias_moved(settings, now))
    return turn


def alias_moved(settings: Settings, champion: VersionInfo) -> str:
    """Run the configured hook (a deployment's restart) so that serving picks the new champion up; it gets
    the environment every child of demandops gets (Settings.child_env)."""
    command = settings.monitoring.on_alias_move
    env = {
        **settings.child_env(),
        "DEMANDOPS_PRODUCTION_VERSION": champion.version,
        "DEMANDOPS_PRODUCTION_BENTO": bento_of(champion.tags),
    }
    done = subprocess.run(command, shell=True, env=env, capture_output=True, text=True, timeout=HOOK_TIMEOUT_S)
    if done.returncode != 0:
        raise DemandopsError(
            f"the on_alias_move hook {command!r} failed with exit code {done.returncode} after version "
            f"{champion.version} became Production: {done.stderr.strip()[-500:]}"
        )
    return f"on_alias_move ran for version {champion.version}"


def champion_forecasts(lake: Lake, version: str, periods: int) -> pd.DataFrame:
    """The scored forecasts the version served in the latest `periods` scored periods (forecast_accuracy's
    partition files): the rolling window, so that the loop's cost does not grow with its history."""
    files = sorted(lake.asset_dir([FORECAST_ACCURACY]).glob("*.parquet"))[-periods:]
    frames = [pd.read_parquet(path, filters=[("model_version", "==", version)]) for path in files]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _roll_back_if_worse(settings: Settings, registry: ModelRegistry, champion: VersionInfo, served) -> str:
    monitoring = settings.monitoring
    entered = [
        e.version for e in registry.audit.history(registry.model_name)
        if e.outcome == "applied" and e.to_state == State.PRODUCTION
    ]  # fmt: skip
    try:
        previous = rollback_target(entered, champion.version)
    except IllegalTransitionError:
        return ""  # the first champion: nothing to roll back to
    if served.empty or registry.get(previous).state != State.ARCHIVED:
        return ""
    shadow = shadow_scored(settings, registry, previous, served)
    rule = LiveRule(monitoring.rollback_margin, monitoring.rollback_periods)
    reason = rollback_reason(champion.version, previous, wape_per_period(served), wape_per_period(shadow), rule)
    if reason is None:
        return ""
    evidence = {
        "champion_live_wape": overall_wape(served),
        "previous_live_wape": overall_wape(shadow),
        "forecasts_compared": len(shadow),
        "periods": sorted(wape_per_period(served))[-monitoring.rollback_periods :],
    }
    registry.rollback(actor=monitoring.loop_actor, reason=reason, evidence=evidence)
    return reason


def _retrain_if_needed(
    settings: Settings, resource: DemandopsResource, champion: VersionInfo, summary, drift, turn: LoopTurn
) -> None:
    registry = resource.registry()
    newer = [v for v in registry.versions() if int(v.version) > int(champion.version)]
    pending = [v for v in newer if v.state in PENDING]
    if pending:
        turn.notes.append(f"version {pending[-1].version} is {pending[-1].state}: no new training until it is decided")
        return
    cooling = _cooling_down(resource, newer, settings.monitoring.retrain_cooldown_periods)
    if cooling:
        turn.notes.append(cooling)
        return
    backtest = backtest_wape(settings.mlflow_tracking_uri, champion.run_id)
    reason = champion_retraining_reason(champion.version, backtest, summary, drift, settings.monitoring)
    if reason is None:
        return
    turn.retrained = reason
    try:
        chain = run_chain(settings, promote_first=False, retrain_reason=reason)
    except DemandopsError:
        # A version the guards rejected is the loop's outcome, not its failure: the run stopped at the
        # Bento build, which only a Validated version gets. Anything else goes on up.
        newest = registry.versions()[-1]
        if int(newest.version) <= int(champion.version) or newest.state != State.REJECTED:
            raise
        turn.new_version, turn.new_state = newest.version, str(newest.state)
        turn.notes.append(f"version {newest.version} was rejected by its guards (demandops lifecycle history)")
        return
    turn.new_version, turn.new_state = chain.model_version, chain.state


def _cooling_down(resource: DemandopsResource, newer: list[VersionInfo], needed: int) -> str:
    """Why not to retrain yet: the last retraining's version was rejected, and fewer than `needed`
    periods have come after its training data."""
    rejected = [v for v in newer if v.state == State.REJECTED and trained_until_of(v.tags)]
    if not rejected:
        return ""
    last = rejected[-1]
    data_end = _data_end(last, resource)
    gated = resource.lake().asset_dir([RAW_SALES]).glob("*.parquet")
    since = sum(pd.Timestamp(p.stem) > data_end for p in gated)
    if since >= needed:
        return ""
    return f"version {last.version} was rejected: retraining waits for {needed} periods after its data ({since} so far)"


def _data_end(version: VersionInfo, resource: DemandopsResource) -> pd.Timestamp:
    """The last period the version's training labels reached: its last origin plus a horizon."""
    until = pd.Timestamp(trained_until_of(version.tags))
    return shift_period(until, resource.cadence().horizon, resource.data_frequency())


def _promote_on_live_evidence(
    settings: Settings, registry: ModelRegistry, champion: VersionInfo, served, resource: DemandopsResource
) -> str:
    staged = [v for v in registry.versions() if v.state == State.STAGED and int(v.version) > int(champion.version)]
    if not staged:
        return ""
    challenger = staged[-1]
    unseen = _after_training(served, challenger, resource)
    if unseen.empty:
        return f"version {challenger.version} waits: no forecast served for a period after its training data yet"
    shadow = shadow_scored(settings, registry, challenger.version, unseen)
    window = f"{unseen['date'].min().date()}..{unseen['date'].max().date()}"
    registry.annotate(
        challenger.version,
        live_tags(
            champion_version=champion.version,
            challenger_wape=overall_wape(shadow),
            champion_wape=overall_wape(unseen),
            forecasts=len(shadow),
            window=window,
        ),
    )
    try:
        registry.transition(
            challenger.version,
            State.PRODUCTION,
            actor=settings.monitoring.loop_actor,
            reason="the loop: better than the champion on live evidence",
            evidence={},
        )
    except GuardRefusedError as refused:
        return _stays_or_rejected(settings, registry, challenger, refused)
    return f"version {challenger.version} promoted to Production on live evidence ({window})"


def _stays_or_rejected(
    settings: Settings, registry: ModelRegistry, challenger: VersionInfo, refused: GuardRefusedError
) -> str:
    """A challenger refused `challenger_patience` times by the loop is Rejected: the guards have decided."""
    actor, patience = settings.monitoring.loop_actor, settings.monitoring.challenger_patience
    refusals = [
        e for e in registry.audit.history(registry.model_name)
        if e.version == challenger.version and e.to_state == State.PRODUCTION and e.outcome == "refused"
        and e.actor == actor
    ]  # fmt: skip
    if len(refusals) < patience:
        return f"version {challenger.version} stays Staged ({len(refusals)} of {patience} refusals): {refused}"
    reason = f"refused {len(refusals)} times by the loop's promotion; the last: {refused}"
    registry.transition(challenger.version, State.REJECTED, actor=actor, reason=reason, evidence={})
    return f"version {challenger.version} Rejected after {len(refusals)} refusals: {refused}"


def _after_training(served: pd.DataFrame, challenger: VersionInfo, resource: DemandopsResource) -> pd.DataFrame:
    """The served forecasts whose targets the challenger's training labels did not reach: its last origin
    plus a horizon."""
    if trained_until_of(challenger.tags) is None or served.empty:
        return served.iloc[0:0]
    return served[served["date"] > _data_end(challenger, resource)].reset_index(drop=True)
