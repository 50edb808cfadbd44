"""Online features that outlive an online-store outage: a timeout per read, a circuit breaker, and
the last features each series was served with.

While the store fails (an error, or no answer within the timeout) items are answered from the
last known features and marked degraded. After `failures` consecutive failures the circuit opens
and reads stop for `cooldown_s`, so a dead store costs no request its timeout; then one read
probes the store, and a success closes the circuit again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from redis.exceptions import RedisError

from demandops.errors import FeatureStoreError
from serving import metrics
from serving.online import OnlineFeatureReader

log = logging.getLogger(__name__)

# How an online store fails: its client's errors, or no answer in time. Anything else is a bug
# and is raised, not served around.
STORE_FAILURES = (FeatureStoreError, TimeoutError, OSError, sqlite3.Error, RedisError)
Pair = tuple[str, str]
MERGE_EVERY_READS = 64  # merging costs ~ms per thousand series: amortized, not paid per batch


class CircuitBreaker:
    """closed -> open after `failures` consecutive failures; open -> half-open after `cooldown_s`;
    half-open lets one call through, whose success closes the circuit and failure reopens it."""

    def __init__(self, *, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic):
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half_open" if self._probing or self._cooled_down() else "open"

    def allow(self) -> bool:
        """Whether a call may go to the store now (in half-open state, only the one probe)."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._probing or not self._cooled_down():
                return False
            self._probing = True
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._consecutive, self._opened_at, self._probing = 0, None, False

    def failed(self) -> None:
        with self._lock:
            self._consecutive += 1
            if self._probing or self._consecutive >= self.failures:
                self._opened_at = self._clock()
            self._probing = False

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self.cooldown_s


@dataclass(frozen=True)
class Features:
    """One row of features per requested pair, in order, and which rows are last-known copies."""

    frame: pd.DataFrame
    degraded: np.ndarray


class ResilientFeatures:
    """An OnlineFeatureReader behind a timeout and a circuit breaker, with the last known rows."""

    def __init__(self, reader: OnlineFeatureReader, *, timeout_s: float, breaker: CircuitBreaker):
        self.reader = reader
        self.timeout_s = timeout_s
        self.breaker = breaker
        # Reads run on their own threads so that a hung store costs a request only timeout_s.
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="online-read")
        self._lock = threading.Lock()
        self._last: pd.DataFrame | None = None
        self._pending: list[pd.DataFrame] = []
        self._row_of: dict[Pair, int] = {}

    @property
    def ready(self) -> bool:
        return self._last is not None

    def warm(self, pairs: Sequence[Pair]) -> list[Pair]:
        """Read every pair once (at start-up); returns the pairs the store holds no features for."""
        frame, missing = self._timed_read(pairs, timeout_s=max(30.0, self.timeout_s))
        self._remember(frame)
        return missing

    def holds(self, pair: Pair) -> bool:
        """Whether features of this series were ever read (unknown series are refused before batching)."""
        return pair in self._row_of

    def lookup(self, pairs: Sequence[Pair]) -> Features:
        """Fresh features when the store answers in time; otherwise the last known ones, marked degraded."""
        if self.breaker.allow():
            try:
                frame, missing = self._timed_read(pairs, timeout_s=self.timeout_s)
            except STORE_FAILURES as exc:
                self.breaker.failed()
                metrics.CIRCUIT_OPEN.set(self.breaker.state != "closed")
                log.warning("online feature read failed (%s: %s); serving last known features", type(exc).__name__, exc)
            else:
                self.breaker.succeeded()
                metrics.CIRCUIT_OPEN.set(0)
                self._remember(frame)
                if not missing:
                    return Features(frame, np.zeros(len(frame), dtype=bool))
                return self._with_last_known(pairs, frame, missing)
        else:
            metrics.FEATURE_LOOKUP.labels(outcome="skipped").observe(0.0)
        return self._last_known(pairs)

    def _timed_read(self, pairs: Sequence[Pair], *, timeout_s: float) -> tuple[pd.DataFrame, list[Pair]]:
        started = time.perf_counter()
        outcome = "failed"
        try:
            result = self._pool.submit(self.reader.read, pairs).result(timeout=timeout_s)
            outcome = "ok"
            return result
        finally:
            metrics.FEATURE_LOOKUP.labels(outcome=outcome).observe(time.perf_counter() - started)

    def _remember(self, frame: pd.DataFrame) -> None:
        """Keep what was read; merged into the last known rows every few reads, not on each one."""
        with self._lock:
            self._pending.append(frame)
            if self._last is None or len(self._pending) >= MERGE_EVERY_READS:
                self._merge()

    def _merge(self) -> None:
        frames = [self._last, *self._pending] if self._last is not None else self._pending
        latest = pd.concat(frames, ignore_index=True).drop_duplicates(["store_id", "sku_id"], keep="last")
        self._last = latest.reset_index(drop=True)
        self._row_of = {
            pair: n for n, pair in enumerate(zip(self._last["store_id"], self._last["sku_id"], strict=True))
        }
        self._pending = []

    def _with_last_known(self, pairs: Sequence[Pair], fresh: pd.DataFrame, missing: list[Pair]) -> Features:
        """The store answered but no longer holds some series: those come from the last known rows."""
        log.warning("the online store no longer holds %s; serving their last known features", missing)
        stale = self._last_known(missing).frame
        both = pd.concat([fresh, stale], ignore_index=True)
        row_of = {pair: n for n, pair in enumerate(zip(both["store_id"], both["sku_id"], strict=True))}
        frame = both.iloc[[row_of[pair] for pair in pairs]].reset_index(drop=True)
        gone = set(missing)
        return Features(frame, np.array([pair in gone for pair in pairs], dtype=bool))

    def _last_known(self, pairs: Sequence[Pair]) -> Features:
        with self._lock:
            if self._pending:
                self._merge()
            unheld = [f"{s}/{k}" for s, k in pairs if (s, k) not in self._row_of]
            if unheld:
                raise FeatureStoreError(f"no features were ever read for {', '.join(unheld)} and the store is failing")
            frame = self._last.iloc[[self._row_of[pair] for pair in pairs]].reset_index(drop=True)
        metrics.DEGRADED_ITEMS.inc(len(pairs))
        return Features(frame, np.ones(len(pairs), dtype=bool))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
