"""The closed loop on the small preset, day by day: the Production model's nightly forecasts and reorder
points are logged, new sales days arrive, and `demandops loop` (pipelines/loop.py) scores, watches drift, retrains,
promotes on live evidence, and rolls back."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from demandops.settings import LifecycleSettings, MonitoringSettings, Settings
from lifecycle.states import State
from monitoring.drift import read_drift_summary
from monitoring.lead_time_evidence import evidence_path, live_calibration
from monitoring.live_summary import per_period_wape
from pipelines.lake import Lake
from pipelines.live_accuracy import LEAD_TIME_SERVICE, scored_history
from pipelines.loop import LoopTurn, run_loop
from pipelines.resources import DemandopsResource
from pipelines.run import run_chain
from salesdata.datasets import append_days, next_day
from salesdata.dvc_versions import track
from salesdata.simulator import DemandShift
from serving.batch import score_all
from serving.nightly_plan import Policy, plan_all
from tests.conftest import make_settings

# A challenger trained on the first 2 shifted days is about as good as the champion (here it loses by 2-3%
# on the live window): 3 refusals reject it, and 3 periods later the loop retrains on more of the shift.
LOOP = MonitoringSettings(
    retrain_periods=2,
    retrain_margin=0.2,
    rollback_periods=2,
    rollback_margin=0.1,
    challenger_patience=3,
    retrain_cooldown_periods=3,
)
# A backtest whose last windows straddle a tripling of demand cannot hold the p10-p90 band at 0.75-0.85
# (a version trained 6 days into the shift covered 0.741 there): the band is widened, not the live guard.
SHIFTED = LifecycleSettings(live_guard=True, live_min_forecasts=50, coverage_band=(0.7, 0.9))
TRAINING = {"epochs": 8}  # enough to beat the baselines on the small preset, and quick


def deliver(settings: Settings, days: int = 1, shift: DemandShift | None = None) -> None:
    """New sales days arrive, recorded as a new DVC version (demandops data append)."""
    append_days(settings.data, days, shift)
    track(settings.project_dir, settings.data)


def day_by_day(
    settings: Settings, days: int, tmp_path: Path, shift: DemandShift | None = None
) -> list[tuple[LoopTurn, dict]]:
    """Each day: the nightly forecast and plan files of the Production model (logged; the plan's reorder
    points cover the next day), then the day's sales, then the loop; each turn with the drift it measured."""
    turns = []
    for day in range(days):
        registry = DemandopsResource.from_settings(settings).registry()
        score_all(settings, registry, tmp_path / "nightly.parquet")
        plan_all(settings, registry, tmp_path / "plan.parquet", Policy(lead_time=1, service_level=0.9))
        deliver(settings, shift=shift if day == 0 else None)
        turns.append((run_loop(settings), read_drift_summary(settings.lake_dir)))
        print(f"--- day {day + 1}\n{turns[-1][0].describe()}\nunits_sold PSI {turns[-1][1]['psi'].get('units_sold')}")
    return turns


def kept_promises(settings: Settings, version: str, shift_day) -> pd.DataFrame:
    """The version's reorder points scored before the shift's first day and from it on (index: after the
    shift): decisions scored, and the share whose day's demand stayed at or below them."""
    files = sorted(Lake(settings.lake_dir).asset_dir(LEAD_TIME_SERVICE).glob("*.parquet"))
    scored = pd.concat([pd.read_parquet(f).assign(day=pd.Timestamp(f.stem)) for f in files], ignore_index=True)
    mine = scored[scored["model_version"] == version]
    after = mine["day"] >= pd.Timestamp(shift_day)
    return mine.groupby(after.rename("after_shift"))["covered"].agg(decisions="size", achieved="mean")


def live_curve(settings: Settings) -> pd.DataFrame:
    """WAPE of the served forecasts per target day and version (the forecast_accuracy partitions)."""
    return per_period_wape(scored_history(Lake(settings.lake_dir)))


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 15 days of the loop and three trainings: 4 minutes here, 8 on a slow day
def test_a_demand_shift_is_noticed_retrained_for_promoted_on_live_evidence_and_recovered(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, monitoring=LOOP, lifecycle=SHIFTED)
    first = run_chain(settings, training=TRAINING)
    assert first.production_version == first.model_version
    before = day_by_day(settings, 3, tmp_path)
    assert all(not t.retrained and not t.rolled_back for t, _ in before), [t.describe() for t, _ in before]

    shift_day = next_day(settings.data)
    after = day_by_day(settings, 12, tmp_path, shift=DemandShift("level", shift_day, 3.0))
    curve = live_curve(settings)
    print(curve.round(3).to_string())
    # The nightly plan's reorder points, scored the day after each: kept about as often as promised
    # before the shift, far less often once demand tripled, until a retrained version served them.
    kept = kept_promises(settings, first.model_version, shift_day)
    print(kept)
    assert kept["decisions"].min() >= 50 and kept.loc[False, "achieved"] >= 0.8, kept
    assert kept.loc[True, "achieved"] < kept.loc[False, "achieved"] - 0.3, kept
    # The nightly forecasts, whole horizons, are the evidence the lead-time tables are refitted on.
    evidence = pd.read_parquet(evidence_path(settings.lake_dir))
    known = evidence.dropna(subset=["demand"])
    assert len(known) > 0 and set(evidence["step"]) == set(range(1, settings.cadence("D").horizon + 1)), evidence
    # The loop computed the tables each of those versions serves now; the service and the plan read them.
    for version in set(known["model_version"]):
        served = live_calibration(settings.lake_dir, version, settings.cadence("D").horizon)
        assert served is not None and len(served["refitted"]) == len(served["tables"]), version

    retrained = [n for n, (t, _) in enumerate(after) if t.retrained]
    assert retrained, "no retraining started after the shift"
    assert retrained[0] < LOOP.retrain_periods + 2, f"retraining started {retrained[0] + 1} days after the shift"
    assert max(d["psi"].get("units_sold", 0) for _, d in after) > 0.25, "the sales drift significantly"
    after = [t for t, _ in after]
    promoted = [t for t in after if "promoted" in t.promotion]
    assert promoted, [t.promotion for t in after]
    registry = DemandopsResource.from_settings(settings).registry()
    champion = registry.by_alias("production")
    assert champion.version != first.model_version and champion.state == State.PRODUCTION
    first_retrain = after[retrained[0]]
    [trained] = [
        e for e in registry.audit.history(registry.model_name)
        if e.to_state == State.TRAINED and e.version == first_retrain.new_version
    ]  # fmt: skip
    assert trained.evidence["retrain_reason"] == first_retrain.retrained, "the reason is in the audit"
    # The loop's champion beats the model it replaced on the same, latest days (both were served: the
    # old one's forecasts from earlier origins are still being scored).
    served = curve[champion.version].dropna().tail(5)
    assert len(served) >= 3 and (served < curve.loc[served.index, first.model_version]).all(), curve.tail(5)
    pre_shift = curve.loc[curve.index < pd.Timestamp(shift_day), first.model_version].mean()
    recovered = served.mean()
    print(f"pre-shift live WAPE {pre_shift:.3f}; champion v{champion.version}, last 5 days: {recovered:.3f}")


# A release that should not have shipped: one optimizer step, let through by guards a hurried CI relaxed
# (no statistical baselines, any interval coverage, a challenger up to 99% worse than the champion).
WORSE = {"epochs": 1, "min_batches_per_epoch": 1}
LAX = LifecycleSettings(statistical_baselines=(), coverage_band=(0.0, 1.0), champion_tolerance=0.99)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_worse_champion_is_rolled_back_by_the_loop_with_its_evidence(tmp_path: Path) -> None:
    restarts = tmp_path / "restarts.txt"
    watch_only = LOOP.model_copy(
        update={
            "retrain_margin": 10.0,
            "retrain_on_drift": (),
            "on_alias_move": f"echo $DEMANDOPS_PRODUCTION_VERSION >> {restarts}",
        }
    )
    settings = make_settings(tmp_path, monitoring=watch_only, lifecycle=LAX)
    first = run_chain(settings, training=TRAINING)
    worse = run_chain(settings, promote_first=False, training=WORSE)
    assert worse.state == State.STAGED, worse
    registry = DemandopsResource.from_settings(settings).registry()
    registry.transition(worse.model_version, State.PRODUCTION, actor="ci", reason="hurried release", evidence={})

    turns = [turn for turn, _ in day_by_day(settings, LOOP.rollback_periods + 2, tmp_path)]
    print(live_curve(settings).round(3).to_string())
    rolled = [n for n, t in enumerate(turns) if t.rolled_back]
    # Once, within a period of the window filling (a period within the margin restarts the count).
    assert len(rolled) == 1 and rolled[0] <= LOOP.rollback_periods, rolled
    assert registry.by_alias("production").version == first.model_version
    restored = registry.audit.history(registry.model_name)[-1]
    assert (restored.version, restored.to_state, restored.actor) == (
        first.model_version,
        "Production",
        "demandops-loop",
    )
    evidence = restored.evidence
    assert evidence["replaces"] == worse.model_version and len(evidence["periods"]) == LOOP.rollback_periods
    assert evidence["champion_live_wape"] > evidence["previous_live_wape"] * (1 + LOOP.rollback_margin)
    assert evidence["forecasts_compared"] > 0
    assert restarts.read_text().split() == [first.model_version], "the deployment's restart hook ran once"
