"""Feast itself, on a real registry, file offline store and SQLite online store."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from demandops.settings import Settings
from feature_repo.definitions import FEATURE_SERVICE_NAME, feature_objects
from feature_repo.store import feature_source_path, open_store
from serving.predictor import online_features
from training.dataset import entity_rows
from training.features import DAILY, compute_features


@pytest.fixture
def applied(settings: Settings, small_sales: pd.DataFrame):
    settings.ensure_state_dirs()
    features = compute_features(small_sales)
    features.to_parquet(feature_source_path(settings), index=False)
    store = open_store(settings)
    store.apply(feature_objects(feature_source_path(settings)))
    return store, features


def test_join_returns_one_row_per_entity_row_with_the_features_of_that_day(applied, small_sales) -> None:
    store, features = applied
    entities = entity_rows(small_sales, horizon=7).sample(200, random_state=0)
    joined = store.get_historical_features(
        entity_df=entities, features=store.get_feature_service(FEATURE_SERVICE_NAME)
    ).to_df()
    assert len(joined) == len(entities)
    expected = entities.merge(features, on=["store_id", "sku_id", "event_timestamp"])
    merged = joined.merge(expected, on=["store_id", "sku_id", "event_timestamp"], suffixes=("", "_direct"))
    assert len(merged) == len(entities)
    pd.testing.assert_series_equal(
        merged["lag_7"].astype("float32"), merged["lag_7_direct"].astype("float32"), check_names=False
    )


def test_values_stamped_after_the_entity_row_never_leak(applied, small_sales) -> None:
    store, features = applied
    series = features[["store_id", "sku_id"]].iloc[0]
    day = features["event_timestamp"].sort_values().unique()[60]
    # Ask half a day before the features of `day` exist: the join must return the previous day's values.
    entity = pd.DataFrame(
        {
            "store_id": [series["store_id"]],
            "sku_id": [series["sku_id"]],
            "event_timestamp": [day - timedelta(hours=12)],
        }
    )
    joined = store.get_historical_features(entity_df=entity, features=["demand_history_fv:lag_1"]).to_df()
    own = features[(features["store_id"] == series["store_id"]) & (features["sku_id"] == series["sku_id"])]
    previous_day = own[own["event_timestamp"] == day - timedelta(days=1)]["lag_1"].item()
    assert joined["lag_1"].item() == pytest.approx(previous_day)


def test_online_store_serves_the_latest_day_in_one_lookup(applied) -> None:
    store, features = applied
    latest = features["event_timestamp"].max()
    store.materialize(
        start_date=(latest - timedelta(days=3)).to_pydatetime(),
        end_date=(latest + timedelta(days=1)).to_pydatetime(),
    )
    pairs = list(features[["store_id", "sku_id"]].drop_duplicates().itertuples(index=False, name=None))
    online = online_features(store, FEATURE_SERVICE_NAME, DAILY.feature_names, pairs)
    assert len(online) == len(pairs)
    assert (online["event_timestamp"] == latest).all()
    newest = features[features["event_timestamp"] == latest].set_index(["store_id", "sku_id"])["mean_28"]
    got = online.set_index(["store_id", "sku_id"])["mean_28"]
    pd.testing.assert_series_equal(
        got.sort_index(), newest.sort_index().astype(got.dtype), check_names=False, rtol=1e-6
    )
