"""A key's requests counted against its limits in shared storage, several at a time.

The counts are `limits`' fixed-window counters (a Redis key per limit and API key, incremented with
its expiry, the library's own Lua script), so that every worker and replica of the service counts
against one limit. One round trip per request cost the service 130 µs of CPU, 260 µs for a key with
a rate and a quota: a fifth of its throughput (bench/keys.py). So a worker takes a lease of several
requests of the current window at once (one increment by the lease's size) and admits them from
memory; once the window's count is spent, it refuses from memory until the window resets.

A lease is `precision` of the limit, at least 1. A worker never admits more than the count it was
granted, so a key never gets more than its limit in a window. It can get less: at most the lease's
size per worker is left unspent when a window ends or when traffic moves to another worker. At the
default 1%, a rate of 20/s has leases of 1 (every request counted in Redis, exactly as without
leases) and a quota of 500,000 a day has leases of 5,000.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem
from limits.aio.storage import Storage

UNDECIDED = object()


@dataclass
class _Lease:
    window_ends: float  # a time.time(); the window's count in the storage expires then
    left: int  # requests granted to this worker and not yet admitted
    spent: bool  # the window's count is used up: refuse until it ends


class LeasedCounts:
    def __init__(self, storage: Storage, *, precision: float = 0.01, clock: Callable[[], float] = time.time):
        self._storage = storage
        self._precision = precision
        self._clock = clock
        self._leases: dict[str, _Lease] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def take(self, limit: RateLimitItem, key: str) -> float | None:
        """Count one request against `limit` under the storage's `key` (`limit.key_for(...)`, built once
        per API key: a quarter of a check's CPU when built per request); None when it is within the
        limit, else the seconds until its window resets. Raises the storage's error
        (limits.errors.StorageError) when the count cannot be taken."""
        decided = self._from_lease(key)
        if decided is not UNDECIDED:
            return decided
        async with self._locks.setdefault(key, asyncio.Lock()):  # one lease at a time per key
            decided = self._from_lease(key)  # requests that waited here use the lease just taken
            if decided is not UNDECIDED:
                return decided
            await self._renew(key, limit)
        decided = self._from_lease(key)
        # A window that ended between the increment and now: the request was counted in it.
        return None if decided is UNDECIDED else decided

    def _from_lease(self, key: str) -> float | None | object:
        """None: admitted from the lease; seconds: refused, the window is spent; UNDECIDED: no lease to go by."""
        lease, now = self._leases.get(key), self._clock()
        if lease is None or now >= lease.window_ends:
            return UNDECIDED
        if lease.left > 0:
            lease.left -= 1
            return None
        return lease.window_ends - now if lease.spent else UNDECIDED

    async def _renew(self, key: str, limit: RateLimitItem) -> None:
        size = max(1, int(limit.amount * self._precision))
        count = await self._storage.incr(key, limit.get_expiry(), amount=size)
        granted = max(0, min(size, limit.amount - (count - size)))
        now, previous = self._clock(), self._leases.get(key)
        if count == size:  # this increment opened the window
            window_ends = now + limit.get_expiry()
        elif previous is not None and now < previous.window_ends:  # the same window as the last lease
            window_ends = previous.window_ends
        else:  # a window another worker opened
            window_ends = await self._storage.get_expiry(key)
        self._leases[key] = _Lease(window_ends=window_ends, left=granted, spent=granted < size)
