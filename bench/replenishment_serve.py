"""POST /replenishment against POST /forecast on one served Bento, 64 concurrent clients each.

    make run && .venv/bin/python -m bench.replenishment_serve [--rounds 3] [--seconds 15]

A Bento of the Production model is built from this checkout's code and served as shipped (adaptive
batching on, the prediction log on). In alternating rounds, bench/load.py (its own process, closed
loop, one random series per request) drives /forecast with a full horizon and /replenishment with
a lead time of H/2, a position and the default review period and service level: requests per
second, p50/p99 latency and errors, and the server's CPU per request. The goal: /replenishment
answers at least 0.9 x /forecast's requests per second. The median of the rounds' ratios is
printed and written to bench/results/replenishment_serve.json with the servers' peak RSS.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from bench.serve import _cpu_seconds, _peak_rss_mb, _series, _server_processes, bento_of_this_checkout
from demandops.settings import get_settings
from serving.server import running_bento

RESULTS = Path(__file__).parent / "results"
GOAL = 0.9


def bodies(stores: list[str], skus: list[str], horizon: int, route: str, count: int = 5000) -> list[bytes]:
    rng = random.Random(0)
    out = []
    for _ in range(count):
        item = {"store_id": rng.choice(stores), "sku_id": rng.choice(skus)}
        if route == "forecast":
            item["horizon"] = horizon
        else:
            item |= {"lead_time": max(1, horizon // 2), "on_hand": rng.randrange(0, 50)}
        out.append(json.dumps({"items": [item]}).encode())
    return out


def load(url: str, route: str, bodies_file: Path, *, clients: int, seconds: float) -> dict:
    command = [
        sys.executable, "-m", "bench.load", f"{url}/{route}", "--bodies", str(bodies_file),
        "--clients", str(clients), "--seconds", str(seconds), "--max-requests", "200000",
    ]  # fmt: skip
    server = _server_processes(url)
    before = _cpu_seconds(server)
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["server_cpu_ms_per_request"] = round(1000 * (_cpu_seconds(server) - before) / max(result["requests"], 1), 3)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=64)
    args = parser.parse_args(argv)
    settings = get_settings()
    stores, skus = _series(settings)
    rounds: dict[str, list[dict]] = {"forecast": [], "replenishment": []}
    with tempfile.TemporaryDirectory(prefix="demandops-bench-") as scratch:
        tag = bento_of_this_checkout(settings, Path(scratch))
        with running_bento(settings, tag, log_path=Path(scratch) / "serve.log") as url:
            horizon = httpx.post(f"{url}/v1/metadata", json={}).json()["horizon"]
            files = {route: Path(scratch) / f"{route}.jsonl" for route in rounds}
            for route, path in files.items():
                path.write_bytes(b"\n".join(bodies(stores, skus, horizon, route)))
            load(url, "forecast", files["forecast"], clients=args.clients, seconds=3)  # warm-up
            for n in range(args.rounds):
                order = list(rounds) if n % 2 == 0 else list(rounds)[::-1]
                for route in order:
                    rounds[route].append(load(url, route, files[route], clients=args.clients, seconds=args.seconds))
                    print(route, rounds[route][-1], flush=True)
            peak = _peak_rss_mb(url)
    pairs = zip(rounds["replenishment"], rounds["forecast"], strict=True)
    ratios = [planned["requests_per_s"] / forecast["requests_per_s"] for planned, forecast in pairs]
    result = {
        "machine": platform.platform(),
        "clients": args.clients,
        "seconds": args.seconds,
        "rounds": rounds,
        "median_requests_per_s": {k: statistics.median(r["requests_per_s"] for r in v) for k, v in rounds.items()},
        "median_p99_ms": {k: statistics.median(r["p99_ms"] for r in v) for k, v in rounds.items()},
        "replenishment_over_forecast": round(statistics.median(ratios), 3),
        "goal": GOAL,
        "server_peak_rss_mb": peak,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=1))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replenishment_serve.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
