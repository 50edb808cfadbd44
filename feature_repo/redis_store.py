"""Feast's Redis online store with the client's timeouts and retries set, so that a dead Redis is known at once.

redis-py retries a refused connection three times with exponential backoff by default: 12.9 s
before a read reports that Redis is down, far past any request deadline. Feast builds the client
from its connection string, which cannot carry a retry policy, so this subclass (loaded by Feast
from `online_store.type` in feature_store.yaml, its documented extension point) builds it.
"""

from __future__ import annotations

from typing import Literal

from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig, RedisType
from pydantic import Field
from redis import Redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

STORE_TYPE = "feature_repo.redis_store.FailFastRedisOnlineStore"


class FailFastRedisOnlineStoreConfig(RedisOnlineStoreConfig):
    """Feast's Redis config, plus the client's timeouts and retries (the chain's defaults; the service sets its own)."""

    type: Literal["feature_repo.redis_store.FailFastRedisOnlineStore"] = STORE_TYPE  # type: ignore[assignment]
    connect_timeout_s: float = Field(default=5.0, gt=0, description="Longest wait to open a connection.")
    socket_timeout_s: float = Field(default=5.0, gt=0, description="Longest wait for one reply.")
    retries: int = Field(default=3, ge=0, description="Retries of a failed command (with backoff); 0 fails at once.")


class FailFastRedisOnlineStore(RedisOnlineStore):
    def _get_client(self, online_store_config: FailFastRedisOnlineStoreConfig):
        if self._client is None and online_store_config.redis_type == RedisType.redis:
            nodes, kwargs = self._parse_connection_string(online_store_config.connection_string)
            self._client = Redis(
                host=nodes[0]["host"],
                port=int(nodes[0]["port"]),
                socket_connect_timeout=online_store_config.connect_timeout_s,
                socket_timeout=online_store_config.socket_timeout_s,
                retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), online_store_config.retries),
                **kwargs,
            )
        return super()._get_client(online_store_config)
