"""Closed-loop HTTP load from its own process: N concurrent clients for a fixed time, bounded count.

    python -m bench.load URL --clients 64 --seconds 15 --max-requests 50000 --bodies FILE.jsonl [--keys FILE]

Each client sends a request, waits for the answer, and sends the next, so the offered load
follows the service's speed and never grows without bound. Prints one JSON line: requests/s,
p50/p99 latency in ms, and errors by HTTP status (a transport failure counts as status 0).
With --keys (API keys, one per line), client n sends `Authorization: Bearer` the key n mod K, and
the line adds each key's statuses and answered (200) requests per second, `by_key`. SIGTERM ends
the run early: each client finishes the request it sent, and the line is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections import Counter
from pathlib import Path

import aiohttp
import numpy as np


async def _client(session, url, bodies, deadline, budget, latencies, statuses, key_statuses, key) -> None:
    headers = {"content-type": "application/json", **({"authorization": f"Bearer {key}"} if key else {})}
    while time.perf_counter() < deadline[0] and budget[0] > 0:
        budget[0] -= 1
        body = bodies[budget[0] % len(bodies)]
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as reply:
                await reply.read()
                status = reply.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        latencies.append(time.perf_counter() - started)
        statuses[status] += 1
        key_statuses[status] += 1


async def run_load(
    url: str, bodies: list[bytes], *, clients: int, seconds: float, max_requests: int, keys: list[str] = ()
) -> dict:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    by_key: list[Counter[int]] = [Counter() for _ in keys or [None]]
    budget = [max_requests]
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        deadline = [started + seconds]  # SIGTERM moves it to now: the clients finish the request they sent
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: deadline.__setitem__(0, 0.0))
        await asyncio.gather(
            *(
                _client(
                    session, url, bodies, deadline, budget, latencies, statuses,
                    by_key[n % len(by_key)], keys[n % len(keys)] if keys else None,
                )
                for n in range(clients)
            )
        )  # fmt: skip
        elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    keyed = {}
    if keys:
        keyed["by_key"] = [
            {"statuses": {str(c): n for c, n in sorted(k.items())}, "answered_per_s": round(k[200] / elapsed, 2)}
            for k in by_key
        ]
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "errors": {str(code): n for code, n in sorted(statuses.items()) if code != 200},
        **keyed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--bodies", type=Path, required=True, help="request bodies, one JSON per line, sent in turn")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--keys", type=Path, help="API keys, one per line, spread over the clients")
    args = parser.parse_args()
    result = asyncio.run(
        run_load(
            args.url,
            args.bodies.read_bytes().splitlines(),
            clients=args.clients,
            seconds=args.seconds,
            max_requests=args.max_requests,
            keys=args.keys.read_text().split() if args.keys else [],
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
