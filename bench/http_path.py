"""BentoML's per-request costs that settings turn off: /forecast as shipped before (BentoML's tracing
middleware and access log on the route), without the tracing middleware, and as shipped now (neither),
side by side under 64 clients; with `--compare workers`, one BentoML worker process against two.

    make run && .venv/bin/python -m bench.http_path [--compare middleware|workers] [--rounds 4] [--seconds 15]

Each variant is a server of the Production Bento built from this checkout, prediction log off (its
cost is bench/serve.py's to measure), started at once and measured in alternating rounds (the
order rotates every round, since start order alone moved two identical servers by up to 20%:
bench/serve.py --control). Load comes from bench/load.py in a second process. Besides requests/s
and p99, each round records the CPU the server's processes spent per request, which is the cost
itself; throughput shows it only through two cores shared with the load generator. Medians and the
per-round ratios against the traced server go to bench/results/http_path.json (workers.json for
`--compare workers`, against one worker).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench.serve import UNLOGGED, _peak_rss_mb, _series, bento_of_this_checkout, load, request_bodies
from demandops.settings import get_settings
from serving.server import running_bento

RESULTS = Path(__file__).parent / "results"
TRACE, ACCESS_LOG = "DEMANDOPS_SERVING__TRACE_REQUESTS", "DEMANDOPS_SERVING__ACCESS_LOG"
# What is compared: the servers' environments, the one the others are measured against, the result file.
COMPARISONS = {
    "middleware": (
        {
            "traced": {**UNLOGGED, TRACE: "true", ACCESS_LOG: "true"},
            "untraced": {**UNLOGGED, ACCESS_LOG: "true"},
            "default": UNLOGGED,
        },
        "traced",
        RESULTS / "http_path.json",
    ),
    "workers": (
        {"one_worker": UNLOGGED, "two_workers": {**UNLOGGED, "DEMANDOPS_SERVING__WORKERS": "2"}},
        "one_worker",
        RESULTS / "workers.json",
    ),
}
KEYS = ("requests_per_s", "p99_ms", "server_cpu_ms_per_request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--compare", choices=sorted(COMPARISONS), default="middleware")
    args = parser.parse_args()
    variants, baseline, result_file = COMPARISONS[args.compare]
    settings = get_settings()
    logs = settings.state / "bench"
    tag = bento_of_this_checkout(settings, logs / "bundle")
    rounds: dict[str, list[dict]] = {name: [] for name in variants}
    with ExitStack() as servers:
        urls = {
            name: servers.enter_context(running_bento(settings, tag, log_path=logs / f"{name}.log", extra_env=env))
            for name, env in variants.items()
        }
        horizon = httpx.post(f"{urls[baseline]}/v1/metadata", json={}).json()["horizon"]
        bodies_file = logs / "bodies.jsonl"
        bodies_file.write_bytes(b"\n".join(request_bodies(*_series(settings), horizon, 5000)))
        for url in urls.values():  # BentoML's batcher first calibrates on single requests
            load(url, bodies_file, clients=args.clients, seconds=3.0, max_requests=50_000)
        names = list(variants)
        for number in range(args.rounds):
            for name in names[number % len(names) :] + names[: number % len(names)]:
                result = load(urls[name], bodies_file, clients=args.clients, seconds=args.seconds, max_requests=50_000)
                rounds[name].append(result)
                print(f"round {number + 1} {name:26s} {json.dumps(result)}", flush=True)
        peak_rss_mb = {name: _peak_rss_mb(url) for name, url in urls.items()}
    result = summarize(rounds, baseline)
    result |= {"machine": f"{platform.machine()}, {platform.python_version()}", "config": vars(args)}
    result["peak_rss_mb"] = peak_rss_mb
    print(json.dumps({k: result[k] for k in ("median", f"over_{baseline}", "peak_rss_mb")}, indent=2))
    result_file.write_text(json.dumps(result, indent=2))


def summarize(rounds: dict[str, list[dict]], baseline: str) -> dict:
    """Medians per variant, and per variant the median over rounds of its ratio to the baseline's
    requests/s and of the baseline's CPU per request over its own (above 1: cheaper)."""
    median = {name: {k: statistics.median(r[k] for r in rs) for k in KEYS} for name, rs in rounds.items()}
    against = rounds[baseline]
    over_baseline = {
        name: {
            "requests_per_s": _median_ratio(rs, against, "requests_per_s"),
            "cpu_per_request_saved": _median_ratio(against, rs, "server_cpu_ms_per_request"),
        }
        for name, rs in rounds.items()
        if name != baseline
    }
    return {"median": median, f"over_{baseline}": over_baseline, "rounds": rounds}


def _median_ratio(top: list[dict], bottom: list[dict], key: str) -> float:
    return round(statistics.median(t[key] / b[key] for t, b in zip(top, bottom, strict=True)), 3)


if __name__ == "__main__":
    main()
