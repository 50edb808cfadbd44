"""Mixed request sizes: do large requests make the service shed a small-request load it can carry?

    make run && .venv/bin/python -m bench.mixed_load [--seconds 15] [--large 210]

Issue 19 found that after 210 sequential requests of 256 items, 64 concurrent single-item clients
got 22% `503 overloaded` answers, and none without the large requests first. BentoML's adaptive
batcher sheds a queued request when its wait plus the predicted batch time reaches
`max_latency_ms`; it predicts that time as a·(requests queued) + b, fitted on the batches it ran,
per request and not per item. Batches of one large request each all have n = 1, and a least-squares
fit on a single n splits their time evenly between a and b: one request "costs" half a 256-item
batch, and 64 queued single-item requests look like seconds of work.

Each variant is a fresh server of the Production Bento (built from this checkout), prediction log
off, measured in three phases: (1) 64 single-item clients alone; (2) `--large` sequential
256-item requests, then the same 64 clients; (3) the 64 clients while one client sends
1,000-item requests back to back. Variants: `max_latency_ms` 1,000 (the setting before this
change) and the default now (the request deadline, where the gateway refuses by itself). Records
503s by refusal code, requests/s and p99, and the bulk client's items/s, in
bench/results/mixed_load.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from bench.serve import UNLOGGED, _series, bento_of_this_checkout, bulk, request_bodies
from demandops.settings import ServingSettings, get_settings
from serving.server import running_bento

RESULTS = Path(__file__).parent / "results"
VARIANTS = {"max_latency_ms=1000 (before)": 1000, "default": ServingSettings().max_latency_ms}


def clients(url: str, bodies_file: Path, *, seconds: float) -> dict:
    """bench/load.py's 64 closed-loop clients, in their own process; statuses and latency."""
    command = [
        sys.executable, "-m", "bench.load", f"{url}/v1/forecast", "--bodies", str(bodies_file),
        "--clients", "64", "--seconds", str(seconds), "--max-requests", "100000",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def refusals(url: str) -> dict[str, float]:
    """demandops_forecast_refusals_total by code, from /metrics."""
    counts: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("demandops_forecast_refusals_total{"):
            code = line.split('code="', 1)[1].split('"', 1)[0]
            counts[code] = counts.get(code, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def send_thousands(url: str, body: bytes, stop: threading.Event, result: dict) -> None:
    """One client sending 1,000-item requests back to back until `stop`; items/s and errors into `result`."""
    items, errors, started = 0, 0, time.perf_counter()
    with httpx.Client(timeout=120) as client:
        while not stop.is_set():
            reply = client.post(f"{url}/v1/forecast", content=body, headers={"content-type": "application/json"})
            items, errors = items + 1000 * (reply.status_code == 200), errors + (reply.status_code != 200)
    result.update(items_per_s=round(items / (time.perf_counter() - started), 1), errors=errors)


def measure(settings, tag: str, max_latency_ms: int, files: dict[str, Path], args) -> dict:
    """The three phases, each on a fresh server with this max_latency_ms."""
    env = {**UNLOGGED, "DEMANDOPS_SERVING__MAX_LATENCY_MS": str(max_latency_ms)}
    large, thousand = (files[k].read_bytes().splitlines()[0] for k in ("large", "thousand"))
    out: dict[str, dict] = {}
    for phase in ("alone", "after_large", "during_bulk"):
        log = settings.state / "bench" / f"mixed-{max_latency_ms}-{phase}.log"
        with running_bento(settings, tag, log_path=log, extra_env=env) as url:
            if phase == "after_large":
                out["large_requests"] = bulk(url, large, repeats=args.large, items=256)
            stop, bulk_result = threading.Event(), {}
            sender = threading.Thread(target=send_thousands, args=(url, thousand, stop, bulk_result))
            if phase == "during_bulk":
                sender.start()
            load = clients(url, files["single"], seconds=args.seconds)
            if phase == "during_bulk":
                stop.set()
                sender.join()
                load["bulk_1000_items"] = bulk_result
            load["refusals"] = refusals(url)
            out[phase] = load
            print(max_latency_ms, phase, json.dumps(load), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--large", type=int, default=210, help="Sequential 256-item requests before the clients.")
    args = parser.parse_args()
    settings = get_settings()
    scratch = settings.state / "bench"
    tag = bento_of_this_checkout(settings, scratch / "bundle")
    stores, skus = _series(settings)
    files = {}
    for name, count, items in (("single", 4000, 1), ("large", 1, 256), ("thousand", 1, 1000)):
        files[name] = scratch / f"mixed-{name}.jsonl"
        files[name].write_bytes(b"\n".join(request_bodies(stores, skus, 14, count, items=items)) + b"\n")
    result = {"machine": platform.platform(), "clients": 64, "seconds": args.seconds, "variants": {}}
    for name, max_latency_ms in VARIANTS.items():
        measured = measure(settings, tag, max_latency_ms, files, args)
        result["variants"][name] = {"max_latency_ms": max_latency_ms, **measured}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mixed_load.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
