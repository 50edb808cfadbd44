"""The production profile end to end: the chain on PostgreSQL and Redis; the served Bento asking for API
keys; then a Redis of the test's own killed under load, restarted empty and refilled, with every answer
judged against a complete store."""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd
import psycopg2
import pytest

from demandops.settings import ProductionServices, ServingSettings, Settings
from pipelines.resources import DemandopsResource
from pipelines.run import run_chain
from serving.server import running_bento
from tests.conftest import RedisServer
from tests.production.key_checks import assert_keys_guard_the_api
from tests.production.outage import Recorder, kill_restart_empty_and_refill, summarize
from training.tracking import download_bundle

pytestmark = [pytest.mark.production, pytest.mark.slow]
CLIENTS = 16
OUTAGE_S = 4.0
# Fresh again by itself after Redis comes back empty: the sensor's refill, under 16 clients, beside
# another test on 2 cores. A bound that says "recovers", not a benchmark (bench/outage.py times it):
# 60 s failed at 81 s on a machine running at half its usual speed all day (2026-12-02).
FRESH_WITHIN_S = 180.0
SLOWEST_ANSWER_S = 2.0


@pytest.mark.timeout(1200)  # 395 s in the suite on 2 cores on a slow day (2026-12-02)
def test_the_chain_runs_on_postgresql_and_redis_and_rides_out_a_redis_outage(
    tmp_path: Path, database: str, own_redis: RedisServer
) -> None:
    settings = Settings(
        profile="production",
        project_dir=tmp_path / "project",
        preset="small",
        production=ProductionServices(postgres_url=database, redis_url=own_redis.url),
        # Set in code: it must reach the served Bento (its /metadata shows the limits in force).
        serving=ServingSettings(breaker_cooldown_s=1.0, keys_refresh_s=0.5),
    )
    first = run_chain(settings)
    assert first.production_version == first.model_version
    _assert_mlflow_and_dagster_keep_their_own_schemas(database, first.run_id)

    with running_bento(settings, first.bento_tag, log_path=tmp_path / "serve.log") as url:
        key = assert_keys_guard_the_api(settings, url, first.example_item)
        metadata = httpx.post(f"{url}/v1/metadata", json={}, headers=key).json()
        assert metadata["limits"]["breaker_cooldown_s"] == 1.0 and metadata["lifecycle_state"] == "Production"
        champion_run = DemandopsResource.from_settings(settings).registry().get(first.model_version).run_id
        pairs = _served_series(settings, champion_run, tmp_path / "bundle")
        assert len(pairs) >= 10, pairs
        reference = {(r["store_id"], r["sku_id"]): r for r in _forecast(url, pairs, key)}
        assert not any(r["degraded"] for r in reference.values())

        # The load's key is counted in the Redis that is killed: requests go on, uncounted.
        load = Recorder(url, pairs, clients=CLIENTS, headers=key)
        load.start()
        try:
            timeline = kill_restart_empty_and_refill(settings, own_redis, load, outage_s=OUTAGE_S)
        finally:
            load.stop()

    seen = summarize(load, reference, timeline)
    assert seen["statuses"] == {"200": seen["requests"]}, f"every request answered, none refused: {seen['statuses']}"
    assert seen["slowest_s"] < SLOWEST_ANSWER_S, seen
    assert not seen["differing"], f"answers that differ from the complete store's: {seen['differing'][:5]}"
    assert seen["outage_items"] > 0 and seen["outage_items_fresh"] == 0, "kill to refill: all marked"
    assert seen["degraded_after_refill"] == 0, seen
    assert seen["fresh_after_restart_s"] < FRESH_WITHIN_S, seen
    _assert_readiness_was_truthful(load.readiness, timeline)
    print(f"\noutage with {CLIENTS} clients: {seen}")


def _assert_readiness_was_truthful(readiness: list[tuple[float, float, int]], timeline: dict[str, float]) -> None:
    """Ready until the kill; not ready from just after it until the refill began (nothing fresh to serve);
    ready at the end."""
    before = [status for _, answered, status in readiness if answered < timeline["killed"]]
    down = [status for asked, answered, status in readiness if timeline["killed"] + 1 < asked < timeline["refill"]]
    assert before and set(before) == {200}, before
    assert down and set(down) == {503}, f"/readyz during the outage and on the empty store: {down}"
    assert readiness[-1][2] == 200


def _served_series(settings: Settings, run_id: str, scratch: Path) -> list[tuple[str, str]]:
    """Series of the newest feature period that the model knows: what the online store serves."""
    meta = download_bundle(settings.mlflow_tracking_uri, run_id, scratch).meta
    newest = sorted((settings.feast_dir / "sales_features").glob("*.parquet"))[-1]
    held = pd.read_parquet(newest, columns=["store_id", "sku_id"]).itertuples(index=False, name=None)
    known = set(meta.stores), set(meta.skus)
    return [(s, k) for s, k in held if s in known[0] and k in known[1]]


def _forecast(url: str, pairs: list[tuple[str, str]], key: dict[str, str]) -> list[dict]:
    items = [{"store_id": s, "sku_id": k, "horizon": 3} for s, k in pairs]
    reply = httpx.post(f"{url}/v1/forecast", json={"items": items}, headers=key, timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _assert_mlflow_and_dagster_keep_their_own_schemas(database: str, run_id: str) -> None:
    with psycopg2.connect(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_schema, count(*) FROM information_schema.tables GROUP BY 1")
        schemas = dict(cur.fetchall())
        assert schemas.get("public", 0) == 0 and schemas["mlflow"] > 10 and schemas["dagster"] > 10, schemas
        cur.execute("SELECT status FROM dagster.runs WHERE run_id = %s", (run_id,))
        assert cur.fetchone() == ("SUCCESS",), "the run is recorded in Dagster's PostgreSQL storage"
        cur.execute("SELECT name FROM mlflow.registered_models")
        assert cur.fetchall() == [("demand_forecaster",)]
        cur.execute("SELECT to_state FROM mlflow.demandops_lifecycle_audit ORDER BY id DESC LIMIT 1")
        assert cur.fetchone() == ("Production",)
