"""Real data through the whole chain: Tourism and M1 monthly series, scored on their official holdouts.

    .venv/bin/python -m bench.real                       # Tourism (366 series, h=24) and M1 (617, h=18)
    .venv/bin/python -m bench.real --datasets tourism --limit 40

Each dataset goes in as a user's would: written as a CSV with only the required columns,
`demandops data import --frequency M`, `demandops run` with nothing set but the horizon, and
`demandops forecast` from the last month of history. The forecasts are scored on the official
holdout with sMAPE and MASE (each series' error over its in-sample seasonal-naive error, as the
competitions score), beside statsforecast's SeasonalNaive, AutoETS, AutoTheta and
DynamicOptimizedTheta and the median of the last three, fitted in the same run on the same split.
Results go to bench/results/real.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from salesdata.competitions import COMPETITIONS, CompetitionData, monthly_competition

RESULTS = Path(__file__).parent / "results"
ANCHORS = ("SeasonalNaive", "AutoETS", "AutoTheta", "DynamicOptimizedTheta")
SEASON = 12


def _cli(project: Path, *args: str, env: dict[str, str]) -> tuple[str, float]:
    """Run `demandops ARGS` in `project` as a user would; raises with its output when it fails."""
    started = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "demandops"), *args], cwd=project, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"demandops {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout, time.perf_counter() - started


def user_environment(project: Path, horizon: int, **settings: str) -> dict[str, str]:
    """The environment of a user's `demandops` commands in `project`: the local profile, the monthly
    horizon, and any further DEMANDOPS_* settings given."""
    env = {**os.environ, "DEMANDOPS_PROJECT_DIR": str(project), "DEMANDOPS_CADENCES__M__HORIZON": str(horizon)}
    env.pop("DEMANDOPS_PROFILE", None)
    return env | settings


def chain_forecast(data: CompetitionData, project: Path) -> tuple[pd.DataFrame, dict]:
    """Import, run and forecast through the CLI: the p50 per (series, date), the steps' wall times and
    the outcome ("served", or the guards' refusal, when there is no forecast to score)."""
    source = project / "sales.csv"
    data.history.assign(date=data.history["date"].dt.strftime("%Y-%m-%d")).to_csv(source, index=False)
    env = user_environment(project, data.horizon)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    _, imported = _cli(project, "data", "import", str(source), "--frequency", "M", env=env)
    started = time.perf_counter()
    ran = subprocess.run(
        [str(Path(sys.executable).parent / "demandops"), "run"], cwd=project, env=env, capture_output=True, text=True
    )
    timings = {"import_s": imported, "run_s": time.perf_counter() - started}
    if ran.returncode:  # a model the guards refused: recorded as the outcome, with their reasons
        refusal = [line for line in ran.stderr.splitlines() if "refused by" in line]
        return pd.DataFrame(columns=["sku_id", "date", "p50"]), timings | {
            "outcome": (refusal or [ran.stderr[-600:]])[-1]
        }
    _, timings["forecast_s"] = _cli(project, "forecast", "--output", str(project / "forecast.csv"), env=env)
    forecast = pd.read_csv(project / "forecast.csv", parse_dates=["date"])
    return forecast, timings | {"outcome": "served"}


def anchors(data: CompetitionData, names: tuple[str, ...] = ANCHORS) -> dict[str, pd.DataFrame]:
    """The statsforecast models every planner has (those of `names`), fitted on the same history, as
    (sku_id, date, p50)."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, AutoTheta, DynamicOptimizedTheta, SeasonalNaive

    every = {
        "SeasonalNaive": lambda: SeasonalNaive(SEASON),
        "AutoETS": lambda: AutoETS(season_length=SEASON),
        "AutoTheta": lambda: AutoTheta(season_length=SEASON),
        "DynamicOptimizedTheta": lambda: DynamicOptimizedTheta(season_length=SEASON),
    }
    models = [every[name]() for name in names]
    frame = data.history.rename(columns={"sku_id": "unique_id", "date": "ds", "units_sold": "y"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = StatsForecast(models=models, freq="MS", n_jobs=1).forecast(
            df=frame[["unique_id", "ds", "y"]], h=data.horizon
        )
    return {
        name: fitted.rename(columns={"unique_id": "sku_id", "ds": "date", name: "p50"})[["sku_id", "date", "p50"]]
        for name in names
    }


def _matrix(forecast: pd.DataFrame, order: list[str], dates: list[pd.Timestamp]) -> np.ndarray:
    table = forecast.pivot_table(index="sku_id", columns="date", values="p50")
    return table.reindex(index=order, columns=dates).to_numpy("float64")


def scores(data: CompetitionData, forecasts: dict[str, np.ndarray], order: list[str]) -> dict[str, dict]:
    """sMAPE (%) and MASE of each forecaster on the official holdout; a missing forecast is counted."""
    dates = sorted(data.holdout["date"].unique())
    actual = _matrix(data.holdout.rename(columns={"units_sold": "p50"}), order, dates)
    history = {sku: g["units_sold"].to_numpy("float64") for sku, g in data.history.groupby("sku_id")}
    scale = np.array([np.mean(np.abs(history[s][SEASON:] - history[s][:-SEASON])) for s in order])
    out = {}
    for name, forecast in forecasts.items():
        missing = np.isnan(forecast).any(axis=1)
        a, f = actual[~missing], forecast[~missing]
        denominator = np.abs(a) + np.abs(f)
        smape = np.where(denominator > 0, 200 * np.abs(a - f) / np.where(denominator > 0, denominator, 1), 0.0)
        mase = np.mean(np.abs(a - f), axis=1) / scale[~missing]
        out[name] = {
            "smape": round(float(smape.mean()), 3),
            "mase": round(float(mase[np.isfinite(mase)].mean()), 4),
            "series_missing": int(missing.sum()),
        }
    return out


def run_dataset(name: str, limit: int | None, keep: Path | None = None, names: tuple[str, ...] = ANCHORS) -> dict:
    """The chain's forecast and the anchors of `names` (SeasonalNaive first), scored on the holdout."""
    data = monthly_competition(name, limit=limit)
    order = sorted(data.history["sku_id"].unique())
    dates = sorted(data.holdout["date"].unique())
    with tempfile.TemporaryDirectory(prefix=f"demandops-{name}-") as tmp:
        project = Path(tmp) if keep is None else keep / name
        project.mkdir(parents=True, exist_ok=True)
        forecast, timings = chain_forecast(data, project)
    started = time.perf_counter()
    fitted = anchors(data, names)
    timings["anchors_s"] = time.perf_counter() - started
    # ru_maxrss (KiB on Linux) of the largest finished child so far: the demandops commands, Dagster's
    # training job included; and of this process, which fits the anchors.
    timings["peak_rss_mb_largest_command"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    timings["peak_rss_mb_anchors"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    matrices = {"demandops": _matrix(forecast, order, dates)} | {k: _matrix(v, order, dates) for k, v in fitted.items()}
    strong = [k for k in ANCHORS[1:] if k in fitted]
    if len(strong) == len(ANCHORS) - 1:
        matrices["median(AutoETS, AutoTheta, DOTM)"] = np.median(np.stack([matrices[k] for k in strong]), axis=0)
    result = {"series": len(order), "horizon": data.horizon, "scores": scores(data, matrices, order)}
    result["ratios"] = _ratios(result["scores"], strong)
    result["timings"] = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in timings.items()}
    return result


def _ratios(scored: dict[str, dict], strong: list[str]) -> dict[str, float]:
    """demandops' MASE and sMAPE over the best of the strong anchors fitted, and over their median."""
    ours, ratios = scored["demandops"], {}
    if strong:
        best = min(strong, key=lambda k: scored[k]["mase"])
        ratios[f"mase_vs_{best}"] = round(ours["mase"] / scored[best]["mase"], 4)
        best = min(strong, key=lambda k: scored[k]["smape"])
        ratios[f"smape_vs_{best}"] = round(ours["smape"] / scored[best]["smape"], 4)
    if "median(AutoETS, AutoTheta, DOTM)" in scored:
        ratios["mase_vs_median"] = round(ours["mase"] / scored["median(AutoETS, AutoTheta, DOTM)"]["mase"], 4)
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(COMPETITIONS), choices=COMPETITIONS)
    parser.add_argument("--limit", type=int, default=None, help="First N series of each dataset (default: all).")
    parser.add_argument("--keep", type=Path, default=None, help="Keep each dataset's project (state, runs) here.")
    args = parser.parse_args(argv)
    recorded = RESULTS / "real.json"
    # Datasets run alone update their entry and keep the others'.
    earlier = json.loads(recorded.read_text())["datasets"] if recorded.is_file() else {}
    results = {"machine": platform.platform(), "cpus": os.cpu_count(), "datasets": earlier}
    for name in args.datasets:
        outcome = run_dataset(name, args.limit, args.keep)
        results["datasets"][name] = outcome
        print(f"\n{name}: {outcome['series']} series, h={outcome['horizon']}")
        for forecaster, score in outcome["scores"].items():
            mase, smape, missing = score["mase"], score["smape"], score["series_missing"]
            print(f"  {forecaster:34s} MASE {mase:.3f}  sMAPE {smape:6.2f}  missing {missing}")
        print(f"  ratios: {outcome['ratios']}")
        print(f"  outcome: {outcome['timings']['outcome']}")
    if args.limit is None:
        RESULTS.mkdir(exist_ok=True)
        recorded.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
