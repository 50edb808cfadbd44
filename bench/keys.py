"""API keys at the gateway, measured: what checking them costs, and how close 429s hold each key to its rate.

    make run && .venv/bin/python -m bench.keys [--rounds 4] [--seconds 15] [--rate 20] [--rate-seconds 30]

(1) Cost. The Production Bento as `make serve` serves it locally (no keys) against the same Bento
asking every request for a key (DEMANDOPS_SERVING__REQUIRE_KEYS=true), counted in Redis as in the
production profile: a rate and a daily quota the load never reaches, so two Redis round trips per
request. 64 clients each, one random series per request (bench/serve.py's load), the two servers
alone on the machine, started in one order and then afresh in the other, `--rounds` alternating
rounds per order. Keyed over keyless requests per second: the geometric mean of the two orders'
median ratios (two identical servers differ by up to 20% with their start order, bench/serve.py),
and by the servers' CPU per request. Goal: at least 0.95.
(2) Rate. 8 keys at `--rate` requests per second each, 8 clients per key (64 in all) sending as
fast as answers come, for `--rate-seconds`, on one worker and on two (both counting in one Redis):
each key's answered requests per second against its rate, and its 429s. Goal: within 5%.
Keys are made in this checkout's key table as bench-<time>-<n> and revoked at the end. Results in
bench/results/keys.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import ExitStack
from pathlib import Path

from bench.serve import (
    _peak_rss_mb,
    bento_of_this_checkout,
    cpu_ratios,
    load,
    median_of,
    per_round_ratios,
    single_item_bodies,
)
from demandops.settings import get_settings
from serving.api_keys import KeyStore
from serving.server import running_bento

RESULTS = Path(__file__).parent / "results"
GOALS = {"keyed_over_keyless": 0.95, "rate_within": 0.05}
REDIS_COUNTS = "async+redis://127.0.0.1:6379/9"  # the tests use databases 10-15
KEYED = {"DEMANDOPS_SERVING__REQUIRE_KEYS": "true", "DEMANDOPS_SERVING__RATE_LIMIT_STORAGE": REDIS_COUNTS}
KEYLESS = {"DEMANDOPS_SERVING__REQUIRE_KEYS": "false"}
RATE_KEYS = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=int, default=20, help="requests per second of each of the 8 keys")
    parser.add_argument("--rate-seconds", type=float, default=30.0)
    args = parser.parse_args()
    settings = get_settings()
    logs = settings.state / "bench"
    tag = bento_of_this_checkout(settings, logs / "bundle")
    bodies = single_item_bodies(settings, logs)
    keys, stamp = KeyStore(settings.mlflow_database_url), time.strftime("%Y%m%dT%H%M%S")
    made: list[str] = []
    try:
        cost = key_cost(settings, tag, logs, bodies, _key_file(keys, made, stamp, logs, 1, 10**6, 10**9), args)
        rate_file = _key_file(keys, made, f"{stamp}-rate", logs, RATE_KEYS, args.rate, None)
        rates = {f"{w}_workers": rate_accuracy(settings, tag, logs, bodies, rate_file, w, args) for w in (1, 2)}
    finally:
        for name in made:
            keys.revoke(name)
    result = {"config": vars(args), "goals": GOALS, "cost": cost, "rate": rates}
    result["met"] = {
        "keyed_over_keyless": cost["keyed_over_keyless"] >= GOALS["keyed_over_keyless"],
        "rate_within": all(r["worst_deviation"] <= GOALS["rate_within"] for r in rates.values()),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "config"} | {"cost": _brief(cost)}, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "keys.json").write_text(json.dumps(result, indent=2) + "\n")


def key_cost(settings, tag: str, logs: Path, bodies: Path, keys_file: Path, args) -> dict:
    orders, peak_rss_mb = {}, {}
    for first in ("keyed", "keyless"):
        starts = {
            "keyed": lambda: running_bento(settings, tag, log_path=logs / "keyed.log", extra_env=KEYED),
            "keyless": lambda: running_bento(settings, tag, log_path=logs / "keyless.log", extra_env=KEYLESS),
        }
        order = [first, *(name for name in starts if name != first)]
        with ExitStack() as servers:
            urls = {name: servers.enter_context(starts[name]()) for name in order}
            options = {"clients": args.clients, "max_requests": args.max_requests}
            files = {"keyed": keys_file, "keyless": None}
            for name, url in urls.items():  # BentoML's batcher first calibrates on single requests
                load(url, bodies, seconds=args.warmup_seconds, keys_file=files[name], **options)
            rounds: dict[str, list[dict]] = {name: [] for name in urls}
            for number in range(args.rounds):
                for name in order if number % 2 == 0 else order[::-1]:
                    result = load(urls[name], bodies, seconds=args.seconds, keys_file=files[name], **options)
                    rounds[name].append(result)
                    print(f"{first} first, round {number + 1} {name:8s} {json.dumps(result)}", flush=True)
            peak_rss_mb[f"{first}_started_first"] = {name: _peak_rss_mb(url) for name, url in urls.items()}
        orders[f"{first}_started_first"] = {
            "throughput_ratios": per_round_ratios(rounds["keyed"], rounds["keyless"]),
            "cpu_ratios": cpu_ratios(rounds["keyed"], rounds["keyless"]),
            "median": {
                name: {k: median_of(rs, k) for k in ("requests_per_s", "p99_ms")} for name, rs in rounds.items()
            },
            "errors": {name: [r["errors"] for r in rs] for name, rs in rounds.items()},
            "rounds": rounds,
        }
    medians = [statistics.median(o["throughput_ratios"]) for o in orders.values()]
    return {
        "keyed_over_keyless": round((medians[0] * medians[1]) ** 0.5, 3),
        "by_order": {label: round(m, 3) for label, m in zip(orders, medians, strict=True)},
        "keyed_over_keyless_by_cpu": round(statistics.median([r for o in orders.values() for r in o["cpu_ratios"]]), 3),
        "peak_rss_mb": peak_rss_mb,
        "orders": orders,
    }


def rate_accuracy(settings, tag: str, logs: Path, bodies: Path, keys_file: Path, workers: int, args) -> dict:
    env = {**KEYED, "DEMANDOPS_SERVING__WORKERS": str(workers)}
    with running_bento(settings, tag, log_path=logs / f"rate-{workers}.log", extra_env=env) as url:
        run = load(
            url, bodies, clients=args.clients, seconds=args.rate_seconds, max_requests=10**7, keys_file=keys_file
        )
    answered = [key["answered_per_s"] for key in run["by_key"]]
    deviations = [abs(rate / args.rate - 1) for rate in answered]
    entry = {
        "rate_per_key": args.rate,
        "answered_per_s_by_key": answered,
        "refused_429_by_key": [key["statuses"].get("429", 0) for key in run["by_key"]],
        "worst_deviation": round(max(deviations), 4),
        "other_statuses": {c: n for c, n in run["errors"].items() if c != "429"},
        "requests_per_s": run["requests_per_s"],
        "seconds": run["seconds"],
    }
    print(f"rate, {workers} worker(s): {json.dumps(entry)}", flush=True)
    return entry


def _key_file(keys: KeyStore, made: list[str], stamp: str, logs: Path, count: int, rate, quota) -> Path:
    """`count` new keys at `rate`/s and `quota`/day, one per line in a file for bench/load.py."""
    plaintexts = []
    for n in range(count):
        name = f"bench-{stamp}-{n}"
        plaintexts.append(keys.create(name, rate_per_s=rate, daily_quota=quota)[1])
        made.append(name)
    path = logs / f"keys-{stamp}.txt"
    path.write_text("\n".join(plaintexts) + "\n")
    return path


def _brief(cost: dict) -> dict:
    return {k: v for k, v in cost.items() if k != "orders"} | {
        label: order["median"] for label, order in cost["orders"].items()
    }


if __name__ == "__main__":
    main()
