"""What the end-to-end test asks of the served Bento over HTTP, beyond a forecast: refusals,
overload, degraded mode, probes and metrics, one error shape on every route under a schema
fuzzer, and batch scoring through the same code path."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pandas as pd
import pytest
import schemathesis
from schemathesis.engine import StopReason, events, from_schema
from schemathesis.engine.recorder import ScenarioRecorder

from demandops.settings import Settings
from monitoring.prediction_log import log_dir, read_log
from tests.conftest import wait_until

MAX_IN_FLIGHT = 8  # low, so that a burst of requests overloads the test's server
ERROR_KEYS = {"status", "code", "message", "details"}
GOOD = {"store_id": "S000", "sku_id": "P0001", "horizon": 3}
GOOD_PLAN = {"store_id": "S000", "sku_id": "P0001", "lead_time": 3}
JSON_BODY = {"content-type": "application/json"}
# Every operation of the OpenAPI document, in each phase (examples, coverage: undeclared methods and
# content types, boundary values; fuzzing: valid and invalid bodies), a bounded number of cases each:
# under a minute against the served Bento on 2 cores.
FUZZ = {
    "generation": {"mode": "all", "max-examples": 30},
    "phases": {"stateful": {"enabled": False}},  # no links between operations
    "continue-on-failure": True,
    "checks": {
        "enabled": False,
        "not_a_server_error": {"enabled": True},
        "unsupported_method": {"enabled": True},  # 405, with Allow
        "negative_data_rejection": {"enabled": True},  # what breaks the schema is refused (`"horizon": true`)
        "answered_in_one_shape": {"enabled": True},
    },
}


def _refused(reply: httpx.Response, status: int, code: str) -> dict:
    assert reply.status_code == status, f"expected {status}, got {reply.status_code}: {reply.text[:300]}"
    error = reply.json()["error"]
    assert set(error) == ERROR_KEYS and error["status"] == status and error["code"] == code, error
    return error


@schemathesis.check
def answered_in_one_shape(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """Every error answer, of any route and method, in the one shape of serving/errors.py."""
    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        raise AssertionError(f"HTTP {response.status_code} not in the error shape: {response.text[:300]}") from None
    assert isinstance(error, dict) and set(error) == ERROR_KEYS, f"not the error shape: {response.text[:300]}"
    assert error["status"] == response.status_code, f"the shape says {error['status']}, HTTP {response.status_code}"


def assert_every_route_answers_in_one_shape(url: str) -> None:
    """No answer of any route is a 5xx, and every refusal is in the one error shape: the cases the
    issue named, then a schema fuzzer over every operation of the Bento's OpenAPI document."""
    client = httpx.Client(base_url=url, timeout=60)
    for content_type in ("multipart/form-data", "multipart/form-data; boundary=x", "text/plain"):
        not_json = client.post("/v1/metadata", content=b"{}", headers={"content-type": content_type})
        _refused(not_json, 415, "unsupported_media_type")  # BentoML itself answered 500 to multipart
    _refused(client.post("/v1/metadata", files={"file": ("a.json", b"{}")}), 415, "unsupported_media_type")
    assert client.post("/v1/metadata", content=b"{}").status_code == 200, "no Content-Type is JSON"
    not_allowed = client.get("/v1/forecast")
    _refused(not_allowed, 405, "method_not_allowed")
    assert not_allowed.headers["allow"] == "POST"
    _refused(client.get("/no-such-route"), 404, "not_found")
    _refused(client.post("/v1/metadata", content=b"{", headers=JSON_BODY), 400, "malformed_json")
    _refused(client.post("/v1/metadata", content=b"[]", headers=JSON_BODY), 422, "invalid_request")
    boolean = _refused(client.post("/v1/forecast", json={"items": [{**GOOD, "horizon": True}]}), 422, "invalid_request")
    assert [d["field"] for d in boolean["details"]] == ["items[0].horizon"], boolean
    assert_fuzzing_finds_nothing(schemathesis.openapi.from_url(f"{url}/docs.json", config=fuzz_config()))


def fuzz_config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(FUZZ)


def assert_fuzzing_finds_nothing(schema: schemathesis.BaseSchema) -> None:
    """Run schemathesis on every operation of `schema`; fail with each failed check and a curl to reproduce it."""
    failures: list[str] = []
    tested: set[str] = set()
    finished = None
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            if event.recorder.cases:
                tested.add(event.recorder.label)
            failures += _failed_checks(event.recorder)
        elif isinstance(event, events.NonFatalError):
            failures.append(f"{event.label}: the fuzzer could not run it: {event.info.message}")
        elif isinstance(event, events.FatalError):
            raise event.exception
        elif isinstance(event, events.EngineFinished):
            finished = event
    assert finished is not None and finished.stop_reason == StopReason.COMPLETED, finished
    assert {"POST /v1/forecast", "POST /v1/metadata"} <= tested, f"the fuzzer did not reach the APIs: {sorted(tested)}"
    assert not failures, f"{len(failures)} failed checks:\n" + "\n".join(failures[:20])


def _failed_checks(recorder: ScenarioRecorder) -> list[str]:
    return [
        f"{recorder.label} {node.name}: {node.failure_info.failure.title}: "
        f"{node.failure_info.failure.message[:300]}\n    {node.failure_info.code_sample}"
        for nodes in recorder.checks.values()
        for node in nodes
        if node.failure_info is not None
    ]


def assert_every_refusal_is_a_4xx_naming_what_was_wrong(url: str, horizon: int) -> None:
    post = httpx.Client(base_url=url, timeout=60).post
    not_json = post("/v1/forecast", content=b'{"items": [', headers={"content-type": "application/json"})
    _refused(not_json, 400, "malformed_json")

    missing = _refused(
        post("/v1/forecast", json={"items": [{"store_id": "S000", "sku_id": "P0001"}]}), 422, "invalid_request"
    )
    assert missing["details"] == [{"field": "items[0].horizon", "message": "Field required"}]
    for bad_item, field in [
        ({**GOOD, "horizon": 0}, "items[1].horizon"),
        ({**GOOD, "horizon": "soon"}, "items[1].horizon"),
        ({**GOOD, "colour": "red"}, "items[1].colour"),
        ({**GOOD, "store_id": "S 0"}, "items[1].store_id"),
        ({**GOOD, "planned_promo": [True]}, "items[1]"),
        ({**GOOD, "planned_price": [1.0, -2.0, 1.0]}, "items[1]"),
    ]:
        error = _refused(post("/v1/forecast", json={"items": [GOOD, bad_item]}), 422, "invalid_request")
        assert any(d["field"] == field for d in error["details"]), (bad_item, error)

    nan_price = b'{"items": [{"store_id": "S000", "sku_id": "P0001", "horizon": 1, "planned_price": [NaN]}]}'
    _refused(
        post("/v1/forecast", content=nan_price, headers={"content-type": "application/json"}), 422, "invalid_request"
    )

    too_far = _refused(post("/v1/forecast", json={"items": [{**GOOD, "horizon": horizon + 1}]}), 422, "invalid_request")
    assert too_far["details"][0]["field"] == "items[0].horizon" and str(horizon) in too_far["message"]

    unknown = [GOOD, {**GOOD, "sku_id": "NOPE"}, {**GOOD, "store_id": "S999"}]
    error = _refused(post("/v1/forecast", json={"items": unknown}), 404, "unknown_series")
    assert error["details"] == [{"id": "store S999"}, {"id": "sku NOPE"}]

    _refused(post("/v1/forecast", json={"items": [GOOD] * 1001}), 413, "too_large")
    oversized = b'{"items": [' + b" " * 5_000_000 + b"]}"
    _refused(post("/v1/forecast", content=oversized, headers={"content-type": "application/json"}), 413, "too_large")

    # Whatever arrives, the answer is a 4xx in the same shape, never a 5xx.
    for body in [b"null", b"[]", b"{}", b'{"items": "x"}', b'{"items": [null]}', b"[" * 100_000, b"\xff\xfe", b""]:
        reply = post("/v1/forecast", content=body, headers={"content-type": "application/json"})
        assert 400 <= reply.status_code < 500 and set(reply.json()["error"]) == ERROR_KEYS, (body[:20], reply.text)
    assert post("/v1/forecast", json={"items": [GOOD]}).status_code == 200, "the service still answers"


def assert_overload_is_refused_at_once_with_retry_after(url: str) -> None:
    """More requests than MAX_IN_FLIGHT at once: the excess gets 503 + Retry-After; the rest are answered."""
    body = {"items": [GOOD] * 300}

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=64)) as client:
            return await asyncio.gather(*(client.post("/v1/forecast", json=body) for _ in range(48)))

    started = time.monotonic()
    replies = asyncio.run(burst())
    statuses = [r.status_code for r in replies]
    assert set(statuses) == {200, 503}, statuses
    refused = next(r for r in replies if r.status_code == 503)
    assert refused.headers["retry-after"].isdigit()
    _refused(refused, 503, "overloaded")
    assert time.monotonic() - started < 60


def assert_large_requests_leave_small_ones_unrefused(url: str, item: dict, *, large: int = 40) -> None:
    """After a run of 256-item requests, 64 concurrent single-item clients are all answered. BentoML
    predicts a batch's time per request queued, not per item: at max_latency_ms 1,000 it learnt
    from the large requests that one request costs half a large batch, and shed 22% of such clients
    (issue 19; bench/mixed_load.py measures both settings)."""
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(large):
            assert client.post("/v1/forecast", json={"items": [item] * 256}).status_code == 200

    async def client_requests(client: httpx.AsyncClient) -> list[int]:
        return [(await client.post("/v1/forecast", json={"items": [item]})).status_code for _ in range(20)]

    async def clients() -> list[list[int]]:
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=64)) as client:
            return await asyncio.gather(*(client_requests(client) for _ in range(64)))

    statuses = pd.Series([status for one in asyncio.run(clients()) for status in one]).value_counts().to_dict()
    assert statuses == {200: 64 * 20}, statuses


def assert_a_locked_online_store_degrades_and_recovers(url: str, online_store: Path) -> None:
    """While the SQLite online store is locked (every read blocks), answers come from the last known
    features marked degraded; once it is released the service recovers by itself."""
    body = {"items": [GOOD, {"store_id": "S002", "sku_id": "P0004", "horizon": 5}]}
    healthy = _answered(url, body)
    assert [r["degraded"] for r in healthy] == [False, False]
    lock = sqlite3.connect(online_store, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        for _ in range(4):  # the read times out, again, then the circuit opens
            degraded = _answered(url, body)
            assert [r["degraded"] for r in degraded] == [True, True]
            assert [r["forecast"] for r in degraded] == [r["forecast"] for r in healthy], "the last known features"
        plan = httpx.post(f"{url}/v1/replenishment", json={"items": [{**GOOD_PLAN, "on_hand": 2}]}, timeout=60)
        assert plan.status_code == 200 and plan.json()[0]["degraded"] is True, plan.text  # the same fallback
        metadata = httpx.post(f"{url}/v1/metadata", json={}).json()
        assert metadata["features_circuit"] in {"open", "half_open"}
        assert _metric(url, "demandops_degraded_items_total") >= 8
        assert httpx.get(f"{url}/readyz", timeout=30).status_code == 503, "nothing fresh to serve: not ready"
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    deadline = time.monotonic() + 60
    while True:  # the circuit closes on the first successful probe after its 1 s cool-down
        answer = _answered(url, body)
        if not any(r["degraded"] for r in answer):
            break
        assert time.monotonic() < deadline, "the service did not recover within 60 s of the store answering"
        time.sleep(0.2)
    assert httpx.post(f"{url}/v1/metadata", json={}).json()["features_circuit"] == "closed"
    assert httpx.get(f"{url}/readyz", timeout=30).status_code == 200


def assert_probes_docs_and_metrics(url: str, model_version: str) -> None:
    assert httpx.get(f"{url}/healthz").status_code == 200 and httpx.get(f"{url}/readyz").status_code == 200
    assert "<html" in httpx.get(f"{url}/").text.lower(), "the Swagger UI is served at the root"
    paths = httpx.get(f"{url}/docs.json").json()["paths"]
    assert "/v1/forecast" in paths and "/v1/replenishment" in paths and "/forecast" not in paths
    alias = httpx.post(f"{url}/metadata", json={})  # the unversioned path of earlier releases
    assert alias.status_code == 200 and str(alias.json()["model_version"]) == str(model_version)
    assert alias.headers["link"] == '</v1/metadata>; rel="successor-version"' and alias.headers["deprecation"]
    text = httpx.get(f"{url}/metrics").text
    for refused in ("invalid_request", "unknown_series", "too_large", "malformed_json", "overloaded"):
        assert _metric(url, f'demandops_forecast_refusals_total{{code="{refused}"}}') > 0, refused
    lines = text.splitlines()
    for status in ("200", "404", "413", "422", "503"):  # BentoML's own count sees the gateway's answers
        assert any(
            line.startswith("bentoml_service_request_total{") and 'endpoint="/v1/forecast"' in line
            and f'http_response_code="{status}"' in line
            for line in lines
        ), status  # fmt: skip
    for name in (
        "bentoml_service_request_duration_seconds_bucket",
        "bentoml_service_adaptive_batch_size_bucket",
        "demandops_batch_items_bucket",
        "demandops_feature_lookup_seconds_bucket",
        "demandops_degraded_items_total",
        "demandops_feature_circuit_open",
        "demandops_online_features_fresh",
    ):
        assert name in text, name
    wait_until(lambda: _metric(url, "demandops_prediction_log_answers_total") > 0, "answers written to the log", 10)
    assert _metric(url, "demandops_prediction_log_dropped_total") == 0, "nothing dropped when not overloaded"
    info = next(line for line in text.splitlines() if line.startswith("demandops_model_info{"))
    assert f'model_version="{model_version}"' in info and 'feature_service="demand_forecast_v1"' in info


def assert_batch_scoring_writes_every_series(
    settings: Settings, output: Path, served: dict, model_series: set[tuple[str, str]]
) -> None:
    """`demandops forecast` scores every series the Production model knows, as the endpoint answers."""
    command = [str(Path(sys.executable).with_name("demandops")), "forecast", "--output", str(output)]
    done = subprocess.run(command, env=settings.child_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    scored = pd.read_csv(output, parse_dates=["origin_date", "date"])
    per_series = scored.groupby(["store_id", "sku_id"]).size()
    assert set(per_series.index) == model_series, "every series, once"
    assert set(per_series) == {scored["date"].nunique()} and not scored["degraded"].any()
    one = scored[(scored["store_id"] == served["store_id"]) & (scored["sku_id"] == served["sku_id"])]
    horizon = len(served["forecast"])
    # Equal up to float32 rounding: a batch of one and a batch of every series may take other kernels.
    served_p50 = [d["p50"] for d in served["forecast"]]
    assert one["p50"].head(horizon).tolist() == pytest.approx(served_p50, rel=1e-5, abs=1e-5), "the service's path"
    # Scored 7 series at a time (a few thousand at scale), the file is the same.
    chunked = output.with_name(f"chunked-{output.name}")
    env = {**settings.child_env(), "DEMANDOPS_SERVING__MAX_ITEMS_PER_REQUEST": "7"}
    done = subprocess.run([*command[:-1], str(chunked)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    pd.testing.assert_frame_equal(
        pd.read_csv(chunked, parse_dates=["origin_date", "date"]), scored, rtol=1e-5, atol=1e-5
    )
    beyond = subprocess.run([*command, "--horizon", "15"], env=settings.child_env(), capture_output=True, text=True)
    assert beyond.returncode == 1 and "exceeds this model's horizon of 14 days" in beyond.stderr, beyond.stderr
    assert "Traceback" not in beyond.stderr


def assert_served_answers_are_logged(settings: Settings, answers: dict[str, list[dict]]) -> None:
    """Each answer (by its X-Request-ID), written to the prediction log as it was sent, once the
    service has stopped: nothing is lost when the service is not overloaded."""
    items = [item for answer in answers.values() for item in answer]
    targets = sorted({date.fromisoformat(d["date"]) for item in items for d in item["forecast"]})
    earliest = min(date.fromisoformat(item["origin_date"]) for item in items)
    logged = read_log(log_dir(settings), targets=targets, earliest_origin=earliest)
    for request_id, answer in answers.items():
        mine = logged[logged["request_id"] == request_id].sort_values("step", kind="stable")
        assert len(mine) == sum(len(item["forecast"]) for item in answer), f"request {request_id} not logged whole"
        for store_id, sku_id in {(item["store_id"], item["sku_id"]) for item in answer}:
            # a request may ask for one series twice (with and without a plan): compared as a multiset
            items = [item for item in answer if (item["store_id"], item["sku_id"]) == (store_id, sku_id)]
            rows = mine[(mine["store_id"] == store_id) & (mine["sku_id"] == sku_id)]
            assert set(rows["model_version"]) == {item["model_version"] for item in items}
            sent = sorted(d["p50"] for item in items for d in item["forecast"])
            assert sorted(rows["p50"]) == pytest.approx(sent, rel=1e-6), f"{store_id}/{sku_id} logged as sent"


def assert_batch_scoring_is_logged(settings: Settings, scored_file: Path) -> None:
    scored = pd.read_csv(scored_file, parse_dates=["origin_date", "date"])
    logged = read_log(
        log_dir(settings), targets=scored["date"].dt.date.unique(), earliest_origin=scored["origin_date"].min().date()
    )
    batch = logged[logged["request_id"].str.startswith("batch-")]
    assert batch["request_id"].nunique() == 2, "each of the two scoring runs logged under its own id"
    one_run = batch[batch["request_id"] == batch["request_id"].iloc[0]]
    assert len(one_run) == len(scored) and set(zip(one_run["store_id"], one_run["sku_id"], strict=False)) == set(
        zip(scored["store_id"], scored["sku_id"], strict=False)
    )


def _answered(url: str, body: dict) -> list[dict]:
    reply = httpx.post(f"{url}/v1/forecast", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _metric(url: str, series: str) -> float:
    """The value of one exposed series (its name with labels, exactly as /metrics prints it)."""
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
