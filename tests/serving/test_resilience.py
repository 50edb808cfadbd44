"""The circuit breaker, and online features that survive a real SQLite online store that stops answering."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demandops.errors import FeatureStoreError
from demandops.settings import Settings
from feature_repo.definitions import FEATURE_SERVICE_NAME
from feature_repo.store import materialize_span
from serving.online import OnlineFeatureReader
from serving.resilience import CircuitBreaker, ResilientFeatures
from tests.conftest import DAILY, Clock, apply_features, wait_until

LOOKUP_TIMEOUT_S = 0.3


def test_the_breaker_opens_after_consecutive_failures_and_one_probe_closes_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, cooldown_s=5.0, clock=clock)
    breaker.failed()
    breaker.succeeded()  # a success in between resets the count
    for _ in range(2):
        breaker.failed()
    assert breaker.state == "closed" and breaker.permit() == "read"
    breaker.failed()
    assert breaker.state == "open" and breaker.permit() == "skip"

    clock.now = 5.0
    assert breaker.permit() == "probe", "after the cool-down one probe goes through"
    assert breaker.state == "half_open" and breaker.permit() == "skip", "and only one"
    breaker.failed()
    assert breaker.state == "open" and breaker.permit() == "skip", "a failed probe opens the circuit again"
    clock.now = 10.0
    assert breaker.permit() == "probe"
    clock.now = 15.0
    assert breaker.permit() == "probe", "a probe that never reported is presumed lost after a cool-down"
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.permit() == "read"


@pytest.fixture
def online(settings: Settings, small_data) -> tuple[OnlineFeatureReader, list[tuple[str, str]], Path]:
    store, features = apply_features(settings, small_data)
    latest = features["event_timestamp"].max()
    materialize_span(store, (latest - timedelta(days=3)).to_pydatetime(), latest.to_pydatetime())
    pairs = list(features[["store_id", "sku_id"]].drop_duplicates().itertuples(index=False, name=None))
    return OnlineFeatureReader(store, FEATURE_SERVICE_NAME, DAILY), pairs, settings.feast_dir / "online_store.db"


@contextmanager
def locked(database: Path) -> Iterator[None]:
    """Hold an exclusive lock on the SQLite online store: every read blocks, as on a hung server."""
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def test_a_hung_store_is_served_around_from_last_known_features_and_recovers(online) -> None:
    reader, pairs, database = online
    assert database.is_file(), "the test must lock the store the reader reads"
    clock = Clock()
    features = ResilientFeatures(
        reader, timeout_s=LOOKUP_TIMEOUT_S, breaker=CircuitBreaker(failures=2, cooldown_s=5.0, clock=clock)
    )
    assert features.warm(pairs) == [] and features.loaded and features.fresh(pairs[:2])
    asked = pairs[:5]
    fresh = features.lookup(asked)
    assert not fresh.degraded.any()

    with locked(database):
        for attempt in range(2):
            started = time.perf_counter()
            served = features.lookup(asked)
            waited = time.perf_counter() - started
            assert served.degraded.all() and waited < LOOKUP_TIMEOUT_S + 0.5, f"attempt {attempt}: waited {waited:.2f}s"
            pd.testing.assert_frame_equal(served.frame, fresh.frame)
        assert features.breaker.state == "open"
        started = time.perf_counter()
        assert features.lookup(asked).degraded.all()
        assert time.perf_counter() - started < LOOKUP_TIMEOUT_S, "an open circuit does not wait for the store"

    clock.now = 5.0  # the cool-down is over: the next lookup sets off a probe, and does not wait for it
    started = time.perf_counter()
    assert features.lookup(asked).degraded.all()
    assert time.perf_counter() - started < LOOKUP_TIMEOUT_S
    wait_until(lambda: features.breaker.state == "closed", "the probe finds the store answering again")
    recovered = features.lookup(asked)
    assert not recovered.degraded.any()
    pd.testing.assert_frame_equal(recovered.frame, fresh.frame)
    features.close()


def test_a_series_written_in_one_view_and_not_yet_the_other_is_served_degraded_from_complete_features(
    online, settings: Settings
) -> None:
    """What a reader meets while a new period is materialized, one view after the other."""
    reader, pairs, _database = online
    features = ResilientFeatures(reader, timeout_s=LOOKUP_TIMEOUT_S, breaker=CircuitBreaker(failures=3, cooldown_s=5))
    features.warm(pairs)
    first_store = pairs[0][0]
    asked = [p for p in pairs if p[0] == first_store][:3] + [p for p in pairs if p[0] != first_store][:3]
    before = features.lookup(asked)
    assert not before.degraded.any()

    store = reader.store
    latest = sorted((settings.feast_dir / "sales_features").glob("*.parquet"))[-1]
    rows = pd.read_parquet(latest)
    halfway = rows[rows["store_id"] == first_store].copy()  # the first store's series get the next period's history
    halfway["event_timestamp"] = halfway["event_timestamp"] + timedelta(days=1)
    halfway["lag_1"] = halfway["lag_1"] + 50
    store.write_to_online_store(
        "demand_history_fv", halfway[["store_id", "sku_id", "event_timestamp", *DAILY.history_features]]
    )
    during = features.lookup(asked)
    written = np.array([pair[0] == first_store for pair in asked])
    assert np.array_equal(during.degraded, written), "half-written series are degraded, the others fresh"
    pd.testing.assert_frame_equal(during.frame, before.frame)  # never the new history with the old prices
    features.close()


def test_series_never_read_cannot_be_served_while_the_store_fails(online) -> None:
    reader, pairs, database = online
    features = ResilientFeatures(reader, timeout_s=LOOKUP_TIMEOUT_S, breaker=CircuitBreaker(failures=1, cooldown_s=60))
    features.warm(pairs[:3])
    assert features.holds(pairs[0]) and not features.holds(pairs[3])
    never_read = f"no complete features were ever read for {pairs[3][0]}/{pairs[3][1]}"
    with locked(database), pytest.raises(FeatureStoreError, match=never_read):
        features.lookup([pairs[0], pairs[3]])
    assert np.array_equal(features.lookup([pairs[0]]).degraded, [True]), "the circuit is open: last known rows"
    features.close()
