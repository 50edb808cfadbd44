"""API keys at the gateway: who is calling, and whether they may, before a request is read or batched.

With keys required (Settings.keys_required), a request to an API route needs `Authorization: Bearer
KEY` with a key of `demandops keys create`:
- no key, a malformed header, or a key not known -> 401 `unauthenticated`, with WWW-Authenticate;
- a revoked key -> 403 `forbidden`;
- over the key's rate (requests per second) -> 429 `rate_limited`; over its quota (requests per 24
  hours from the first of the window) -> 429 `quota_exceeded`; both with Retry-After, the seconds
  until the window that refused resets.

The key table (serving/api_keys.py) is read when the first request arrives, then again in a thread
once it is `keys_refresh_s` old, while requests go on with the table read before: only the first
requests wait on the database. A revocation takes effect within about that time. If the database
cannot be read, the last table read is kept (and the failure logged); with none read yet, requests
get 503 `not_ready`.

Counting uses the `limits` library's fixed-window counters, in the storage that
Settings.rate_limit_storage_uri names: Redis in production, so that every worker and replica of the
service counts against one rate; this process's memory locally (one worker). Each worker takes the
counts a lease at a time (serving/key_counts.py): a key never gets more than its limit, and at most
1% less per worker. While that storage fails, requests with a valid key are served uncounted
(outcome `uncounted`, one log line per 30 s): a Redis outage must not stop the forecasts, which
ride it out on last known features. Each key's requests are counted in /metrics by outcome, added
once a second.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import storage_from_string
from sqlalchemy.exc import SQLAlchemyError

from serving import metrics
from serving.api_keys import ApiKey, KeyStore, digest_of
from serving.errors import RequestRefused
from serving.key_counts import LeasedCounts

log = logging.getLogger(__name__)

AUTHORIZATION = b"authorization"
CHALLENGE = [(b"www-authenticate", b'Bearer realm="demandops"')]
NAMESPACE = "demandops-key"  # the first part of every count's name in the storage
STORAGE_WARNING_EVERY_S = 30.0  # one log line per this while the counts' storage fails
PUBLISH_EVERY_S = 1.0  # how often the counts of requests reach /metrics


class KeyGuard:
    def __init__(
        self,
        open_store: Callable[[], KeyStore],
        storage_uri: str,
        *,
        refresh_s: float,
        timeout_s: float = 0.3,
        precision: float = 0.01,
    ):
        self._open_store = open_store  # opened on first use, in the serving worker
        self._store: KeyStore | None = None
        self._refresh_s = refresh_s
        self._callers: dict[str, _Caller] | None = None  # by the digest of the key
        self._read_at = -math.inf
        self._reading = asyncio.Lock()
        self._refreshing: asyncio.Future | None = None
        # redis-py (a dependency already) rather than `limits`' default Redis client, coredis; a dead
        # Redis must be known within `timeout_s`, as the online store's is.
        redis = {"implementation": "redispy", "socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
        options = redis if storage_uri.startswith("async+redis") else {}
        storage = storage_from_string(storage_uri, wrap_exceptions=True, **options)
        self._counts = LeasedCounts(storage, precision=precision)
        self._storage_warned_at = -math.inf
        self._counters: dict[tuple[str, str], object] = {}  # labelled children, looked up once
        self._pending: Counter[tuple[str, str]] = Counter()  # counts not yet in the metrics
        self._publishing = False  # a publish() is scheduled

    async def admit(self, headers: dict[bytes, bytes]) -> str:
        """The name of the key the request carries; raises RequestRefused when it may not be served."""
        token, wrong = _bearer_token(headers)
        callers = self._callers
        if callers is None or time.monotonic() - self._read_at >= self._refresh_s:
            callers = await self._current_callers()
        caller = callers.get(digest_of(token)) if token is not None else None
        if caller is None:
            self._count("-", "unauthenticated")
            raise RequestRefused("unauthenticated", wrong or "the API key is not known", headers=CHALLENGE)
        key = caller.key
        if key.revoked:
            self._count(key.name, "revoked")
            raise RequestRefused(
                "forbidden", f"the API key {key.name!r} was revoked at {key.revoked_at:%Y-%m-%d %H:%M} UTC"
            )
        counted = True
        for limit in caller.limits:
            counted &= await self._hit(key, limit)
        self._count(key.name, "admitted" if counted else "uncounted")
        return key.name

    async def _hit(self, key: ApiKey, limit: _Limit) -> bool:
        """Count the request against `limit`; raises RequestRefused over it; False when it could not be counted."""
        try:
            wait_s = await self._counts.take(limit.item, limit.storage_key)
        except StorageError as exc:
            self._storage_failed(exc)
            return False
        if wait_s is None:
            return True
        retry_after = max(1, math.ceil(wait_s))
        self._count(key.name, limit.code)
        raise RequestRefused(
            limit.code, f"the API key {key.name!r} is over its limit of {limit.what}; retry in {retry_after} s",
            headers=[(b"retry-after", str(retry_after).encode())],
        )  # fmt: skip

    async def _current_callers(self) -> dict[str, _Caller]:
        """The table, read again in the background once it is `refresh_s` old."""
        if self._callers is not None:
            if self._refreshing is None:  # requests go on with the table read before meanwhile
                self._refreshing = asyncio.ensure_future(self._refresh())
            return self._callers
        async with self._reading:  # no table yet: the first request reads it, the others wait for it
            if self._callers is None and time.monotonic() - self._read_at >= self._refresh_s:
                await asyncio.to_thread(self._read_table)
        if self._callers is None:
            raise RequestRefused("not_ready", "the API key table cannot be read yet; see the service's log")
        return self._callers

    async def _refresh(self) -> None:
        try:
            await asyncio.to_thread(self._read_table)
        finally:
            self._refreshing = None

    def _read_table(self) -> None:
        try:
            self._store = self._store or self._open_store()
            self._callers = {digest: _caller_of(key) for digest, key in self._store.by_digest().items()}
        except SQLAlchemyError as exc:  # keep serving the keys read last; a revocation waits for the database
            log.warning("the API key table cannot be read (%s); keeping the table read before", exc)
        self._read_at = time.monotonic()

    def _storage_failed(self, exc: StorageError) -> None:
        """The request is served uncounted (its key already checked against the table), as forecasts are
        served from last known features while the online store is down; logged once per 30 s."""
        if time.monotonic() - self._storage_warned_at > STORAGE_WARNING_EVERY_S:
            self._storage_warned_at = time.monotonic()
            log.warning("rate and quota counts cannot be stored (%s); requests are served uncounted", exc.storage_error)

    def _count(self, key: str, outcome: str) -> None:
        """Counted in memory and added to the Prometheus counter once a second: an update of a counter in
        BentoML's multiprocess mode writes a shared file, which per request cost a measurable share
        of the throughput (serving/metrics.py)."""
        self._pending[(key, outcome)] += 1
        if not self._publishing:  # within a second of the first count not yet published
            self._publishing = True
            asyncio.get_running_loop().call_later(PUBLISH_EVERY_S, self.publish)

    def publish(self) -> None:
        """Add the counts not yet published to /metrics' counter."""
        pending, self._pending, self._publishing = self._pending, Counter(), False
        for (key, outcome), count in pending.items():
            counter = self._counters.get((key, outcome))
            if counter is None:
                counter = self._counters[(key, outcome)] = metrics.KEY_REQUESTS.labels(key=key, outcome=outcome)
            counter.inc(count)


@dataclass(frozen=True)
class _Limit:
    item: RateLimitItem
    storage_key: str  # the count's name in the storage
    code: str  # of the refusal over it
    what: str  # how it reads in the refusal's message


@dataclass(frozen=True)
class _Caller:
    """A key of the table, with its limits built once per read of the table: building them per request
    was half the CPU of a check."""

    key: ApiKey
    limits: tuple[_Limit, ...]


def _caller_of(key: ApiKey) -> _Caller:
    limits = []
    if key.rate_per_s is not None:
        rate = RateLimitItemPerSecond(key.rate_per_s)
        what = f"{key.rate_per_s} requests per second"
        limits.append(_Limit(rate, rate.key_for(NAMESPACE, key.name), "rate_limited", what))
    if key.daily_quota is not None:
        quota = RateLimitItemPerDay(key.daily_quota)
        what = f"{key.daily_quota} requests per day"
        limits.append(_Limit(quota, quota.key_for(NAMESPACE, key.name), "quota_exceeded", what))
    return _Caller(key, tuple(limits))


def _bearer_token(headers: dict[bytes, bytes]) -> tuple[str | None, str]:
    """The key of an `Authorization: Bearer KEY` header, or None and what is wrong with the request."""
    value = headers.get(AUTHORIZATION)
    if value is None:
        return None, "an API key is required: send `Authorization: Bearer KEY`"
    scheme, _, token = value.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, "the Authorization header must be `Bearer KEY`"
    return token.strip(), ""
