"""Online features that outlive an online-store outage: a timeout per read, a circuit breaker whose
probes never hold up a request, and the last complete features each series was served with.

While the store fails (an error, or no answer within the timeout) items are answered from the
last known features and marked degraded. After `failures` consecutive failures the circuit opens:
no request reads the store. After `cooldown_s` one read probes the store in the background while
the request that set it off is answered from the last known features; its success closes the
circuit. A store that answers but lacks a series, or holds it incomplete (emptied by a restart,
or being re-materialized), is served around the same way, per series: an answer marked fresh is
always computed from complete features.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

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
Permit = Literal["read", "probe", "skip"]
MERGE_EVERY_READS = 64  # merging costs ~ms per thousand series: amortized, not paid per batch
WARN_EVERY_S = 10.0  # a store that lacks series is logged at this pace, not once per batch


class CircuitBreaker:
    """closed -> open after `failures` consecutive failures; open -> half-open after `cooldown_s`, when
    one caller is permitted a probe; its success closes the circuit and its failure reopens it. A probe
    that has not reported within another cool-down is presumed lost, and the next caller probes again."""

    def __init__(self, *, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic):
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probe_started: float | None = None

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half_open" if self._probe_started is not None or self._cooled_down() else "open"

    def permit(self) -> Permit:
        """'read' while closed; 'probe' for the one caller let through after the cool-down; else 'skip'."""
        with self._lock:
            if self._opened_at is None:
                return "read"
            probing = self._probe_started is not None and self._clock() - self._probe_started < self.cooldown_s
            if probing or not self._cooled_down():
                return "skip"
            self._probe_started = self._clock()
            return "probe"

    def succeeded(self) -> None:
        with self._lock:
            self._consecutive, self._opened_at, self._probe_started = 0, None, None

    def failed(self) -> None:
        with self._lock:
            self._consecutive += 1
            if self._probe_started is not None or self._consecutive >= self.failures:
                self._opened_at = self._clock()
            self._probe_started = None

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self.cooldown_s


@dataclass(frozen=True)
class Features:
    """One row of features per requested pair, in order, and which rows are last-known copies."""

    frame: pd.DataFrame
    degraded: np.ndarray


class ResilientFeatures:
    """An OnlineFeatureReader behind a timeout and a circuit breaker, with the last complete rows."""

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
        self._warned_at = -WARN_EVERY_S
        self._loaded = False

    @property
    def loaded(self) -> bool:
        """Whether the store was read at all (at start-up); it may have held nothing."""
        return self._loaded

    @property
    def holds_any(self) -> bool:
        """Whether complete features of any series were ever read, so that something can be served."""
        return bool(self._row_of) or any(len(frame) for frame in self._pending)

    def warm(self, pairs: Sequence[Pair], *, chunk: int = 1000) -> list[Pair]:
        """Read these pairs now (at start-up, or to find series the store did not hold then);
        returns the pairs the store holds no complete features for."""
        missing: list[Pair] = []
        for start in range(0, len(pairs), chunk):
            frame, lacking = self._timed_read(pairs[start : start + chunk], timeout_s=max(30.0, self.timeout_s))
            self._remember(frame, merge=True)
            missing += lacking
        self._loaded = True
        return missing

    def holds(self, pair: Pair) -> bool:
        """Whether complete features of this series were ever read (others are refused before batching)."""
        return pair in self._row_of

    def lookup(self, pairs: Sequence[Pair]) -> Features:
        """Fresh features where the store answers in time with complete ones; the last known ones otherwise,
        marked degraded."""
        permit = self.breaker.permit()
        if permit == "read":
            try:
                frame, missing = self._timed_read(pairs, timeout_s=self.timeout_s)
            except STORE_FAILURES as exc:
                self._failed(exc)
            else:
                self._succeeded(frame)
                if not missing:
                    return Features(frame, np.zeros(len(frame), dtype=bool))
                return self._with_last_known(pairs, frame, missing)
        elif permit == "probe":
            self._probe(pairs)  # in the background: the store was down a moment ago, nobody waits for it
        else:
            metrics.FEATURE_LOOKUP.labels(outcome="skipped").observe(0.0)
        return self._last_known(pairs)

    def fresh(self, pairs: Sequence[Pair]) -> bool:
        """Whether a lookup of these pairs now gets complete, current features for at least one (readiness)."""
        if not pairs:
            return False
        fresh = not self.lookup(pairs).degraded.all()
        metrics.ONLINE_FRESH.set(int(fresh))
        return fresh

    def _timed_read(self, pairs: Sequence[Pair], *, timeout_s: float) -> tuple[pd.DataFrame, list[Pair]]:
        started = time.perf_counter()
        outcome = "failed"
        try:
            result = self._pool.submit(self.reader.read, pairs).result(timeout=timeout_s)
            outcome = "ok"
            return result
        finally:
            metrics.FEATURE_LOOKUP.labels(outcome=outcome).observe(time.perf_counter() - started)

    def _probe(self, pairs: Sequence[Pair]) -> None:
        def report(done: Future) -> None:
            failure = done.exception()
            if failure is None:
                self._succeeded(done.result()[0])
            elif isinstance(failure, STORE_FAILURES):
                self._failed(failure)
            else:  # a defect, not an outage: said loudly; the circuit stays open
                log.error("online store probe failed unexpectedly", exc_info=failure)
                self._failed(failure)

        self._pool.submit(self.reader.read, list(pairs)).add_done_callback(report)

    def _succeeded(self, frame: pd.DataFrame) -> None:
        self.breaker.succeeded()
        metrics.CIRCUIT_OPEN.set(0)
        self._remember(frame)

    def _failed(self, exc: BaseException) -> None:
        self.breaker.failed()
        metrics.CIRCUIT_OPEN.set(self.breaker.state != "closed")
        log.warning("online feature read failed (%s: %s); serving last known features", type(exc).__name__, exc)

    def _remember(self, frame: pd.DataFrame, *, merge: bool = False) -> None:
        """Keep what was read; merged into the last known rows every few reads, not on each one."""
        with self._lock:
            self._pending.append(frame)
            if merge or self._last is None or len(self._pending) >= MERGE_EVERY_READS:
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
        """The store answered without complete features for some series: those come from the last known rows."""
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            examples = ", ".join(f"{s}/{k}" for s, k in missing[:5])
            log.warning(
                "the online store holds no complete features for %d of %d series read (e.g. %s); serving their "
                "last known features",
                len(missing),
                len(pairs),
                examples,
            )
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
                raise FeatureStoreError(
                    f"no complete features were ever read for {', '.join(unheld)} and the store cannot provide them"
                )
            frame = self._last.iloc[[self._row_of[pair] for pair in pairs]].reset_index(drop=True)
        metrics.DEGRADED_ITEMS.inc(len(pairs))
        return Features(frame, np.ones(len(pairs), dtype=bool))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
