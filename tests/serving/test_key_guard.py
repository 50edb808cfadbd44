"""Keys at the gateway (serving/key_guard.py in serving/gateway.py): 401, 403 and 429 in the one error
shape before a request is read, each key's usage in the metrics, counts shared through a real Redis, and
what happens when the key table or the counts' storage cannot be reached."""

from __future__ import annotations

import asyncio
from pathlib import Path

import prometheus_client
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from demandops.settings import ServingSettings
from serving.api_keys import KeyStore
from serving.errors import RequestRefused
from serving.gateway import ForecastGateway
from serving.key_guard import KeyGuard
from serving.routes import FORECAST, METADATA
from tests.conftest import RedisDatabase, wait_until
from tests.serving.test_gateway import refused

BODY = {"items": [{"store_id": "S000", "sku_id": "P0001", "horizon": 2}]}
REACHED: list[str] = []  # paths the app behind the gateway answered


async def _answer(request) -> JSONResponse:
    REACHED.append(request.url.path)
    return JSONResponse([{"store_id": "S000"}] if request.url.path == FORECAST else {"model_version": "1"})


async def _ready(request) -> JSONResponse:
    return JSONResponse({})


APP = Starlette(
    routes=[
        Route(FORECAST, _answer, methods=["POST"]),
        Route(METADATA, _answer, methods=["POST"]),
        Route("/readyz", _ready),
    ]
)


def key_count(key: str, outcome: str) -> float:
    """The metric as /metrics shows it, once the guards have published what they counted (once a second)."""
    for guard in GUARDS:
        guard.publish()
    sample = {"key": key, "outcome": outcome}
    return prometheus_client.REGISTRY.get_sample_value("demandops_api_key_requests_total", sample) or 0.0


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(f"sqlite:///{tmp_path / 'keys.db'}")


GUARDS: list[KeyGuard] = []  # of the clients made, to publish their counts to the metrics


def client_of(store: KeyStore, *, storage: str = "async+memory://", refresh_s: float = 0.05) -> TestClient:
    guard = KeyGuard(lambda: store, storage, refresh_s=refresh_s)
    GUARDS.append(guard)
    gateway = ForecastGateway(APP, limits=ServingSettings(), admission=lambda: lambda request: None, keys=guard)
    return TestClient(gateway)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_no_request_without_a_valid_key_reaches_the_app(store: KeyStore) -> None:
    _, key = store.create("planner")
    REACHED.clear()
    with client_of(store) as client:
        before = key_count("-", "unauthenticated")
        for headers, wrong in [
            ({}, "an API key is required"),
            ({"Authorization": f"Basic {key}"}, "must be `Bearer KEY`"),
            ({"Authorization": "Bearer"}, "must be `Bearer KEY`"),
            (bearer(key + "x"), "not known"),
        ]:
            error = refused(client.post(FORECAST, json=BODY, headers=headers), 401, "unauthenticated")
            assert wrong in error["message"]
        missing = client.post(METADATA, json={})
        assert missing.headers["www-authenticate"] == 'Bearer realm="demandops"'
        refused(missing, 401, "unauthenticated")
        refused(client.post("/metadata", json={}), 401, "unauthenticated")  # the alias too
        refused(
            client.post(FORECAST, content=b"{", headers={"content-type": "application/json"}), 401, "unauthenticated"
        )
        assert REACHED == [], "refused before the body is read or anything is batched"
        assert key_count("-", "unauthenticated") == before + 7
        assert client.get("/readyz").status_code == 200, "probes take no key"
        admitted = key_count("planner", "admitted")
        reply = client.post(FORECAST, json=BODY, headers=bearer(key))
        assert reply.status_code == 200 and reply.json() == [{"store_id": "S000"}]
        assert key_count("planner", "admitted") == admitted + 1 and REACHED == [FORECAST]


def test_a_revoked_key_gets_403_once_the_table_is_reread(store: KeyStore) -> None:
    _, key = store.create("leaver")
    with client_of(store, refresh_s=0.05) as client:
        assert client.post(FORECAST, json=BODY, headers=bearer(key)).status_code == 200
        store.revoke("leaver")
        wait_until(lambda: client.post(FORECAST, json=BODY, headers=bearer(key)).status_code == 403, "403 after revoke")
        error = refused(client.post(FORECAST, json=BODY, headers=bearer(key)), 403, "forbidden")
        assert "'leaver' was revoked at" in error["message"]
        _, fresh = store.create("newcomer")
        wait_until(lambda: client.post(FORECAST, json=BODY, headers=bearer(fresh)).status_code == 200, "a new key")


def test_over_the_rate_and_over_the_quota_get_429_with_retry_after(store: KeyStore) -> None:
    _, fast = store.create("fast", rate_per_s=3)
    _, metered = store.create("metered", daily_quota=2)
    with client_of(store) as client:
        statuses = [client.post(FORECAST, json=BODY, headers=bearer(fast)) for _ in range(12)]
        served = sum(reply.status_code == 200 for reply in statuses)
        limited = [reply for reply in statuses if reply.status_code == 429]
        assert served <= 6 and len(limited) >= 6, "at most two one-second windows of 3 in a burst of 12"
        error = refused(limited[0], 429, "rate_limited")
        assert "over its limit of 3 requests per second" in error["message"]
        assert limited[0].headers["retry-after"] == "1"
        assert [client.post(METADATA, json={}, headers=bearer(metered)).status_code for _ in range(2)] == [200, 200]
        over = client.post(FORECAST, json=BODY, headers=bearer(metered))
        assert "2 requests per day" in refused(over, 429, "quota_exceeded")["message"]
        assert 86_000 < int(over.headers["retry-after"]) <= 86_400
        assert key_count("metered", "quota_exceeded") >= 1 and key_count("fast", "rate_limited") >= 6


def test_workers_sharing_a_redis_count_against_one_quota(store: KeyStore, redis_db: RedisDatabase) -> None:
    """Two guards, as two workers or replicas of the service, on one Redis: a quota of 7 admits 7 in all."""
    _, key = store.create("shared", daily_quota=7)
    host, db = redis_db.url.split(",db=")
    guards = [KeyGuard(lambda: store, f"async+redis://{host}/{db}", refresh_s=60) for _ in range(2)]

    async def alternate() -> list[str]:
        outcomes = []
        for n in range(12):
            try:
                outcomes.append(await guards[n % 2].admit({b"authorization": f"Bearer {key}".encode()}))
            except RequestRefused as refusal:
                outcomes.append(refusal.code)
        return outcomes

    outcomes = asyncio.run(alternate())
    assert outcomes == ["shared"] * 7 + ["quota_exceeded"] * 5, outcomes
    assert any(b"demandops-key" in name for name in redis_db.client.scan_iter()), "the count lives in Redis"


def test_a_dead_counts_storage_serves_valid_keys_uncounted_and_an_unreadable_table_answers_503(
    store: KeyStore, tmp_path: Path
) -> None:
    _, key = store.create("planner", rate_per_s=1)
    # Nothing listens on port 9 of loopback: every count fails at once.
    with client_of(store, storage="async+redis://127.0.0.1:9/0") as client:
        before = key_count("planner", "uncounted")
        assert [client.post(FORECAST, json=BODY, headers=bearer(key)).status_code for _ in range(3)] == [200] * 3
        assert key_count("planner", "uncounted") == before + 3
        refused(client.post(FORECAST, json=BODY, headers=bearer(key + "x")), 401, "unauthenticated")
    unreadable = KeyGuard(
        lambda: KeyStore(f"sqlite:///{tmp_path / 'no' / 'such' / 'keys.db'}"), "async+memory://", refresh_s=60
    )
    gateway = ForecastGateway(APP, limits=ServingSettings(), admission=lambda: lambda request: None, keys=unreadable)
    with TestClient(gateway) as client:
        error = refused(client.post(FORECAST, json=BODY, headers=bearer(key)), 503, "not_ready")
        assert "key table cannot be read" in error["message"]
