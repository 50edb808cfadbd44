"""ASGI middleware in front of every route of the BentoML service: one error shape, the unversioned
aliases of the API routes (serving/routes.py), and POST /v1/forecast and POST /v1/replenishment (the
batched routes) refused before they are batched.

Every request passes here, and every error answer leaves in the one JSON shape of serving/errors.py,
whoever produced it (serving/answers.py): Starlette's plain-text 404 and 405, BentoML's own
validation errors, a 503 from /readyz. Answers under 400 pass unchanged and unbuffered.

A POST to an API route (/v1/forecast, /v1/replenishment, /v1/metadata) whose body is not JSON by its
Content-Type -> 415, before BentoML parses it (it answers 500 to multipart without a boundary); no Content-Type is JSON.

BentoML's adaptive batching runs the items of many requests as one call, so one bad item would
fail every request in its batch; and its own errors are a 500 for some malformed bodies and a
bare 503 with no Retry-After when it sheds load. Here, before a request to a batched route joins a batch:

- with keys required, no valid key -> 401 or 403, over the key's rate or quota -> 429 (serving/key_guard.py);
- more than `max_in_flight` requests at once -> 503 overloaded, with Retry-After;
- a body over `max_body_bytes` (read no further) or over `max_items_per_request` items -> 413;
- a body that is not JSON -> 400; one that breaks the schema -> 422 naming each field;
- ids the model does not know -> 404 naming them; a horizon (or L + R) beyond the model's -> 422;
- no answer within `request_deadline_s` -> 503 timeout, with Retry-After.

A request to an alias (/forecast) is served as its /v1 route, and its answer says the alias is
deprecated. Everything below sees the /v1 path only.

Every answer carries `X-Request-ID`: the caller's, when it is a short token, or a new one. It is
the id the prediction log records a forecast under. BentoML's own request id (X-BentoML-Request-ID)
comes from its OpenTelemetry middleware, which the forecast routes skip unless
`trace_requests` is on: without an exporter its spans went nowhere and cost a third of the
throughput (bench/http_path.py).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from demandops.logs import REQUEST_ID as LOGGED_REQUEST_ID
from demandops.settings import ServingSettings
from serving import metrics
from serving.answers import Headers, ShapedAnswer, refusal_of
from serving.errors import RequestRefused
from serving.key_guard import KeyGuard
from serving.routes import ALIASES, FORECAST, METADATA, REPLENISHMENT, deprecation_headers
from serving.schemas import ForecastRequest, ReplenishmentRequest
from serving.tracing import request_span, sample_rate

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Checks a validated request against the served model; raises RequestRefused (see the service).
Admission = Callable[[ForecastRequest | ReplenishmentRequest], None]
# Takes an answer sent to its client (the route, its request id and JSON body): forecasts into the
# prediction log, reorder points into the decision log (monitoring/).
Served = Callable[[str, str, bytes], object]

# The batched routes and the schema of their bodies; both routes' successful answers are handed over.
BATCHED = {FORECAST: TypeAdapter(ForecastRequest), REPLENISHMENT: TypeAdapter(ReplenishmentRequest)}
LOGGED_PATHS = frozenset(BATCHED)
JSON_MEDIA_TYPES = {"application/json", ""}  # BentoML reads an absent or empty Content-Type as JSON
PROBE_PATHS = {"/healthz", "/livez", "/readyz"}
# What some statuses of the app mean on a route: a batched route's 404 is its unknown ids; a probe's 503
# is "not ready", where elsewhere a 503 is BentoML's dispatcher shedding load.
BATCHED_CODES = {404: "unknown_series"}
PROBE_CODES = {503: "not_ready"}
# Headers of the app's error answer that our refusal keeps (405 must say what is allowed).
KEPT_HEADERS = {b"allow", b"server", b"x-bentoml-request-id", b"x-bentoml-trace-id"}
REQUEST_ID = b"x-request-id"
CALLER_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")  # kept as given; anything else gets a new id


class ForecastGateway:
    def __init__(
        self,
        app,
        *,
        limits: ServingSettings,
        admission: Callable[[], Admission],
        served: Callable[[], Served | None] = lambda: None,
        api_paths: Collection[str] = (*BATCHED, METADATA),
        batched: Mapping[str, TypeAdapter] = BATCHED,
        keys: KeyGuard | None = None,
    ):
        self.app = app
        self.limits = limits
        self.admission = admission  # resolved per request: the service instance exists only after start-up
        self.served = served
        self.api_paths = frozenset(api_paths)
        self.batched = batched
        self.keys = keys  # None: the API routes take requests without a key
        self.trace_rate = sample_rate(limits)  # of the API requests given a demandops.gateway span
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan; this service has no websockets
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        extra = [(REQUEST_ID, request_id.encode("ascii"))]
        successor = ALIASES.get(scope["path"])
        if successor is not None:
            scope = {**scope, "path": successor, "raw_path": successor.encode()}
            extra += deprecation_headers(successor)
        rate = self.trace_rate if scope["path"] in self.api_paths else 0.0
        with request_span(rate, scope, request_id) as record_status:
            await self._answer(scope, receive, _with_headers(send, extra, record_status), request_id)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:

        async def refuse_error_answer(status: int, headers: Headers, body: bytes) -> None:
            await self._refuse(scope, send, self._rewrite(scope, status, headers, body), headers)

        # A batched route's answer is held whole, so that its deadline can still answer in its place.
        batched = scope["path"] in self.batched
        answer = ShapedAnswer(send, refuse_error_answer, hold=batched)
        request_token = LOGGED_REQUEST_ID.set(request_id)  # on the log lines written for this request
        try:
            await self._handle(scope, receive, send, answer, request_id)
        finally:
            LOGGED_REQUEST_ID.reset(request_token)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, answer: ShapedAnswer, request_id: str) -> None:
        batched = scope["path"] in self.batched
        try:
            if self.keys is not None and scope["path"] in self.api_paths:
                await self.keys.admit(dict(scope["headers"]))  # before anything is read, counted or batched
            if scope["method"] != "POST" or scope["path"] not in self.api_paths:
                await self.app(scope, receive, answer)
            elif batched:
                await self._batched(scope, receive, answer)
            else:
                body = await self._read_json_body(scope, receive)
                await self.app(scope, _replay(body, receive), answer)
            await answer.finish()
            if answer.held_success is not None and scope["path"] in LOGGED_PATHS:
                self._hand_over(scope["path"], request_id, answer.held_success[1])
        except RequestRefused as refused:
            await self._refuse(scope, send, refused)
        except Exception:
            # Whatever escaped the app still gets our shape (Starlette would answer plain text); the
            # exception goes on to the server, which logs its traceback.
            if not answer.started:
                await self._refuse(scope, send, RequestRefused("internal", "the service failed; see its log"))
            raise

    async def _batched(self, scope: Scope, receive: Receive, answer: ShapedAnswer) -> None:
        if self.in_flight >= self.limits.max_in_flight:
            raise RequestRefused("overloaded", f"more than {self.limits.max_in_flight} requests in flight")
        self.in_flight += 1
        try:
            body = await self._read_json_body(scope, receive)
            self._check(body, self.batched[scope["path"]])
            try:
                async with asyncio.timeout(self.limits.request_deadline_s):  # no extra task, unlike wait_for
                    await self.app(scope, _replay(body, receive), answer)
            except TimeoutError:
                raise RequestRefused("timeout", f"no answer within {self.limits.request_deadline_s:g} s") from None
        finally:
            self.in_flight -= 1

    async def _read_json_body(self, scope: Scope, receive: Receive) -> bytes:
        _refuse_what_is_not_json(scope)
        limit = self.limits.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestRefused("too_large", f"the body has {int(declared)} bytes; at most {limit} are accepted")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestRefused("malformed_json", "the client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # no Content-Length (chunked): stop reading at the limit
                raise RequestRefused("too_large", f"the body exceeds {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _check(self, body: bytes, schema: TypeAdapter) -> None:
        try:
            parsed = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RequestRefused("malformed_json", f"the body is not JSON: {exc}") from exc
        except RecursionError as exc:  # json.loads recurses once per nesting level
            raise RequestRefused("malformed_json", "the body nests deeper than JSON requests may") from exc
        items = parsed.get("items") if isinstance(parsed, dict) else None
        cap = self.limits.max_items_per_request
        if isinstance(items, list) and len(items) > cap:
            raise RequestRefused(
                "too_large", f"{len(items)} items in one request; at most {cap} are accepted (split the request)"
            )
        try:
            request = schema.validate_python(parsed)
        except ValidationError as exc:
            raise RequestRefused.from_validation(exc) from exc
        admit = self.admission()
        admit(request)

    def _hand_over(self, path: str, request_id: str, body: bytes) -> None:
        take = self.served()
        if take is not None:
            take(path, request_id, body)

    def _rewrite(self, scope: Scope, status: int, headers: Headers, body: bytes) -> RequestRefused:
        codes = BATCHED_CODES if scope["path"] in self.batched else PROBE_CODES if scope["path"] in PROBE_PATHS else {}
        return refusal_of(scope, status, headers, body, codes=codes)

    async def _refuse(self, scope: Scope, send: Send, refused: RequestRefused, kept: Headers = ()) -> None:
        """Answer `refused` in our shape, keeping some headers of the app's own error answer (`kept`)."""
        # The metrics count refusals of the batched routes, not of probes or stray paths.
        if scope["path"] == FORECAST:
            metrics.REFUSALS.labels(code=refused.code).inc()
        elif scope["path"] in self.batched:
            metrics.REPLENISHMENT_REFUSALS.labels(code=refused.code).inc()
        body = refused.body()
        headers = [(k, v) for k, v in kept if k.lower() in KEPT_HEADERS]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += refused.headers
        if refused.status == 503:
            headers.append((b"retry-after", str(self.limits.retry_after_s).encode()))
        await send({"type": "http.response.start", "status": refused.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _refuse_what_is_not_json(scope: Scope) -> None:
    # Every Content-Type header is checked: BentoML reads the first one, a proxy may read the last.
    declared = [value.decode("latin-1") for name, value in scope["headers"] if name == b"content-type"]
    for media_type in (content_type.split(";")[0].strip().lower() for content_type in declared):
        if media_type not in JSON_MEDIA_TYPES:
            raise RequestRefused("unsupported_media_type", f"the body must be application/json, not {media_type}")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that gives the app the body already read, then the client's own (its disconnect)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-ID when it is a token of at most 128 characters, else a new one."""
    given = dict(scope["headers"]).get(REQUEST_ID)
    return given.decode("ascii") if given is not None and CALLER_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _with_headers(send: Send, headers: Headers, record_status: Callable[[int], None]) -> Send:
    """`send`, adding `headers` (X-Request-ID, an alias's deprecation) to the start of every answer,
    whose status goes to `record_status` (the request's span)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            record_status(message["status"])
            message = {**message, "headers": [*message.get("headers", []), *headers]}
        await send(message)

    return sending
