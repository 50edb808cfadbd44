"""A Bento's start, measured: from `bentoml serve` to /readyz answering 200, with Python's -O and without.

    make run && .venv/bin/python -m bench.bento_start [--rounds 5]

The Production model's Bento built from this checkout, started alone on the machine `--rounds` times
in each variant, alternating which goes first. `optimized` is how demandops serves a Bento
(serving/server.py, bento_env: PYTHONOPTIMIZE=1, which skips typeguard's re-parsing of Feast's
modules at import); `plain` is the same environment without it. Reported: the median seconds to
ready of each, their ratio, and the server's resident memory once ready (supervisor and worker).
Every blue-green switch waits for this start (bench/deploy_switch.py), and so does each test that
serves a Bento. Results in bench/results/bento_start.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from bench.serve import _cpu_seconds, _peak_rss_mb, _server_processes, bento_of_this_checkout
from demandops.settings import get_settings
from serving.server import running_bento

RESULTS = Path(__file__).parent / "results"
VARIANTS = {"optimized": {}, "plain": {"PYTHONOPTIMIZE": ""}}  # empty: Python's -O off


def start_once(settings, tag: str, logs: Path, name: str) -> tuple[float, float, float]:
    """Seconds until ready, the server's CPU seconds by then, and its peak resident MB."""
    started = time.perf_counter()
    with running_bento(settings, tag, log_path=logs / f"start-{name}.log", extra_env=VARIANTS[name]) as url:
        ready_s = time.perf_counter() - started
        return ready_s, _cpu_seconds(_server_processes(url)), _peak_rss_mb(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    settings = get_settings()
    logs = settings.state / "bench"
    tag = bento_of_this_checkout(settings, logs / "bundle")
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in VARIANTS}
    for round_number in range(args.rounds):
        order = list(VARIANTS) if round_number % 2 == 0 else list(reversed(VARIANTS))
        for name in order:
            runs[name].append(start_once(settings, tag, logs, name))
            ready_s, cpu_s, rss_mb = runs[name][-1]
            print(f"round {round_number + 1} {name:9s} ready after {ready_s:.1f} s, {cpu_s:.1f} CPU-s, {rss_mb:.0f} MB")
    summary = {
        name: {
            "ready_s": [round(r, 2) for r, _, _ in values],
            "median_ready_s": round(statistics.median(r for r, _, _ in values), 2),
            "median_cpu_s": round(statistics.median(c for _, c, _ in values), 2),
            "median_peak_rss_mb": round(statistics.median(m for _, _, m in values), 1),
        }
        for name, values in runs.items()
    }
    optimized, plain = summary["optimized"], summary["plain"]
    ratios = {
        f"optimized_over_plain_{what}": round(optimized[f"median_{what}"] / plain[f"median_{what}"], 3)
        for what in ("ready_s", "cpu_s", "peak_rss_mb")
    }
    result = {"machine": platform.platform(), "rounds": args.rounds, "variants": summary, "ratios": ratios}
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bento_start.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
