"""What the live lead-time refit costs as the catalogue grows: the loop's side (the evidence and the
tables each version serves, computed once per scored period) and the service's (reading them).

    .venv/bin/python -m bench.lead_time_refit_cost [--series 1000 4000 12000] [--repeats 3]

For each catalogue size: daily forecasts of a 14-day horizon logged at every origin the evidence
reaches back to (twice the 28-day window and the horizon), and the sales that followed, for `series`
series, demand growing 0.2% a day faster than the forecast. Each side runs in a process of its own
(a child inherits its parent's peak RSS, so the driver spawns both). Timed as the product runs them,
medians of `--repeats`:
- `build`: monitoring/lead_time_evidence.build_evidence, what the `forecast_accuracy` asset adds to
  each scored period (the log and the sales are in memory here; the asset also reads them);
- `write`: writing it (parquet);
- `served`: served_calibration, the tables the version serves now: refitted at each origin of the
  window, the record of their promises read, and the tables now; `refit_only`: the same rows
  refitted at the scored period alone, without the record (as served before 2026-12-04), for the
  ratio; the asset side's peak RSS covers all of these;
- `live`: live_calibration, what the service runs on each scored period and the plan when it
  starts: reading the served tables, and its process's peak RSS.
Results in bench/results/lead_time_refit_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from monitoring.lead_time_evidence import (
    build_evidence,
    evidence_path,
    live_calibration,
    served_calibration,
    served_path,
    write_evidence,
    write_served,
)
from training.lead_time import calibration
from training.recalibration import served_calibrations

RESULTS = Path(__file__).parent / "results"
HORIZON, WINDOW = 14, 28
DAY0 = pd.Timestamp("2025-01-01")


def world(series: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict, str]:
    """The prediction log's rows (one per forecast and target) and the gated sales of `series`
    series over the origins the evidence reaches back to, and a calibration fitted on their level."""
    rng = np.random.default_rng(seed)
    origins = 2 * (WINDOW + HORIZON)
    level = rng.gamma(1.5, 6.0, series)
    sku = np.array([f"P{n:05d}" for n in range(series)], dtype=object)
    o, s, step = np.meshgrid(np.arange(origins), np.arange(series), np.arange(1, HORIZON + 1), indexing="ij")
    median = level[s.ravel()]
    spread = 1.28 * np.sqrt(median)
    logged = pd.DataFrame({
        "model_version": "1", "store_id": "S0", "sku_id": sku[s.ravel()],
        "origin_date": DAY0 + pd.to_timedelta(o.ravel(), "D"), "date": DAY0 + pd.to_timedelta((o + step).ravel(), "D"),
        "step": step.ravel(), "p10": np.maximum(median - spread, 0.0), "p50": median, "p90": median + spread,
    })  # fmt: skip
    days = np.arange(1, origins + HORIZON)
    d, s2 = np.meshgrid(days, np.arange(series), indexing="ij")
    sales = pd.DataFrame({
        "store_id": "S0", "sku_id": sku[s2.ravel()], "date": DAY0 + pd.to_timedelta(d.ravel(), "D"),
        "units_sold": rng.poisson(level[s2.ravel()] * (1.0 + 0.002 * d.ravel())).astype("float64"),
    })  # fmt: skip
    val = np.repeat(level[:, None], HORIZON, axis=1)
    val_forecast = np.stack([np.maximum(val - 1.28 * np.sqrt(val), 0), val, val + 1.28 * np.sqrt(val)], axis=-1)
    kept = calibration(val_forecast, rng.poisson(val).astype("float64"))
    period = (DAY0 + pd.Timedelta(days=origins)).date().isoformat()
    return logged, sales, kept, period


def timed(run, repeats: int) -> tuple[float, object]:
    seconds, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), out


def built(series: int, repeats: int) -> tuple[float, pd.DataFrame, dict, str]:
    """The evidence of `series` series, as the asset builds it, and how long that took; the log and
    the sales are let go on return, as the asset's are."""
    logged, sales, kept, period = world(series)
    seconds, evidence = timed(
        lambda: build_evidence(logged, sales, period=period, frequency="D", horizon=HORIZON, window=WINDOW), repeats
    )
    return seconds, evidence, kept, period


def one_size(series: int, repeats: int, lake_dir: Path) -> dict:
    """The loop's side: the evidence built and written into `lake_dir`, and the served tables."""
    build_s, evidence, kept, _ = built(series, repeats)
    write_s, _ = timed(lambda: write_evidence(lake_dir, evidence), repeats)
    served_s, served = timed(lambda: served_calibration(evidence, "1", kept, HORIZON), repeats)
    write_served(lake_dir, "1", served, HORIZON)
    rows = evidence[evidence["model_version"] == "1"]
    forecast = rows[["p10", "p50", "p90"]].to_numpy("float64").reshape(-1, HORIZON, 3)
    actual = rows["units"].to_numpy("float64").reshape(-1, HORIZON)
    origins, at = rows["origin_period"].to_numpy("int64")[::HORIZON], int(rows["scored_period"].iloc[0])
    refit_s, refit = timed(
        lambda: next(served_calibrations(forecast, actual, origins, kept, WINDOW, [at], read_record=False))[1], repeats
    )
    peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {
        "series": series, "evidence_rows": len(evidence),
        "evidence_mib": round(evidence_path(lake_dir).stat().st_size / 2**20, 1), "build_s": round(build_s, 3),
        "write_s": round(write_s, 3), "served_s": round(served_s, 3), "refit_only_s": round(refit_s, 3),
        "served_over_refit_only": round(served_s / refit_s, 2),
        "mean_raise_standardized": round(float(np.mean(np.subtract(served["tables"], refit["tables"]))), 4),
        "loop_side_peak_rss_mib": peak, "served_tables_kib": round(served_path(lake_dir, "1").stat().st_size / 1024, 1),
    }  # fmt: skip


def serve_size(lake_dir: Path, repeats: int) -> dict:
    """The service's side, in a process of its own: reading the served tables."""
    live_s, served = timed(lambda: live_calibration(lake_dir, "1", HORIZON), repeats)
    if served is None:
        raise SystemExit(f"no served tables in {lake_dir}: the loop's side wrote none")
    rss = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"live_s": round(live_s, 4), "service_side_peak_rss_mib": rss}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", nargs="+", type=int, default=[1000, 4000, 12000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a size, measured in this process
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # a lake whose evidence the service reads
    parser.add_argument("--lake", type=Path, help=argparse.SUPPRESS)  # where --one writes it
    args = parser.parse_args(argv)
    if args.serve:
        print(json.dumps(serve_size(args.serve, args.repeats)))
        return 0
    if args.one:
        print(json.dumps(one_size(args.one, args.repeats, args.lake)))
        return 0
    sizes = []
    for series in args.series:  # each side in a fresh process: a child inherits its parent's peak RSS
        with tempfile.TemporaryDirectory() as lake:
            sides = [["--one", str(series), "--lake", lake], ["--serve", lake]]
            entry: dict = {}
            for side in sides:
                command = [sys.executable, "-m", "bench.lead_time_refit_cost", *side, "--repeats", str(args.repeats)]
                out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                entry |= json.loads(out.strip().splitlines()[-1])
        sizes.append(entry)
        print(json.dumps(entry), flush=True)
    result = {"machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores", "sizes": sizes}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lead_time_refit_cost.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
