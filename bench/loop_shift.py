"""How long the served forecasts take to recover from a demand shift, with the loop retraining and without.

    .venv/bin/python -m bench.loop_shift [--preset small] [--before 7] [--after 35] [--factor 3]

Two projects on the same simulated data (a preset's series, seeded, so both see the same sales),
side by side, day by day: each night the Production model's file (`score_all`, logged), then
the day's sales (from the first shifted day on, demand x factor), then `run_loop`. The `loop` project
retrains, and promotes on live evidence, as tests/e2e/test_loop.py configures it; the `watch` project
scores and measures drift but never retrains, so it shows what the unchanged first model does.

What consumers were told is every logged forecast of a day, whatever version made it. Its WAPE per
target day is kept for steps 1 to `STEPS` only: the days before the shift have forecasts of their
first few steps alone, and later steps are harder, so comparing all steps would flatter the days
before. Recovered: the first shifted day whose trailing `TRAILING`-day mean is within 10% of the
level before the shift, taken both as the mean and as the median of the days before (one bad day
moves the mean of a few days on few series). Recorded in bench/results/loop_shift_PRESET.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.real import RESULTS
from demandops.settings import LifecycleSettings, MonitoringSettings, Settings
from pipelines.lake import Lake
from pipelines.live_accuracy import scored_history
from pipelines.loop import run_loop
from pipelines.resources import DemandopsResource
from pipelines.run import run_chain
from salesdata.datasets import append_days, next_day
from salesdata.dvc_versions import track
from salesdata.simulator import DemandShift
from serving.batch import score_all

STEPS = 7  # horizon steps compared before and after the shift
TRAILING = 5  # days averaged for the recovery
RECOVERED_WITHIN = 0.10
# The loop of tests/e2e/test_loop.py: retrain after 2 periods 20% worse than the backtest, live guard on.
LOOP = MonitoringSettings(
    retrain_periods=2, retrain_margin=0.2, rollback_periods=2, rollback_margin=0.1,
    challenger_patience=3, retrain_cooldown_periods=3,
)  # fmt: skip
WATCH = LOOP.model_copy(update={"retrain_margin": 1000.0, "retrain_on_drift": ()})
LIVE_GUARD = LifecycleSettings(live_guard=True, live_min_forecasts=50, coverage_band=(0.7, 0.9))
TRAINING = {"epochs": 8}


def served_wape(settings: Settings) -> pd.Series:
    """WAPE per target day of every logged forecast of steps 1..STEPS."""
    scored = scored_history(Lake(settings.lake_dir))
    scored = scored[scored["step"] <= STEPS].assign(absolute=lambda f: (f["actual"] - f["p50"]).abs())
    sums = scored.groupby("date")[["absolute", "actual"]].sum()
    return (sums["absolute"] / sums["actual"]).sort_index()


def one_day(settings: Settings, folder: Path, shift: DemandShift | None) -> dict:
    """The night's forecasts, the day's sales, the loop's turn; what the turn did and how long it took."""
    started = time.perf_counter()
    score_all(settings, DemandopsResource.from_settings(settings).registry(), folder / "nightly.parquet")
    append_days(settings.data, 1, shift)
    track(settings.project_dir, settings.data)
    turn = run_loop(settings)
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "champion": turn.champion,
        "rolled_back": turn.rolled_back,
        "retrained": turn.retrained,
        "new_version": turn.new_version,
        "promotion": turn.promotion,
    }


def recovery(curve: pd.Series, shift_day: pd.Timestamp) -> dict:
    """The level before the shift (mean and median of the days before), and when and how far the
    trailing mean of the shifted days came back to it."""
    before = curve[curve.index < shift_day]
    after = curve[curve.index >= shift_day]
    trailing = after.rolling(TRAILING).mean()
    result = {"worst_trailing": round(float(trailing.max()), 4), "last_trailing": round(float(trailing.iloc[-1]), 4)}
    for name, level in (("mean", float(before.mean())), ("median", float(before.median()))):
        within = trailing[trailing <= level * (1 + RECOVERED_WITHIN)]
        result[f"before_shift_{name}"] = round(level, 4)
        result[f"last_over_before_{name}"] = round(float(trailing.iloc[-1] / level), 3)
        result[f"recovered_on_shifted_day_{name}"] = (
            int(after.index.get_loc(within.index[0]) + 1) if len(within) else None
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", help="The simulator's preset (small: 18 series, default: 200).")
    parser.add_argument("--before", type=int, default=7, help="Days delivered before the shift.")
    parser.add_argument("--after", type=int, default=35, help="Shifted days delivered.")
    parser.add_argument("--factor", type=float, default=3.0, help="Level shift: demand x factor.")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="demandops-loop-shift-") as tmp:
        variants = {
            name: Settings(project_dir=Path(tmp) / name, preset=args.preset, monitoring=loop, lifecycle=LIVE_GUARD)
            for name, loop in (("loop", LOOP), ("watch", WATCH))
        }
        turns: dict[str, list[dict]] = {name: [] for name in variants}
        for settings in variants.values():
            settings.project_dir.mkdir(parents=True)
            run_chain(settings, training=TRAINING)
        for day in range(-args.before, args.after):
            if day == 0:
                shift_day = next_day(variants["loop"].data)
                shift = DemandShift("level", shift_day, args.factor)
            for name, settings in variants.items():  # alternating: the machine's noise falls on both
                turns[name].append(one_day(settings, settings.project_dir, shift if day == 0 else None))
            print(f"day {day:+d}: " + "; ".join(f"{n} {t[-1]}" for n, t in turns.items()), flush=True)
        curves = {name: served_wape(settings) for name, settings in variants.items()}
    shift_at = pd.Timestamp(shift_day)
    result = {
        "preset": args.preset,
        "shift": {"kind": "level", "factor": args.factor, "first_day": shift_day.isoformat()},
        "days_before": args.before,
        "days_after": args.after,
        "steps_compared": STEPS,
        "recovery": {name: recovery(curve, shift_at) for name, curve in curves.items()},
        "served_wape_per_day": {
            f"{d:%Y-%m-%d}": {n: round(float(c.get(d, float("nan"))), 4) for n, c in curves.items()}
            for d in curves["loop"].index
        },
        "turns": turns,
        "wall_s": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(pd.DataFrame(curves).round(3).to_string())
    print(json.dumps(result["recovery"], indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"loop_shift_{args.preset}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
