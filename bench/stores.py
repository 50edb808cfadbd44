"""What the Feast benchmarks share: daily features as the default settings define them, a store of
their own per variant, a retrieval and a timer."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from feast import FeatureStore, RepoConfig

from demandops.frequency import longest_span
from demandops.settings import DailyCadence
from feature_repo.definitions import FEATURE_SERVICE_NAME, feature_objects
from feature_repo.retrieval import historical_features
from training.features import FeatureSpec

DAILY = FeatureSpec.for_cadence("D", DailyCadence())
DAILY_TTL = longest_span(DailyCadence().feature_ttl_periods, "D")


def make_store(root: Path, name: str, online: dict, offline: str = "duckdb") -> FeatureStore:
    """A store of its own for one variant, its registry applied with the features under root/sources."""
    config = RepoConfig(
        project=f"bench_{name}",
        provider="local",
        registry=str(root / f"{name}_registry.db"),
        online_store=online,
        offline_store={"type": offline},
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config)
    store.apply(feature_objects(root / "sources", DAILY, DAILY_TTL))
    return store


def retrieve(store: FeatureStore, entities: pd.DataFrame) -> pd.DataFrame:
    """The training-set join the chain runs (one row per entity row, checked)."""
    return historical_features(store, entities, FEATURE_SERVICE_NAME)


def seconds(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start
