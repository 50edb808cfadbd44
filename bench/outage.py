"""A Redis outage under load, on the production profile: what clients see while Redis is killed,
restarted empty and refilled, at several client counts.

    .venv/bin/python -m bench.outage [--preset default] [--clients 16 64] [--outage-seconds 5]

Runs the chain on a fresh PostgreSQL database and a Redis of its own (both removed afterwards),
serves the Production Bento, then for each client count: closed-loop clients, Redis SIGKILLed,
restarted empty, `demandops features refill`. Every answer is judged against the answers of the
complete store. Writes bench/results/outage.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import uuid
from pathlib import Path

import httpx
import psycopg2

from demandops.settings import ProductionServices, Settings
from pipelines.resources import DemandopsResource
from pipelines.run import run_chain
from serving.server import running_bento
from tests.conftest import POSTGRES_ADMIN_DSN, RedisServer
from tests.production.outage import Recorder, kill_restart_empty_and_refill, summarize
from training.tracking import download_bundle

RESULT = Path(__file__).parent / "results" / "outage.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--outage-seconds", type=float, default=5.0)
    args = parser.parse_args()

    name = f"demandops_bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="demandops-outage-") as scratch:
        redis = RedisServer(Path(scratch))
        redis.start()
        try:
            rounds = _measure(Path(scratch), f"postgresql://postgres@127.0.0.1:5432/{name}", redis, args)
        finally:
            redis.kill()
            _drop(name)
    usage = {
        "peak_rss_mb_this_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "peak_rss_mb_largest_child": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024,
    }
    result = {"preset": args.preset, "outage_seconds": args.outage_seconds, "rounds": rounds, **usage}
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    for r in rounds:
        print(
            f"{r['clients']:>3} clients: {r['requests']} requests {r['statuses']}, p99 {r['p99_s']} s, slowest "
            f"{r['slowest_s']} s, {len(r['differing'])} answers differing from the complete store, "
            f"{r['outage_items_fresh']} of {r['outage_items']} outage answers unmarked, fresh again "
            f"{r['fresh_after_restart_s']} s after the empty restart (refill {r['refill_s']} s)"
        )
    print(json.dumps(usage))


def _measure(scratch: Path, database: str, redis: RedisServer, args: argparse.Namespace) -> list[dict]:
    settings = Settings(
        profile="production",
        project_dir=scratch / "project",
        preset=args.preset,
        production=ProductionServices(postgres_url=database, redis_url=redis.url),
    )
    summary = run_chain(settings)
    run_id = DemandopsResource.from_settings(settings).registry().get(summary.model_version).run_id
    meta = download_bundle(settings.mlflow_tracking_uri, run_id, scratch / "bundle").meta
    rounds = []
    # What is measured is the online store's outage; API keys (on in production) are measured elsewhere.
    keyless = {"DEMANDOPS_SERVING__REQUIRE_KEYS": "false"}
    with running_bento(settings, summary.bento_tag, log_path=scratch / "serve.log", extra_env=keyless) as url:
        pairs = _held_series(url, [(s, k) for s in meta.stores for k in meta.skus])
        reference = {(r["store_id"], r["sku_id"]): r for r in _forecast(url, pairs)}
        for clients in args.clients:
            load = Recorder(url, pairs, clients=clients)
            load.start()
            try:
                timeline = kill_restart_empty_and_refill(settings, redis, load, outage_s=args.outage_seconds)
            finally:
                load.stop()
            rounds.append({"clients": clients, "series": len(pairs), **summarize(load, reference, timeline)})
    return rounds


def _held_series(url: str, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The model's series the online store serves (the others are refused, one at a time)."""
    held = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for store_id, sku_id in pairs:
            reply = client.post(
                "/v1/forecast", json={"items": [{"store_id": store_id, "sku_id": sku_id, "horizon": 1}]}
            )
            if reply.status_code == 200:
                held.append((store_id, sku_id))
    return held


def _forecast(url: str, pairs: list[tuple[str, str]]) -> list[dict]:
    items = [{"store_id": s, "sku_id": k, "horizon": 3} for s, k in pairs]
    reply = httpx.post(f"{url}/v1/forecast", json={"items": items}, timeout=120)
    reply.raise_for_status()
    return reply.json()


def _drop(name: str) -> None:
    admin = psycopg2.connect(POSTGRES_ADMIN_DSN)
    admin.autocommit = True
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


if __name__ == "__main__":
    main()
