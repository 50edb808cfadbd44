"""ASGI middleware in front of BentoML's POST /forecast: refuse bad requests before they are batched.

BentoML's adaptive batching runs the items of many requests as one call, so one bad item would
fail every request in its batch; and its own errors are a 500 for some malformed bodies and a
bare 503 with no Retry-After when it sheds load. Here, before a request joins a batch:

- more than `max_in_flight` requests at once -> 503 overloaded, with Retry-After;
- a body over `max_body_bytes` (read no further) or over `max_items_per_request` items -> 413;
- a body that is not JSON -> 400; one that breaks the schema -> 422 naming each field;
- ids the model does not know -> 404 naming them; a horizon beyond the model's -> 422;
- no answer within `request_deadline_s` -> 503 timeout, with Retry-After.

Whatever BentoML answers with an error is rewritten into the same JSON shape (serving/errors.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from demandops.settings import ServingSettings
from serving import metrics
from serving.errors import RequestRefused
from serving.schemas import ForecastRequest

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Checks a validated request against the served model; raises RequestRefused (see the service).
Admission = Callable[[ForecastRequest], None]

_REQUEST = TypeAdapter(ForecastRequest)
# BentoML's error statuses as our codes; a 503 from BentoML is its dispatcher shedding load.
_DOWNSTREAM_CODES = {400: "invalid_request", 404: "unknown_series", 422: "invalid_request", 503: "overloaded"}


class ForecastGateway:
    def __init__(self, app, *, limits: ServingSettings, admission: Callable[[], Admission], path: str = "/forecast"):
        self.app = app
        self.limits = limits
        self.admission = admission  # resolved per request: the service instance exists only after start-up
        self.path = path
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limits.max_in_flight:
            overloaded = RequestRefused("overloaded", f"more than {self.limits.max_in_flight} requests in flight")
            await self._refuse(send, overloaded)
            return
        self.in_flight += 1
        try:
            await self._handle(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await self._read_body(scope, receive)
            self._check(body)
            async with asyncio.timeout(self.limits.request_deadline_s):  # no extra task, unlike wait_for
                status, headers, chunks = await self._downstream(scope, body)
        except RequestRefused as refused:
            await self._refuse(send, refused)
            return
        except TimeoutError:
            await self._refuse(
                send, RequestRefused("timeout", f"no answer within {self.limits.request_deadline_s:g} s")
            )
            return
        if status >= 400:
            await self._refuse(send, self._rewrite(status, b"".join(chunks)))
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"".join(chunks)})

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
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

    def _check(self, body: bytes) -> None:
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
            request = _REQUEST.validate_python(parsed)
        except ValidationError as exc:
            raise RequestRefused.from_validation(exc) from exc
        admit = self.admission()
        admit(request)

    async def _downstream(self, scope: Scope, body: bytes) -> tuple[int, list, list[bytes]]:
        """Run BentoML on the body already read, and collect its answer."""
        delivered = False
        start: Message = {}
        chunks: list[bytes] = []

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                await asyncio.Event().wait()  # BentoML never reads past the body; wait to be cancelled
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def collect(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, replay, collect)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(sum(len(c) for c in chunks)).encode()))
        return start["status"], headers, chunks

    def _rewrite(self, status: int, body: bytes) -> RequestRefused:
        """BentoML's error answer in our shape; its 5xx bodies say nothing, so the log does."""
        try:
            message = str(json.loads(body).get("error", body[:500]))
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            message = body[:500].decode(errors="replace")
        code = _DOWNSTREAM_CODES.get(status, "internal" if status >= 500 else "invalid_request")
        if code == "internal":
            log.error("forecast failed inside the service with HTTP %s: %s (see the traceback above)", status, message)
        if code == "overloaded":
            message = "the service is shedding load: the queue would not be answered in time"
        return RequestRefused(code, message)

    async def _refuse(self, send: Send, refused: RequestRefused) -> None:
        metrics.REFUSALS.labels(code=refused.code).inc()
        body = refused.body()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if refused.status == 503:
            headers.append((b"retry-after", str(self.limits.retry_after_s).encode()))
        await send({"type": "http.response.start", "status": refused.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
