"""The one JSON shape every error answer of the service gets, on every route.

    {"error": {"status": 422, "code": "invalid_request", "message": "...", "details": [...]}}

`code` is stable and meant for programs; `message` is for people. `details` lists each field at
fault as {"field": "items[0].horizon", "message": ...}, or each unknown id as {"id": "sku P9"}.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

# code -> HTTP status. Everything a caller can get wrong is a 4xx; 503 means "retry later".
STATUS = {
    "malformed_json": 400,
    "invalid_request": 422,
    "unauthenticated": 401,  # no API key, or one not known (with WWW-Authenticate: Bearer)
    "forbidden": 403,  # a revoked API key
    "rate_limited": 429,  # with Retry-After
    "quota_exceeded": 429,  # with Retry-After
    "unknown_series": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "unsupported_by_model": 409,  # e.g. reorder points from a model trained before they were calibrated
    "too_large": 413,
    "unsupported_media_type": 415,
    "overloaded": 503,
    "not_ready": 503,
    "timeout": 503,
    "internal": 500,
}


class RequestRefused(Exception):
    """A request the service will not answer, with the code and details it is refused with."""

    def __init__(
        self,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        *,
        headers: list[tuple[bytes, bytes]] | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.status = STATUS[code]
        self.message = message
        self.details = details or []
        self.headers = headers or []  # of the answer: a 429's Retry-After, a 401's WWW-Authenticate

    def body(self) -> bytes:
        error = {"status": self.status, "code": self.code, "message": self.message, "details": self.details}
        return json.dumps({"error": error}).encode()

    @classmethod
    def from_validation(cls, exc: ValidationError, *, prefix: str = "") -> RequestRefused:
        details = [{"field": field_path(error["loc"], prefix), "message": error["msg"]} for error in exc.errors()]
        fields = ", ".join(dict.fromkeys(d["field"] for d in details))
        return cls("invalid_request", f"invalid request: {fields}", details)


def field_path(location: tuple, prefix: str = "") -> str:
    """('items', 0, 'horizon') -> 'items[0].horizon'."""
    path = prefix
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"
