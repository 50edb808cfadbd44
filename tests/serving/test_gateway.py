"""ForecastGateway in front of a real BentoML service's ASGI app (in-process, no model): every route
answers its errors in the one shape of serving/errors.py, and what BentoML cannot read never reaches it."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from typing import Annotated

import bentoml
import prometheus_client
import pytest
import schemathesis
from bentoml.validators import ContentType
from pydantic import ValidationError
from starlette.requests import Request
from starlette.routing import Route, Router
from starlette.testclient import TestClient

from demandops.logs import REQUEST_ID
from demandops.settings import ServingSettings
from serving.answers import ShapedAnswer
from serving.gateway import ForecastGateway
from serving.schemas import ForecastItem, ForecastRequest
from tests.e2e.serving_checks import ERROR_KEYS, assert_fuzzing_finds_nothing, fuzz_config

GOOD = {"store_id": "S000", "sku_id": "P0001", "horizon": 2}
JSON = ContentType("application/json")
READY = threading.Event()  # what the service's readiness says; set unless a test clears it
READY.set()
HANDED_OVER: list[tuple[str, bytes]] = []
HANDED_OVER_PATHS: list[str] = []  # the route of each answer handed over (it picks the log)
SEEN_REQUEST_IDS: list[str | None] = []  # what the gateway hands to the prediction log: (request id, answer)


@bentoml.service(name="gateway_test_service")
class GatewayTestService:
    """The forecast service's routes, schemas and probes, answering without a model."""

    def __is_ready__(self) -> bool:
        return READY.is_set()

    def admit(self, request: ForecastRequest) -> None:
        """Every series is known here: the model's checks are the predictor's, tested with it."""

    @bentoml.api(route="/v1/forecast")
    def forecast(self, items: list[ForecastItem]) -> Annotated[list[dict], JSON]:
        SEEN_REQUEST_IDS.append(REQUEST_ID.get())  # what a log line written here would carry
        return [{"store_id": item.store_id, "planned_price": item.planned_price} for item in items]

    @bentoml.api(route="/v1/metadata")
    def metadata(self) -> Annotated[dict, JSON]:
        return {"model_version": "1"}


async def _broken(request: Request) -> None:
    raise RuntimeError("a bug behind the gateway")


GatewayTestService.mount_asgi_app(Router([Route("/", _broken)]), path="/broken")
GatewayTestService.add_asgi_middleware(
    ForecastGateway,
    limits=ServingSettings(),
    admission=lambda: bentoml.get_current_service().admit,
    served=lambda: (
        lambda path, request_id, answer: (
            HANDED_OVER_PATHS.append(path),
            HANDED_OVER.append((request_id, answer)),
        )
    ),
)


@pytest.fixture(scope="module")
def app():
    return GatewayTestService.to_asgi()  # once: BentoML registers its Prometheus metrics per app


@pytest.fixture(scope="module")
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def refused(reply, status: int, code: str) -> dict:
    assert reply.status_code == status, f"expected {status}, got {reply.status_code}: {reply.text[:300]}"
    assert reply.headers["content-type"] == "application/json"
    error = reply.json()["error"]
    assert set(error) == ERROR_KEYS and error["status"] == status and error["code"] == code, error
    return error


@pytest.mark.parametrize("path", ["/v1/forecast", "/v1/metadata"])
@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "text/plain"],
)
def test_a_body_that_is_not_json_is_refused_before_bentoml_reads_it(client, path: str, content_type: str) -> None:
    reply = client.post(path, content=b"{}", headers={"content-type": content_type})
    assert content_type.split(";")[0] in refused(reply, 415, "unsupported_media_type")["message"]


def test_a_multipart_upload_and_a_second_content_type_are_refused(client) -> None:
    refused(client.post("/v1/metadata", files={"file": ("a.json", b"{}")}), 415, "unsupported_media_type")
    # BentoML reads the first Content-Type: a JSON one after it must not let multipart through.
    both = [("content-type", "multipart/form-data"), ("content-type", "application/json")]
    refused(client.post("/v1/metadata", content=b"{}", headers=both), 415, "unsupported_media_type")


def test_no_content_type_is_json(client) -> None:
    assert client.post("/v1/metadata", content=b"{}").json() == {"model_version": "1"}
    reply = client.post("/v1/forecast", content=b'{"items": [{"store_id": "S1", "sku_id": "P1", "horizon": 1}]}')
    assert reply.status_code == 200 and reply.json() == [{"store_id": "S1", "planned_price": None}]


def test_starlettes_404_and_405_are_answered_in_our_shape(client) -> None:
    not_allowed = refused(client.get("/v1/forecast"), 405, "method_not_allowed")
    assert not_allowed["message"] == "GET is not allowed on /v1/forecast (allowed: POST)"
    assert client.get("/v1/forecast").headers["allow"] == "POST", "a 405 still says what is allowed"
    refused(client.put("/v1/metadata", json={}), 405, "method_not_allowed")
    refused(client.delete("/healthz"), 405, "method_not_allowed")
    assert refused(client.get("/no-such-route"), 404, "not_found")["message"] == "nothing is served at /no-such-route"


def test_bentomls_validation_errors_are_answered_in_our_shape(client) -> None:
    json_body = {"content-type": "application/json"}
    not_json = refused(client.post("/v1/metadata", content=b"{", headers=json_body), 400, "malformed_json")
    assert [d["field"] for d in not_json["details"]] == ["body"]
    not_an_object = refused(client.post("/v1/metadata", content=b"[]", headers=json_body), 422, "invalid_request")
    assert not_an_object["details"] == [{"field": "body", "message": "Input should be an object"}]


def test_a_boolean_horizon_is_refused_naming_the_field(client) -> None:
    error = refused(client.post("/v1/forecast", json={"items": [{**GOOD, "horizon": True}]}), 422, "invalid_request")
    assert error["details"] == [{"field": "items[0].horizon", "message": "Input should be a valid integer"}]


def test_bentomls_own_validation_takes_the_strict_models() -> None:
    """BentoML validates the raw body again, with the input model it built from `items: list[ForecastItem]`."""
    bentoml_input = GatewayTestService.apis["forecast"].input_spec
    prices = b'{"items": [{"store_id": "S0", "sku_id": "P0", "horizon": 2, "planned_price": [1, 2.5]}]}'
    [item] = bentoml_input.model_validate_json(prices).items
    assert item.planned_price == [1.0, 2.5]
    with pytest.raises(ValidationError, match="valid integer"):
        bentoml_input.model_validate_json(b'{"items": [{"store_id": "S0", "sku_id": "P0", "horizon": true}]}')


def test_json_integers_are_prices_through_both_validations(client) -> None:
    reply = client.post("/v1/forecast", json={"items": [{**GOOD, "planned_price": [1, 2.5]}]})
    assert reply.status_code == 200 and reply.json() == [{"store_id": "S000", "planned_price": [1.0, 2.5]}]


def test_not_ready_is_a_503_in_our_shape_with_retry_after(client) -> None:
    assert client.get("/readyz").status_code == 200
    READY.clear()
    try:
        reply = client.get("/readyz")
    finally:
        READY.set()
    error = refused(reply, 503, "not_ready")
    assert "__is_ready__" in error["message"] and reply.headers["retry-after"].isdigit()


def test_successful_answers_of_other_routes_pass_unchanged(client) -> None:
    healthz = client.get("/healthz")
    assert healthz.status_code == 200 and healthz.text == "\n"
    assert healthz.headers["content-type"].startswith("text/plain")
    assert "/v1/forecast" in client.get("/docs.json").json()["paths"]
    index = client.get("/")
    assert index.status_code == 200 and "<html" in index.text.lower()
    assert int(index.headers["content-length"]) == len(index.content)


def test_an_exception_escaping_the_app_is_answered_in_our_shape_and_raised_on(app, client) -> None:
    refused(client.get("/broken"), 500, "internal")
    with pytest.raises(RuntimeError, match="a bug behind the gateway"):  # the server logs it, nothing is hidden
        TestClient(app).get("/broken")


def test_only_refused_forecasts_are_counted(client) -> None:
    def count(code: str) -> float:
        value = prometheus_client.REGISTRY.get_sample_value("demandops_forecast_refusals_total", {"code": code})
        return value or 0.0

    before = count("method_not_allowed"), count("not_found")
    client.get("/v1/forecast")
    client.get("/no-such-route")
    client.get("/v1/metadata")
    assert (count("method_not_allowed"), count("not_found")) == (before[0] + 1, before[1])


def test_every_answer_carries_a_request_id_and_the_log_gets_the_forecasts(client) -> None:
    HANDED_OVER.clear()
    mine = client.post("/v1/forecast", json={"items": [GOOD]}, headers={"X-Request-ID": "planner-42"})
    assert mine.status_code == 200 and mine.headers["x-request-id"] == "planner-42", mine.text
    assert len(HANDED_OVER) == 1 and HANDED_OVER[0] == ("planner-42", mine.content)
    fresh = client.post("/v1/forecast", json={"items": [GOOD]})
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])
    assert HANDED_OVER[-1] == (fresh.headers["x-request-id"], fresh.content)
    too_long = client.post("/v1/forecast", json={"items": [GOOD]}, headers={"X-Request-ID": "x" * 129})
    assert re.fullmatch(r"[0-9a-f]{32}", too_long.headers["x-request-id"]), "a caller's id is kept only when short"
    bad = client.post("/v1/forecast", content=b"{", headers={"content-type": "application/json", "X-Request-ID": "r1"})
    refused(bad, 400, "malformed_json")
    assert bad.headers["x-request-id"] == "r1" and len(HANDED_OVER) == 3, "refusals carry it, and are not logged"
    assert set(HANDED_OVER_PATHS) == {"/v1/forecast"}, "each answer goes with its route, which picks the log"
    assert client.post("/v1/metadata", json={}, headers={"X-Request-ID": "m1"}).headers["x-request-id"] == "m1"
    assert SEEN_REQUEST_IDS[-1] == too_long.headers["x-request-id"], "the app's code logs under the request's id"
    assert REQUEST_ID.get() is None, "and only while the request is served"


def test_a_success_is_passed_on_as_it_comes_and_an_error_is_held() -> None:
    asyncio.run(_pass_on_a_success_and_hold_an_error())


async def _pass_on_a_success_and_hold_an_error() -> None:
    sent, errors = [], []

    async def send(message: dict) -> None:
        sent.append(message)

    async def refuse(status: int, headers: list, body: bytes) -> None:
        errors.append((status, body))

    streaming = ShapedAnswer(send, refuse)
    await streaming({"type": "http.response.start", "status": 200, "headers": []})
    await streaming({"type": "http.response.body", "body": b"first", "more_body": True})
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"], "not buffered"
    await streaming({"type": "http.response.body", "body": b"", "more_body": False})
    await streaming.finish()
    assert len(sent) == 3 and not errors

    failing = ShapedAnswer(send, refuse)
    await failing({"type": "http.response.start", "status": 404, "headers": []})
    await failing({"type": "http.response.body", "body": b"Not", "more_body": True})
    await failing({"type": "http.response.body", "body": b" Found"})
    assert len(sent) == 3 and not errors, "nothing of an error answer goes out as it is"
    await failing.finish()
    assert errors == [(404, b"Not Found")]


def test_the_unversioned_paths_are_deprecated_aliases_of_the_v1_routes(client) -> None:
    HANDED_OVER.clear()
    body = {"items": [GOOD]}
    alias, versioned = client.post("/forecast", json=body), client.post("/v1/forecast", json=body)
    assert alias.status_code == versioned.status_code == 200, (alias.text, versioned.text)
    assert alias.json() == versioned.json()
    assert re.fullmatch(r"@\d+", alias.headers["deprecation"]), alias.headers
    assert alias.headers["link"] == '</v1/forecast>; rel="successor-version"'
    assert "deprecation" not in versioned.headers and "link" not in versioned.headers
    assert [request_id for request_id, _ in HANDED_OVER] == [
        alias.headers["x-request-id"],
        versioned.headers["x-request-id"],
    ]
    assert HANDED_OVER_PATHS[-2:] == ["/v1/forecast"] * 2, "an alias's answer is logged as its v1 route's"
    # A refusal on an alias is the v1 route's refusal, and still says the alias is deprecated.
    bad = refused(client.post("/forecast", json={"items": [{**GOOD, "horizon": 0}]}), 422, "invalid_request")
    assert bad["details"][0]["field"] == "items[0].horizon"
    assert client.post("/metadata", json={}).headers["link"] == '</v1/metadata>; rel="successor-version"'
    assert "/forecast" not in client.get("/docs.json").json()["paths"], "the document lists the v1 routes only"


# Last of the tests that use `client`: the fuzzer's run ends the test service's lifespan, after which
# the module's client gets "service isn't instantiated yet" from every route that needs the service.
def test_a_schema_fuzzer_finds_no_5xx_and_no_refusal_in_another_shape(app) -> None:
    schema = schemathesis.openapi.from_asgi("/docs.json", app, config=fuzz_config())
    # /metrics in-process has no Prometheus multiprocess folder (bentoml serve makes one) and fails.
    assert_fuzzing_finds_nothing(schema.exclude(path="/metrics"))
