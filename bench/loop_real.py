"""The closed loop on real data: Tourism (or M1) monthly series whose official holdout arrives a month at a time.

    .venv/bin/python -m bench.loop_real [--dataset m1] [--limit N] [--months 10]

The history goes in and through `demandops run` as in bench/real.py (nothing set but the horizon, and
the live guard on). Then, for each holdout month, what a user's cron does: `demandops forecast` (the
Production model's file, logged like the endpoint's answers), `demandops plan` twice (reorder points
for a lead time of 1 month at 0.9 and of 3 months at 0.95, logged as the endpoint's are), the month's
actuals with `demandops data import --append`, and `demandops loop`. Recorded in
bench/results/loop_real.json and printed: per month, what the loop did; per target month and model
version, the live WAPE of every forecast served for it (all origins, so every horizon step up to the
months delivered); each version's live WAPE over the run beside its backtest WAPE; and the live cycle
service of the reorder points served (monitoring/service_level.py): per version, lead time and level,
the decisions scored and the share whose demand over the lead time stayed at or below them. Each plan
is also made with the bundle's lead-time tables as trained (not logged), beside the default's tables
refitted on the logged forecasts (training/recalibration.py); both ways' reorder points are scored
against the holdout per month at the end of their lead time (`plan_service_by_month`).

M1 by default, all of its 617 monthly series: on Tourism (all 366, or 40), and on the first 120 of M1,
the guards refuse version 1 (worse than seasonal naive on the backtest's window starts; see
bench/results/real.json), so the loop has no champion to watch.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.real import RESULTS, _cli, user_environment
from demandops.frequency import from_ordinals
from demandops.settings import Settings
from monitoring.live_summary import per_period_wape
from monitoring.service_level import score_decisions, service_table, window_end_ordinals
from pipelines.lake import Lake
from pipelines.live_accuracy import LEAD_TIME_SERVICE, backtest_wapes, scored_history
from pipelines.resources import DemandopsResource
from salesdata.competitions import COMPETITIONS, CompetitionData, monthly_competition

CONTRACT = ["date", "store_id", "sku_id", "units_sold"]
TURN_LINES = ("champion:", "live WAPE", "drift:", "rolled back:", "retrained:", "promotion:", "version ")
PLANS = ((1, 0.9), (3, 0.95))  # (lead time in months, service level) of the nightly plans
# Each plan twice, side by side: with the lead-time tables refitted on the logged forecasts' known
# lead-time demands (the default, logged as the endpoint's answers are), and with the bundle's tables
# as trained (not logged: its promises would count as the same decisions).
PLAN_WAYS = {
    "refitted": {},
    "as_trained": {"DEMANDOPS_SERVING__RECALIBRATE_LEAD_TIME": "false", "DEMANDOPS_SERVING__PREDICTION_LOG": "false"},
}


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    frame[CONTRACT].assign(date=frame["date"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
    return path


def deliver_months(data: CompetitionData, project: Path, months: int) -> list[dict]:
    """The chain, then a forecast, a month of actuals and a loop turn per month; what each turn said."""
    env = user_environment(project, data.horizon, DEMANDOPS_LIFECYCLE__LIVE_GUARD="true")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    _cli(project, "data", "import", str(_csv(data.history, project / "history.csv")), "--frequency", "M", env=env)
    _, run_s = _cli(project, "run", env=env)
    turns = [{"month": "history", "seconds": round(run_s, 1), "said": ["demandops run"]}]
    plans = project / "plans"
    plans.mkdir(exist_ok=True)
    for month in sorted(data.holdout["date"].unique())[:months]:
        _, forecast_s = _cli(project, "forecast", "--output", str(project / "forecast.parquet"), env=env)
        refitted = []
        for (lead, level), way in itertools.product(PLANS, PLAN_WAYS):
            plan = ("plan", "--output", str(plans / f"{way}_L{lead}_{month:%Y-%m}.parquet"), "--lead-time", str(lead))
            said, plan_s = _cli(project, *plan, "--service-level", str(level), env=env | PLAN_WAYS[way])
            refitted += [f"plan L{lead} {way}: {line}" for line in said.splitlines() if line.startswith("lead-time")]
            forecast_s += plan_s
        actuals = _csv(data.holdout[data.holdout["date"] == month], project / f"{month:%Y-%m}.csv")
        _cli(project, "data", "import", str(actuals), "--frequency", "M", "--append", env=env)
        said, loop_s = _cli(project, "loop", env=env)
        lines = [line for line in said.splitlines() if line.startswith(TURN_LINES)]
        lines += refitted
        turns.append({"month": f"{month:%Y-%m}", "seconds": round(forecast_s + loop_s, 1), "said": lines})
        print(f"--- {month:%Y-%m} ({forecast_s + loop_s:.0f} s)\n" + "\n".join(lines), flush=True)
    return turns


def live_curve(project: Path) -> pd.DataFrame:
    """WAPE of the served forecasts per target month and model version (forecast_accuracy's partitions)."""
    return per_period_wape(scored_history(Lake(Settings(project_dir=project).lake_dir)))


def plan_service(project: Path, holdout: pd.DataFrame, months: int) -> list[dict]:
    """The reorder points of each way's monthly plans (PLAN_WAYS) against the delivered holdout months,
    scored as the loop scores decisions: per way, lead time and month at the end of the lead time, the
    decisions scored and the share kept."""
    delivered = holdout[holdout["date"].isin(sorted(holdout["date"].unique())[:months])]
    rows = []
    for way in PLAN_WAYS:
        files = sorted((project / "plans").glob(f"{way}_L*.parquet"))
        decided = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        scored = score_decisions(decided, delivered, "M").assign(way=way)
        scored["ends"] = from_ordinals(window_end_ordinals(scored, "M"), "M")
        table = scored.groupby(["way", "lead_time", "service_level", "ends"])["covered"].agg(["size", "mean"])
        rows += table.reset_index().rename(columns={"size": "decisions", "mean": "achieved"}).to_dict("records")
    return [
        r | {"ends": f"{r['ends']:%Y-%m}", "decisions": int(r["decisions"]), "achieved": round(float(r["achieved"]), 4)}
        for r in rows
    ]


def live_service(project: Path) -> list[dict]:
    """The reorder points scored so far, per version, lead time and level (forecast_accuracy's decisions)."""
    folder = Lake(Settings(project_dir=project).lake_dir).asset_dir(LEAD_TIME_SERVICE)
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return []
    table = service_table(pd.concat([pd.read_parquet(f) for f in files], ignore_index=True))
    return table.round(4).to_dict("records")


def versions(project: Path, curve: pd.DataFrame) -> dict[str, dict]:
    """Each version's state now, backtest WAPE and live WAPE (mean over the months it was scored)."""
    settings = Settings(project_dir=project)
    registry = DemandopsResource.from_settings(settings).registry()
    known = registry.versions()
    backtest = backtest_wapes(settings, registry, [v.version for v in known])
    return {
        v.version: {
            "state": str(v.state),
            "backtest_wape": backtest.get(v.version),
            "live_wape_mean": round(float(curve[v.version].mean()), 4) if v.version in curve else None,
            "months_scored": int(curve[v.version].notna().sum()) if v.version in curve else 0,
        }
        for v in known
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="m1", choices=COMPETITIONS)
    parser.add_argument("--limit", type=int, default=None, help="First N series (default: all).")
    parser.add_argument("--months", type=int, default=10, help="Holdout months delivered one at a time.")
    parser.add_argument("--keep", type=Path, default=None, help="Keep the project (state, runs, log) here.")
    args = parser.parse_args(argv)
    data = monthly_competition(args.dataset, limit=args.limit)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"demandops-loop-{args.dataset}-") as tmp:
        project = Path(tmp) if args.keep is None else args.keep
        project.mkdir(parents=True, exist_ok=True)
        turns = deliver_months(data, project, args.months)
        curve = live_curve(project)
        result = {
            "dataset": args.dataset,
            "series": data.series,
            "horizon": data.horizon,
            "months": args.months,
            "turns": turns,
            "live_wape_per_month": {
                f"{d:%Y-%m}": {v: round(float(w), 4) for v, w in row.dropna().items()} for d, row in curve.iterrows()
            },
            "versions": versions(project, curve),
            "live_service": live_service(project),
            "plan_service_by_month": plan_service(project, data.holdout, args.months),
            "wall_s": round(time.perf_counter() - started, 1),
            "peak_rss_mb_largest_command": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        }
    print(curve.round(3).to_string())
    print(json.dumps(result["versions"], indent=2))
    print(pd.DataFrame(result["live_service"]).to_string(index=False))
    by_month = pd.DataFrame(result["plan_service_by_month"])
    if not by_month.empty:
        print(by_month.pivot_table(index=["lead_time", "ends"], columns="way", values="achieved").to_string())
        weighted = by_month.assign(kept=by_month["achieved"] * by_month["decisions"])
        overall = weighted.groupby(["way", "lead_time"])[["kept", "decisions"]].sum()
        print((overall["kept"] / overall["decisions"]).round(4).rename("achieved").to_string())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "loop_real.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
