"""What the app behind the gateway answers (BentoML, and the Starlette it is built on), on its way out.

An answer under 400 goes to the client untouched; an error answer is held back and replaced by the
same refusal in our shape (serving/errors.py), whatever route or layer produced it: Starlette's
plain-text 404 and 405, BentoML's `{"error": ..., "detail": [...]}` validation errors, a probe's 503.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from serving.errors import RequestRefused, field_path

log = logging.getLogger(__name__)

Message = dict[str, Any]
Headers = Sequence[tuple[bytes, bytes]]
Send = Callable[[Message], Awaitable[None]]
# Answers an error answer of the app (its status, headers and body) in our shape instead.
Refuse = Callable[[int, Headers, bytes], Awaitable[None]]

# The app's error statuses as our codes (a route may override some, see refusal_of).
DOWNSTREAM_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "overloaded",
    503: "overloaded",
    504: "timeout",
}
MESSAGE_LIMIT = 500  # characters of the app's own message kept in ours


class ShapedAnswer:
    """The `send` the app answers through. An answer under 400 is passed on as it comes (a stream is
    not buffered), or whole at finish() when `hold` is set, so that a deadline can still refuse
    in its place. An error answer is collected (error bodies are small) and refused at finish()."""

    def __init__(self, send: Send, refuse: Refuse, *, hold: bool = False):
        self._send = send
        self._refuse = refuse
        self._hold = hold
        self._start: Message | None = None
        self._chunks: list[bytes] = []
        self._complete = False
        self.started = False  # whether anything has reached the client
        self.held_success: tuple[Headers, bytes] | None = None  # the held answer under 400, once sent

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            if message["status"] < 400 and not self._hold:
                await self._pass_on(message)
            return
        if self.started:  # a success being passed on as it comes
            await self._send(message)
            return
        if message["type"] != "http.response.body":  # e.g. pathsend: nothing this gateway holds sends one
            raise RuntimeError(f"an answer held by the gateway cannot be sent as {message['type']}")
        self._chunks.append(message.get("body", b""))
        self._complete = not message.get("more_body", False)

    async def finish(self) -> None:
        """Send what was held: the whole success, or the refusal in place of the error answer."""
        if self.started:
            return
        if self._start is None or not self._complete:
            raise RuntimeError("the app returned without a whole answer")
        status, headers, body = self._start["status"], self._start.get("headers", []), b"".join(self._chunks)
        if status >= 400:
            self.started = True
            await self._refuse(status, headers, body)
            return
        sized = [(k, v) for k, v in headers if k.lower() != b"content-length"]
        sized.append((b"content-length", str(len(body)).encode()))
        await self._pass_on({**self._start, "headers": sized})
        await self._send({"type": "http.response.body", "body": body})
        self.held_success = (headers, body)

    async def _pass_on(self, start: Message) -> None:
        self.started = True
        await self._send(start)


def refusal_of(
    scope: dict[str, Any], status: int, headers: Headers, body: bytes, *, codes: dict[int, str]
) -> RequestRefused:
    """The app's error answer as our refusal; `codes` holds the route's own meaning of some statuses."""
    message, details, kinds = _message_and_details(body)
    code = codes.get(status) or DOWNSTREAM_CODES.get(status) or ("internal" if status >= 500 else "invalid_request")
    if code == "not_found":
        message = f"nothing is served at {scope['path']}"
    elif code == "method_not_allowed":
        allowed = dict(headers).get(b"allow", b"").decode("latin-1") or "none"
        message = f"{scope['method']} is not allowed on {scope['path']} (allowed: {allowed})"
    elif code == "overloaded":
        message = "the service is shedding load: the queue would not be answered in time"
    elif code == "internal":  # BentoML's 5xx bodies say nothing; its log holds the traceback
        log.error("%s %s failed inside the service with HTTP %s: %s", scope["method"], scope["path"], status, message)
    elif details:
        code = "malformed_json" if kinds == {"json_invalid"} else "invalid_request"
        message = "invalid request: " + ", ".join(dict.fromkeys(d["field"] for d in details))
    return RequestRefused(code, message, details)


def _message_and_details(body: bytes) -> tuple[str, list[dict[str, str]], set[str]]:
    """The app's message, and when it is BentoML's validation error the fields at fault and the kinds of fault."""
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return body[:MESSAGE_LIMIT].decode(errors="replace").strip(), [], set()
    if isinstance(parsed, list) and len(parsed) == 1:  # BentoML answers its own 4xx errors as a 1-item list
        parsed = parsed[0]
    if not isinstance(parsed, dict):
        return str(parsed)[:MESSAGE_LIMIT], [], set()
    detail = parsed.get("detail")
    errors = [e for e in detail if isinstance(e, dict)] if isinstance(detail, list) else []
    details = [{"field": field_path(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))} for e in errors]
    return str(parsed.get("error", ""))[:MESSAGE_LIMIT], details, {str(e.get("type")) for e in errors}
