"""The closed loop on the small preset, day by day: the Production model's nightly forecasts are logged,
new sales days arrive, and `demandops loop` (pipelines/loop.py) scores, watches drift, retrains,
promotes on live evidence, and rolls back."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from demandops.settings import LifecycleSettings, MonitoringSettings, Settings
from lifecycle.states import State
from monitoring.drift import read_drift_summary
from pipelines.lake import Lake
from pipelines.live_accuracy import FORECAST_ACCURACY
from pipelines.loop import LoopTurn, run_loop
from pipelines.resources import DemandopsResource
from pipelines.run import run_chain
from salesdata.datasets import append_days, next_day
from salesdata.dvc_versions import track
from salesdata.simulator import DemandShift
from serving.batch import score_all
from tests.conftest import make_settings

LOOP = MonitoringSettings(retrain_periods=2, retrain_margin=0.2, rollback_periods=2, rollback_margin=0.1)
TRAINING = {"epochs": 8}  # enough to beat the baselines on the small preset, and quick


def deliver(settings: Settings, days: int = 1, shift: DemandShift | None = None) -> None:
    """New sales days arrive, recorded as a new DVC version (demandops data append)."""
    append_days(settings.data, days, shift)
    track(settings.project_dir, settings.data)


def day_by_day(
    settings: Settings, days: int, tmp_path: Path, shift: DemandShift | None = None
) -> list[tuple[LoopTurn, dict]]:
    """Each day: the nightly file of the Production model (logged), then the day's sales, then the loop;
    each turn with the drift it measured."""
    turns = []
    for day in range(days):
        registry = DemandopsResource.from_settings(settings).registry()
        score_all(settings, registry, tmp_path / "nightly.parquet")
        deliver(settings, shift=shift if day == 0 else None)
        turns.append((run_loop(settings), read_drift_summary(settings.lake_dir)["psi"]))
    return turns


def live_curve(settings: Settings) -> pd.DataFrame:
    """WAPE of the served forecasts per target day and version (the forecast_accuracy partitions)."""
    files = sorted(Lake(settings.lake_dir).asset_dir([FORECAST_ACCURACY]).glob("*.parquet"))
    scored = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    scored["absolute"] = (scored["actual"] - scored["p50"]).abs()
    sums = scored.groupby(["date", "model_version"])[["absolute", "actual"]].sum()
    return (sums["absolute"] / sums["actual"]).unstack("model_version")


@pytest.mark.slow
def test_a_demand_shift_is_noticed_retrained_for_promoted_on_live_evidence_and_recovered(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, monitoring=LOOP, lifecycle=LifecycleSettings(live_guard=True, live_min_forecasts=50)
    )
    first = run_chain(settings, training=TRAINING)
    assert first.production_version == first.model_version
    before = day_by_day(settings, 4, tmp_path)
    assert all(not t.retrained and not t.rolled_back for t, _ in before), [t.describe() for t, _ in before]

    shift_day = next_day(settings.data)
    after = day_by_day(settings, 10, tmp_path, shift=DemandShift("level", shift_day, 2.0))
    curve = live_curve(settings)
    print(curve.round(3).to_string())
    print("\n\n".join(f"{t.describe()}\nunits_sold PSI {psi.get('units_sold')}" for t, psi in after))

    retrained = [n for n, (t, _) in enumerate(after) if t.retrained]
    assert retrained, "no retraining started after the shift"
    assert retrained[0] < LOOP.retrain_periods + 2, f"retraining started {retrained[0] + 1} days after the shift"
    assert max(before[-1][1]["units_sold"], 0) < 0.10 < max(psi["units_sold"] for _, psi in after), "sales drift"
    after = [t for t, _ in after]
    promoted = [t for t in after if "promoted" in t.promotion]
    assert promoted, [t.promotion for t in after]
    registry = DemandopsResource.from_settings(settings).registry()
    champion = registry.by_alias("production")
    assert champion.version != first.model_version and champion.state == State.PRODUCTION
    trained = [e for e in registry.audit.history(registry.model_name) if e.to_state == State.TRAINED]
    assert trained[-1].evidence["retrain_reason"] == after[retrained[0]].retrained, "the reason is in the audit"
