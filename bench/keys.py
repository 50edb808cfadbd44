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
import time
from pathlib import Path

from bench.pair import brief, compare_two, pair_arguments
from bench.serve import bento_of_this_checkout, load, single_item_bodies
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
    parser = pair_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
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
        keyed_file = key_file(keys, made, stamp, logs, 1, 10**6, 10**9)
        variants = {"keyed": KEYED, "keyless": KEYLESS}
        cost = compare_two(settings, tag, logs, bodies, args, variants=variants, keys_files={"keyed": keyed_file})
        rate_file = key_file(keys, made, f"{stamp}-rate", logs, RATE_KEYS, args.rate, None)
        rates = {f"{w}_workers": rate_accuracy(settings, tag, logs, bodies, rate_file, w, args) for w in (1, 2)}
    finally:
        for name in made:
            keys.revoke(name)
    result = {"config": vars(args), "goals": GOALS, "cost": cost, "rate": rates}
    result["met"] = {
        "keyed_over_keyless": cost["keyed_over_keyless"] >= GOALS["keyed_over_keyless"],
        "rate_within": all(r["worst_deviation"] <= GOALS["rate_within"] for r in rates.values()),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "config"} | {"cost": brief(cost)}, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "keys.json").write_text(json.dumps(result, indent=2) + "\n")


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


def key_file(keys: KeyStore, made: list[str], stamp: str, logs: Path, count: int, rate, quota) -> Path:
    """`count` new keys at `rate`/s and `quota`/day, one per line in a file for bench/load.py."""
    plaintexts = []
    for n in range(count):
        name = f"bench-{stamp}-{n}"
        plaintexts.append(keys.create(name, rate_per_s=rate, daily_quota=quota)[1])
        made.append(name)
    path = logs / f"keys-{stamp}.txt"
    path.write_text("\n".join(plaintexts) + "\n")
    return path


if __name__ == "__main__":
    main()
