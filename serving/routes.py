"""The service's API routes and their version: the one owner of every path a consumer calls.

Consumers call /v1/forecast, /v1/replenishment and /v1/metadata. The unversioned paths of earlier
releases stay for one release as aliases of the same routes (the gateway serves them as their /v1
route) and say so on every answer: `Deprecation` (RFC 9745: since when) and a `Link` to the
successor route. A later, incompatible API gets /v2 beside /v1, never a change under /v1.
"""

from __future__ import annotations

from datetime import UTC, datetime

API_VERSION = "v1"
FORECAST = f"/{API_VERSION}/forecast"
REPLENISHMENT = f"/{API_VERSION}/replenishment"
METADATA = f"/{API_VERSION}/metadata"
BATCHED_ROUTES = (FORECAST, REPLENISHMENT)
API_ROUTES = (*BATCHED_ROUTES, METADATA)

# unversioned alias -> the route it serves
ALIASES = {path.removeprefix(f"/{API_VERSION}"): path for path in API_ROUTES}
ALIASES_DEPRECATED_ON = datetime(2026, 12, 3, tzinfo=UTC)


def deprecation_headers(successor: str) -> list[tuple[bytes, bytes]]:
    """The headers an alias's answer carries: deprecated since when, and the route to call instead."""
    since = f"@{int(ALIASES_DEPRECATED_ON.timestamp())}"
    return [(b"deprecation", since.encode()), (b"link", f'<{successor}>; rel="successor-version"'.encode())]
