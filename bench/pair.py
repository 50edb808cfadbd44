"""Two variants of the served Bento side by side, in both start orders: what a per-request feature costs.

Both servers are up at once; `rounds` alternating rounds of 64-client load (bench/serve.py's `load`)
are run with one started first, then afresh with the other first, since two identical servers differ
by up to 20% with the order they were started in (bench/serve.py). The ratio of the first variant's
requests per second over the second's is the geometric mean of the two orders' median ratios; the
servers' CPU per request gives the same ratio free of that bias.
"""

from __future__ import annotations

import argparse
import json
import statistics
from contextlib import ExitStack
from pathlib import Path

from bench.serve import _peak_rss_mb, cpu_ratios, load, median_of, per_round_ratios
from serving.server import running_bento

MEDIANS = ("requests_per_s", "p99_ms")


def compare_two(
    settings, tag: str, logs: Path, bodies: Path, args, *, variants: dict[str, dict], keys_files: dict | None = None
) -> dict:
    """variants: name -> the server's extra environment, the treated variant first; keys_files: name ->
    API keys its clients send. Returns `A_over_B`, `by_order`, `A_over_B_by_cpu`, peak RSS and the rounds."""
    treated, baseline = variants
    files = {name: (keys_files or {}).get(name) for name in variants}
    orders, peak_rss_mb = {}, {}
    for first in (treated, baseline):
        order = [first, baseline if first == treated else treated]
        with ExitStack() as servers:
            urls = {
                name: servers.enter_context(
                    running_bento(settings, tag, log_path=logs / f"{name}.log", extra_env=variants[name])
                )
                for name in order
            }
            options = {"clients": args.clients, "max_requests": args.max_requests}
            for name, url in urls.items():  # BentoML's batcher first calibrates on single requests
                load(url, bodies, seconds=args.warmup_seconds, keys_file=files[name], **options)
            rounds: dict[str, list[dict]] = {name: [] for name in urls}
            for number in range(args.rounds):
                for name in order if number % 2 == 0 else order[::-1]:
                    result = load(urls[name], bodies, seconds=args.seconds, keys_file=files[name], **options)
                    rounds[name].append(result)
                    print(f"{first} first, round {number + 1} {name:9s} {json.dumps(result)}", flush=True)
            peak_rss_mb[f"{first}_started_first"] = {name: _peak_rss_mb(url) for name, url in urls.items()}
        orders[f"{first}_started_first"] = {
            "throughput_ratios": per_round_ratios(rounds[treated], rounds[baseline]),
            "cpu_ratios": cpu_ratios(rounds[treated], rounds[baseline]),
            "median": {
                name: {k: median_of(rs, k) for k in ("requests_per_s", "p99_ms")} for name, rs in rounds.items()
            },
            "errors": {name: [r["errors"] for r in rs] for name, rs in rounds.items()},
            "rounds": rounds,
        }
    medians = [statistics.median(o["throughput_ratios"]) for o in orders.values()]
    ratio = f"{treated}_over_{baseline}"
    return {
        ratio: round((medians[0] * medians[1]) ** 0.5, 3),
        "by_order": {label: round(m, 3) for label, m in zip(orders, medians, strict=True)},
        f"{ratio}_by_cpu": round(statistics.median([r for o in orders.values() for r in o["cpu_ratios"]]), 3),
        "peak_rss_mb": peak_rss_mb,
        "orders": orders,
    }


def pair_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options compare_two reads: rounds per start order, their length, clients, a request bound."""
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    return parser


def brief(result: dict) -> dict:
    """The result without its rounds, with each order's medians."""
    return {k: v for k, v in result.items() if k != "orders"} | {
        label: order["median"] for label, order in result["orders"].items()
    }
