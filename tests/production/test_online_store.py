"""The online store on a Redis of the test's own: killed, restarted empty, and refilled one view at a time."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from feature_repo.definitions import FEATURE_SERVICE_NAME
from feature_repo.freshness import online_lag
from feature_repo.store import materialize_span, open_store_failing_fast
from serving.online import OnlineFeatureReader
from serving.resilience import CircuitBreaker, ResilientFeatures
from tests.conftest import DAILY, Clock, RedisServer, apply_features, production_settings, wait_until

pytestmark = pytest.mark.production
TIMEOUT_S = 0.3


def test_a_dead_redis_is_known_at_once_and_a_restarted_empty_one_is_never_served_as_fresh(
    tmp_path: Path, own_redis: RedisServer, small_data
) -> None:
    settings = production_settings(tmp_path, redis_url=own_redis.url)
    store, features = apply_features(settings, small_data)
    latest = features["event_timestamp"].max().to_pydatetime()
    materialize_span(store, latest - timedelta(days=3), latest)
    pairs = list(features[["store_id", "sku_id"]].drop_duplicates().itertuples(index=False, name=None))
    assert online_lag(store, settings.feast_dir).current

    reader = OnlineFeatureReader(
        open_store_failing_fast(settings.feast_dir, timeout_s=TIMEOUT_S), FEATURE_SERVICE_NAME, DAILY
    )
    clock = Clock()
    served = ResilientFeatures(
        reader, timeout_s=TIMEOUT_S, breaker=CircuitBreaker(failures=2, cooldown_s=5.0, clock=clock)
    )
    assert served.warm(pairs) == [] and served.fresh(pairs[:4])
    healthy = served.lookup(pairs).frame

    own_redis.kill()
    started = time.perf_counter()
    with pytest.raises(redis.ConnectionError):
        reader.read(pairs[:4])
    assert time.perf_counter() - started < 0.2, "redis-py's default retries took 12.9 s to say so"
    for _ in range(2):  # two failures open the circuit; each answer is the last known one, marked
        assert served.lookup(pairs).degraded.all()
    assert served.breaker.state == "open" and not served.fresh(pairs[:4])

    own_redis.start()  # as a Redis without persistence comes back: empty
    clock.now = 5.0
    assert served.lookup(pairs[:4]).degraded.all(), "the probe runs in the background: nobody waits for it"
    wait_until(lambda: served.breaker.state == "closed", "the probe closes the circuit")
    empty = served.lookup(pairs)
    assert empty.degraded.all() and empty.frame.equals(healthy), "answered, but from the last known features"
    assert not served.fresh(pairs[:4]), "readiness: nothing fresh to serve"
    assert not online_lag(store, settings.feast_dir).current

    # A re-materialization is seen half done: history written, prices not yet, or of an older period.
    store.materialize(start_date=latest - timedelta(days=3), end_date=latest, feature_views=["demand_history_fv"])
    assert reader.read(pairs)[1] == pairs, "history without prices is not complete"
    store.materialize(start_date=latest - timedelta(days=3), end_date=latest - timedelta(days=1),
                      feature_views=["price_promo_fv"])  # fmt: skip
    assert reader.read(pairs)[1] == pairs, "history of one period and prices of another are not complete"
    lag = online_lag(store, settings.feast_dir)
    assert not lag.current and len(lag.behind) == len(pairs) and "lacks complete" in lag.describe()
    assert served.lookup(pairs).frame.equals(healthy)

    materialize_span(store, latest - timedelta(days=3), latest)
    assert online_lag(store, settings.feast_dir).current
    refilled = served.lookup(pairs)
    assert not refilled.degraded.any() and refilled.frame.equals(healthy) and served.fresh(pairs[:4])
    served.close()
