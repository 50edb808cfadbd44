"""The whole chain at catalogue sizes: wall time, peak RSS and time per series-period, per stage.

    .venv/bin/python -m bench.scale --label before                # 200, 2,500 and 25,000 series
    .venv/bin/python -m bench.scale --sizes 200 2500 --label after

Each size runs as a user would run it, from an empty project folder: `demandops data generate
--stores N --skus M --days D --no-track`, then `demandops run` as a subprocess (it records the
dataset with DVC, gates, builds features, trains, backtests and builds the Bento), then
`demandops forecast` for every series, then one more day (`demandops data append --days 1`) through
the sensor path (bench/sensor_path.py: gate, features and materialization, no training). A sampler
reads the RSS of every process of the command's tree twice a second and charges it to the Dagster
step running at that moment, read from the
run's own event log as it is written. A run that passes --max-rss-gb (the whole tree) or
--max-minutes is stopped, and recorded with the stage it had reached: today's limits are part of
the result. Results go to bench/results/scale.json under the label, beside earlier labels.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

RESULTS = Path(__file__).parent / "results"
DAYS = 730
SIZES = {200: (8, 25), 2500: (20, 125), 25000: (50, 500)}  # series: (stores, SKUs per store)
# Dagster step -> the stage it belongs to; an asset check belongs to the asset it checks.
STAGES = {
    "raw_sales": "gate",
    "sales_features": "features",
    "online_features": "materialization",
    "training_set": "training set",
    "trained_model": "training",
    "model_evaluation": "backtest",
    "bento": "bento build, smoke and skew check",
}
STEP_EVENT = re.compile(r'- (STEP_START|STEP_SUCCESS|STEP_FAILURE) - .*?step "([^"]+)"')
SAMPLE_EVERY_S = 0.5


@dataclass
class StageUse:
    seconds: float = 0.0
    main_rss_mb: float = 0.0  # the command's own process
    child_rss_mb: float = 0.0  # its largest descendant (the training job, the Bento server, ...)
    tree_rss_mb: float = 0.0  # all of them at once
    largest_child: str = ""


@dataclass
class Measured:
    command: str
    returncode: int | None = None
    wall_s: float = 0.0
    stopped: str = ""  # why the bench stopped it, when it did
    stages: dict[str, StageUse] = field(default_factory=dict)
    log_tail: str = ""


def _stage_of(step: str) -> str:
    for prefix, stage in STAGES.items():
        if step == prefix or step.startswith(prefix + "_check"):
            return stage
    return step


def _role(process: psutil.Process) -> str:
    """A short name for a descendant: what it runs, not its whole command line."""
    try:
        words = process.cmdline()
    except psutil.Error:
        return "?"
    for marker in ("training.job", "serve", "build", "dvc", "torchrun"):
        if any(marker in word for word in words):
            return marker
    return Path(words[0]).name if words else "?"


def monitored(
    command: list[str], *, cwd: Path, env: dict[str, str], limits: tuple[float, float], log: Path
) -> Measured:
    """Run `command`, charging RSS samples and wall time to the stage running at each moment."""
    max_rss_mb, max_s = limits
    measured = Measured(command=" ".join(Path(command[0]).name if i == 0 else w for i, w in enumerate(command)))
    current = {"stage": "setup"}
    started = time.perf_counter()
    with log.open("w") as sink:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # the whole tree can be stopped at once
        )
        reader = threading.Thread(target=_follow, args=(proc, sink, current), daemon=True)
        reader.start()
        root = psutil.Process(proc.pid)
        last = started
        while proc.poll() is None:
            time.sleep(SAMPLE_EVERY_S)
            now = time.perf_counter()
            use = measured.stages.setdefault(current["stage"], StageUse())
            use.seconds += now - last
            last = now
            tree = _sample(root)
            if tree is None:
                continue
            main_mb, child_mb, child_role = tree
            total = main_mb + sum(child_mb)
            use.main_rss_mb = max(use.main_rss_mb, main_mb)
            if child_mb and max(child_mb) > use.child_rss_mb:
                use.child_rss_mb, use.largest_child = max(child_mb), child_role
            use.tree_rss_mb = max(use.tree_rss_mb, total)
            over = total > max_rss_mb and f"tree RSS {total / 1024:.1f} GB passed the {max_rss_mb / 1024:.0f} GB limit"
            late = now - started > max_s and f"still running after {max_s / 60:.0f} min"
            if over or late:
                measured.stopped = f"{over or late}, in stage {current['stage']}"
                os.killpg(proc.pid, signal.SIGKILL)
        reader.join(timeout=30)
    measured.returncode = proc.returncode
    measured.wall_s = time.perf_counter() - started
    measured.log_tail = "\n".join(log.read_text().splitlines()[-15:]) if measured.returncode else ""
    return measured


def _follow(proc: subprocess.Popen, sink, current: dict) -> None:
    """Copy the command's output to its log, and note which Dagster step is running."""
    for line in proc.stdout:
        sink.write(line)
        event = STEP_EVENT.search(line)
        if event:
            kind, step = event.groups()
            current["stage"] = _stage_of(step) if kind == "STEP_START" else "between steps"


def _sample(root: psutil.Process) -> tuple[float, list[float], str] | None:
    """RSS (MB) of the root, of each descendant, and the role of the largest; None once it is gone."""
    try:
        main = root.memory_info().rss / 2**20
        children = root.children(recursive=True)
    except psutil.Error:
        return None
    sizes = []
    for child in children:
        try:
            sizes.append(child.memory_info().rss / 2**20)
        except psutil.Error:
            sizes.append(0.0)
    role = _role(children[sizes.index(max(sizes))]) if sizes else ""
    return main, sizes, role


def run_size(series: int, days: int, limits: tuple[float, float], keep: Path | None, training: str = "") -> dict:
    stores, skus = SIZES[series]
    series_periods = stores * skus * days
    with tempfile.TemporaryDirectory(prefix=f"demandops-scale-{series}-") as tmp:
        project = keep / str(series) if keep else Path(tmp)
        project.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q"], cwd=project, check=True)
        env = {**os.environ, "DEMANDOPS_PROJECT_DIR": str(project)}
        env.pop("DEMANDOPS_PROFILE", None)
        steps = {
            "generate": [
                "data",
                "generate",
                "--stores",
                str(stores),
                "--skus",
                str(skus),
                "--days",
                str(days),
                "--no-track",
            ],
            "run": ["run", *(["--training-config", training] if training else [])],
            "forecast": ["forecast", "--output", str(project / "forecast.csv")],
            "append_one_day": ["data", "append", "--days", "1"],  # recorded with DVC, as new days arrive
        }
        commands = {name: [str(Path(sys.executable).parent / "demandops"), *args] for name, args in steps.items()}
        commands["sensor_path"] = [sys.executable, "-m", "bench.sensor_path"]  # gate, features, materialization
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)  # bench.sensor_path runs from the project
        out = {"series": stores * skus, "stores": stores, "skus": skus, "days": days, "training_config": training}
        for name, command in commands.items():
            measured = monitored(command, cwd=project, env=env, limits=limits, log=project / f"{name}.log")
            out[name] = _summary(measured, series_periods)
            print(
                f"  {series} series, {name}: {out[name]['wall_s']:.0f} s, rc {measured.returncode} {measured.stopped}",
                flush=True,
            )
            if measured.returncode:
                break
        if out.get("forecast", {}).get("returncode") == 0:
            out["forecast"]["series_per_s"] = round(out["series"] / out["forecast"]["wall_s"], 1)
        if out.get("sensor_path", {}).get("returncode") == 0:  # +1 day without retraining, against the cold run
            out["sensor_path"]["share_of_cold_run"] = round(out["sensor_path"]["wall_s"] / out["run"]["wall_s"], 4)
    return out


def _summary(measured: Measured, series_periods: int) -> dict:
    stages = {
        name: {
            "seconds": round(use.seconds, 1),
            "us_per_series_period": round(use.seconds / series_periods * 1e6, 2),
            "peak_rss_mb_main": round(use.main_rss_mb),
            "peak_rss_mb_largest_child": round(use.child_rss_mb),
            "largest_child": use.largest_child,
            "peak_rss_mb_tree": round(use.tree_rss_mb),
        }
        for name, use in measured.stages.items()
    }
    return {
        "returncode": measured.returncode,
        "wall_s": round(measured.wall_s, 1),
        "stopped_by_bench": measured.stopped,
        "stages": stages,
        "log_tail": measured.log_tail,
    }


def ratios(results: dict[str, dict], small: str, big: str) -> dict[str, float]:
    """Time per series-period at the big size over the small one, per stage both completed."""
    a, b = results[small]["run"]["stages"], results[big]["run"]["stages"]
    return {
        stage: round(b[stage]["us_per_series_period"] / a[stage]["us_per_series_period"], 3)
        for stage in a
        if stage in b and a[stage]["us_per_series_period"] > 0 and b[stage]["seconds"] >= 1
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--label", required=True, help="Where the results go in scale.json, e.g. before, after.")
    parser.add_argument("--max-rss-gb", type=float, default=20.0, help="Stop a command whose tree passes this.")
    parser.add_argument("--max-minutes", type=float, default=60.0, help="Stop a command running longer.")
    parser.add_argument("--keep", type=Path, default=None, help="Keep each size's project (data, state, logs) here.")
    parser.add_argument("--training-config", default="", help="Passed to demandops run, e.g. '{\"epochs\": 10}'.")
    args = parser.parse_args(argv)
    recorded = RESULTS / "scale.json"
    results = json.loads(recorded.read_text()) if recorded.is_file() else {}
    results["machine"] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }
    entry = results.setdefault(args.label, {})
    limits = (args.max_rss_gb * 1024, args.max_minutes * 60)
    for series in args.sizes:
        entry[str(series)] = run_size(series, args.days, limits, args.keep, args.training_config)
        RESULTS.mkdir(exist_ok=True)
        recorded.write_text(json.dumps(results, indent=2) + "\n")  # each size as soon as it is measured
        _print(entry[str(series)])
    done = [s for s in map(str, args.sizes) if entry[s].get("run", {}).get("returncode") == 0]
    for small, big in zip(done, done[1:], strict=False):
        entry[f"ratio_{big}_vs_{small}"] = ratios(entry, small, big)
        print(f"time per series-period, {big} vs {small}: {entry[f'ratio_{big}_vs_{small}']}")
    recorded.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _print(size: dict) -> None:
    print(f"\n{size['series']} series x {size['days']} days")
    for step in ("generate", "run", "forecast"):
        if step not in size:
            continue
        print(f"  {step}: {size[step]['wall_s']:.0f} s {size[step]['stopped_by_bench']}")
        for stage, use in size[step]["stages"].items():
            print(
                f"    {stage:36s} {use['seconds']:8.1f} s  {use['us_per_series_period']:8.2f} us/series-period  "
                f"main {use['peak_rss_mb_main']:6d} MB  child {use['peak_rss_mb_largest_child']:6d} MB "
                f"({use['largest_child']})  tree {use['peak_rss_mb_tree']:6d} MB"
            )


if __name__ == "__main__":
    sys.exit(main())
