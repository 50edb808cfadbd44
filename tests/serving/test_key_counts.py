"""Leased counts (serving/key_counts.py) on `limits`' own storages: never more than the limit, at most a
lease per worker less, one storage call per lease, refusals from memory, and the window's reset."""

from __future__ import annotations

import asyncio
import time

from limits import RateLimitItemPerDay, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage

from serving.key_counts import LeasedCounts


class CountedStorage(MemoryStorage):
    """limits' in-memory storage, counting the increments it is asked for (each a Redis round trip there)."""

    def __init__(self) -> None:
        super().__init__()
        self.increments = 0

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        self.increments += 1
        return await super().incr(key, expiry, amount)


def test_two_workers_sharing_a_count_never_pass_the_limit_and_lose_at_most_a_lease_each() -> None:
    storage = CountedStorage()
    workers = [LeasedCounts(storage, precision=0.01) for _ in range(2)]  # leases of 10 for a quota of 1,000
    quota = RateLimitItemPerDay(1000)

    async def requests() -> list[float | None]:
        # Uneven traffic: worker 0 takes three requests for each one of worker 1's.
        return [await workers[n % 4 == 3].take(quota, quota.key_for("key", "planner")) for n in range(1500)]

    outcomes = asyncio.run(requests())
    admitted = sum(outcome is None for outcome in outcomes)
    assert 1000 - 2 * 10 <= admitted <= 1000, admitted
    assert all(86_000 < outcome <= 86_400 for outcome in outcomes if outcome is not None), "seconds to the reset"
    calls = storage.increments
    assert calls <= 1000 // 10 + 2 * 2, f"{calls} storage calls: one per lease, and one per worker once spent"


def test_a_small_limit_is_counted_request_by_request_and_its_window_resets() -> None:
    storage = CountedStorage()
    counts = LeasedCounts(storage, precision=0.01)
    rate = RateLimitItemPerSecond(3)

    async def burst() -> list[float | None]:
        return [await counts.take(rate, rate.key_for("key", "fast")) for _ in range(6)]

    outcomes = asyncio.run(burst())
    first_refusal = next(n for n, outcome in enumerate(outcomes) if outcome is not None)
    assert sum(o is None for o in outcomes) == 3 and first_refusal == 3, outcomes
    assert all(0 < outcome <= 1 for outcome in outcomes[3:]), outcomes
    assert storage.increments == 4, "three leases of one, one refused lease; the rest refused from memory"
    time.sleep(max(outcomes[3:]) + 0.05)  # the window's own end, as the refusal gave it
    assert asyncio.run(counts.take(rate, rate.key_for("key", "fast"))) is None, "a new window admits again"
