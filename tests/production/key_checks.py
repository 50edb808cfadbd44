"""What the production chain's test asks of API keys, over HTTP against the served Bento: keys made with
the `demandops keys` command (stored in PostgreSQL), counted in Redis, refused with 401, 403 and 429."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from demandops.settings import Settings
from serving.client import ForecastClient, ForecastRequestError
from serving.routes import FORECAST, METADATA
from tests.conftest import wait_until

ERROR_KEYS = {"status", "code", "message", "details"}


def keys_command(settings: Settings, *arguments: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("demandops")), "keys", *arguments]
    return subprocess.run(command, env=settings.child_env(), capture_output=True, text=True, timeout=120)


def create_key(settings: Settings, name: str, *limits: str) -> str:
    done = keys_command(settings, "create", "--name", name, *limits)
    assert done.returncode == 0 and "not shown again" in done.stderr, done.stderr
    return done.stdout.strip()


def _refused(reply: httpx.Response, status: int, code: str) -> dict:
    assert reply.status_code == status, f"expected {status}, got {reply.status_code}: {reply.text[:300]}"
    error = reply.json()["error"]
    assert set(error) == ERROR_KEYS and error["code"] == code, error
    return error


def assert_keys_guard_the_api(settings: Settings, url: str, item: dict) -> dict[str, str]:
    """Each refusal over HTTP; returns the headers of a key the rest of the test may use (counted in
    Redis at a rate it never reaches, so that every request of the load touches the counts)."""
    body = {"items": [item]}
    planner = create_key(settings, "planner", "--rate", "100000/s")
    fast = create_key(settings, "fast", "--rate", "2/s")
    metered = create_key(settings, "metered", "--daily-quota", "2")
    leaver = create_key(settings, "leaver")
    with httpx.Client(base_url=url, timeout=60) as client:
        # The service rereads the table every keys_refresh_s; wait for the new keys to reach it.
        wait_until(lambda: client.post(METADATA, json={}, headers=_bearer(planner)).status_code == 200, "new keys")
        _refused(client.post(FORECAST, json=body), 401, "unauthenticated")
        _refused(client.post(FORECAST, json=body, headers=_bearer(planner + "x")), 401, "unauthenticated")
        assert client.get("/readyz").status_code == 200, "probes take no key"
        assert client.post(FORECAST, json=body, headers=_bearer(leaver)).status_code == 200
        assert keys_command(settings, "revoke", "leaver").returncode == 0
        wait_until(lambda: client.post(METADATA, json={}, headers=_bearer(leaver)).status_code == 403, "revoked")
        _refused(client.post(FORECAST, json=body, headers=_bearer(leaver)), 403, "forbidden")
        started = time.monotonic()
        burst = [client.post(FORECAST, json=body, headers=_bearer(fast)) for _ in range(10)]
        windows = math.ceil(time.monotonic() - started) + 1  # one-second windows the burst touched, at most
        limited = [reply for reply in burst if reply.status_code == 429]
        assert sum(r.status_code == 200 for r in burst) <= 2 * windows, "at most 2 per window"
        assert limited and limited[0].headers["retry-after"].isdigit(), [r.status_code for r in burst]
        _refused(limited[0], 429, "rate_limited")
        assert [client.post(FORECAST, json=body, headers=_bearer(metered)).status_code for _ in range(2)] == [200] * 2
        _refused(client.post(FORECAST, json=body, headers=_bearer(metered)), 429, "quota_exceeded")
        expected = ('key="fast",outcome="rate_limited"', 'key="metered",outcome="quota_exceeded"',
                    'key="leaver",outcome="revoked"', 'key="-",outcome="unauthenticated"')  # fmt: skip
        # The counts reach /metrics within a second (serving/key_guard.py).
        wait_until(lambda: _all_counted(client.get("/metrics").text, expected), "each key's usage in /metrics")
    with ForecastClient(url, api_key=planner) as typed:
        assert typed.forecast([item])[0].store_id == item["store_id"], "the typed client sends its key"
    with ForecastClient(url) as keyless, pytest.raises(ForecastRequestError) as refusal:
        keyless.metadata()
    assert refusal.value.status_code == 401 and refusal.value.code == "unauthenticated"
    return _bearer(planner)


def _all_counted(metrics: str, expected: tuple[str, ...]) -> bool:
    counted = [row for row in metrics.splitlines() if row.startswith("demandops_api_key_requests_total")]
    return all(any(label in row for row in counted) for label in expected)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
