"""Feast itself on a real registry and offline store, with the SQLite and the Redis online store.

The point-in-time join is compared with an independent reference (pandas merge_asof, backward,
within the TTL) on every feature; a deliberately leaky join must fail that comparison.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demandops.settings import Settings
from feature_repo.definitions import FEATURE_SERVICE_NAME, SERIES_VIEWS
from feature_repo.sources import PERIODS_DIRNAME
from feature_repo.store import materialize_span, materialize_spans
from serving.online import OnlineFeatureReader, online_features
from tests.conftest import DAILY, DAILY_TTL, apply_features, production_settings
from training.dataset import entity_rows

KEYS = ["store_id", "sku_id"]
SERIES_FEATURES = DAILY.history_features + DAILY.price_features


@pytest.fixture(params=["sqlite", "redis"])
def applied(request, settings: Settings, small_data, tmp_path):
    if request.param == "redis":
        settings = production_settings(tmp_path, redis_url=request.getfixturevalue("redis_db").url)
    return apply_features(settings, small_data)


def historical(store, entities: pd.DataFrame) -> pd.DataFrame:
    features = store.get_feature_service(FEATURE_SERVICE_NAME)
    return store.get_historical_features(entity_df=entities, features=features).to_df()


def reference_join(entities: pd.DataFrame, features: pd.DataFrame, direction: str = "backward") -> pd.DataFrame:
    """For each entity row, the newest feature row of its series stamped at or before it, within the TTL."""
    right = features.rename(columns={"event_timestamp": "feature_ts"}).sort_values("feature_ts")
    return pd.merge_asof(
        entities.sort_values("event_timestamp"),
        right,
        left_on="event_timestamp",
        right_on="feature_ts",
        by=KEYS,
        direction=direction,
        tolerance=DAILY_TTL,
    )


def assert_matches_reference(joined: pd.DataFrame, reference: pd.DataFrame) -> None:
    """Every series feature of every row equals the reference join's value (NaN where it has none)."""
    on = [*KEYS, "event_timestamp"]
    both = joined.merge(reference, on=on, suffixes=("", "_ref"), validate="one_to_one")
    assert len(both) == len(reference), "every entity row is in both joins"
    for name in SERIES_FEATURES:
        got = both[name].to_numpy("float32")
        want = both[f"{name}_ref"].to_numpy("float32")
        same = np.isclose(got, want, rtol=1e-6, equal_nan=True)
        assert same.all(), f"{name}: {(~same).sum()} rows differ from the point-in-time reference"


def entities_sample(sales: pd.DataFrame, n: int = 300) -> pd.DataFrame:
    rows = entity_rows(sales, 7, DAILY).sample(n, random_state=0)[[*KEYS, "event_timestamp"]]
    # Half of them asked at noon, between two feature stamps.
    shifted = rows.iloc[: n // 2].assign(event_timestamp=lambda f: f["event_timestamp"] + timedelta(hours=12))
    return pd.concat([shifted, rows.iloc[n // 2 :]], ignore_index=True).drop_duplicates([*KEYS, "event_timestamp"])


def test_join_equals_the_point_in_time_reference_on_every_feature(applied, small_sales) -> None:
    store, features = applied
    entities = entities_sample(small_sales)
    assert_matches_reference(historical(store, entities), reference_join(entities, features))


def test_a_leaky_join_fails_the_reference_comparison(applied, small_sales) -> None:
    """The comparison can fail: a join that looks forward in time (a leak) is caught."""
    _store, features = applied
    entities = entities_sample(small_sales)
    leaky = reference_join(entities, features, direction="forward").drop(columns="feature_ts")
    with pytest.raises(AssertionError, match="differ from the point-in-time reference"):
        assert_matches_reference(leaky, reference_join(entities, features))


def test_values_stamped_after_the_entity_row_never_reach_it(applied, small_sales) -> None:
    store, features = applied
    series = features[KEYS].iloc[0]
    day = features["event_timestamp"].sort_values().unique()[60]
    own = features[(features["store_id"] == series["store_id"]) & (features["sku_id"] == series["sku_id"])]
    # A late, poisoned row for the same series, stamped one hour after the entity row.
    poison = own[own["event_timestamp"] == day].assign(event_timestamp=day + timedelta(hours=13), lag_1=1e6)
    poison.to_parquet(Path(store.repo_path) / PERIODS_DIRNAME / "late-correction.parquet", index=False)
    entity = pd.DataFrame({**{k: [series[k]] for k in KEYS}, "event_timestamp": [day + timedelta(hours=12)]})
    later = entity.assign(event_timestamp=day + timedelta(hours=14))
    assert historical(store, entity)["lag_1"].item() == pytest.approx(
        own[own["event_timestamp"] == day]["lag_1"].item()
    )
    assert historical(store, later)["lag_1"].item() == pytest.approx(1e6), "the poisoned row is visible once due"


def test_row_count_equals_entity_count_even_without_features(applied, small_sales) -> None:
    store, features = applied
    entities = entities_sample(small_sales, 100)
    first = features["event_timestamp"].min()
    strangers = pd.DataFrame(
        {
            "store_id": ["S999", "S000"],
            "sku_id": ["P0000", "P0000"],
            "event_timestamp": [first, first - timedelta(days=30)],
        }
    )
    joined = historical(store, pd.concat([entities, strangers], ignore_index=True))
    assert len(joined) == len(entities) + 2
    unknown = joined[joined["store_id"] == "S999"]
    assert unknown["lag_1"].isna().all() and (unknown["sku_category"].notna()).all(), "static views still join"


def test_online_store_serves_the_latest_day_in_one_lookup(applied) -> None:
    store, features = applied
    latest = features["event_timestamp"].max()
    materialize_span(store, (latest - timedelta(days=3)).to_pydatetime(), latest.to_pydatetime())
    online = _assert_online_holds_the_latest_rows(store, features)
    assert set(online["sku_category"]) <= {"snacks", "beverages", "grocery", "household"}


def test_materialized_span_by_span_the_online_store_holds_each_series_latest(applied) -> None:
    store, features = applied
    latest = features["event_timestamp"].max()
    days = [(latest - timedelta(days=d)).to_pydatetime() for d in (29, 20, 19, 10, 9, 0)]
    materialize_spans(store, [(days[4], days[5]), (days[0], days[1]), (days[2], days[3])])  # any order given
    _assert_online_holds_the_latest_rows(store, features)


def _assert_online_holds_the_latest_rows(store, features: pd.DataFrame) -> pd.DataFrame:
    """Every series' online row is its latest day's features; returns what the store answered."""
    latest = features["event_timestamp"].max()
    pairs = list(features[KEYS].drop_duplicates().itertuples(index=False, name=None))
    online = online_features(store, FEATURE_SERVICE_NAME, DAILY, pairs)
    assert len(online) == len(pairs) and (online["event_timestamp"] == latest).all()
    newest = features[features["event_timestamp"] == latest].set_index(KEYS)[SERIES_FEATURES]
    got = online.set_index(KEYS)[SERIES_FEATURES].sort_index()
    pd.testing.assert_frame_equal(got, newest.sort_index().astype(got.dtypes.to_dict()), check_exact=False, rtol=1e-6)
    return online


def test_the_served_read_gives_what_feasts_own_response_gives(applied) -> None:
    """serving.online reads through the provider and decodes values itself; Feast's get_online_features
    must answer the same values and periods; a series the store does not hold is said to be missing."""
    store, features = applied
    latest = features["event_timestamp"].max().to_pydatetime()
    materialize_span(store, latest - timedelta(days=3), latest)
    pairs = list(features[KEYS].drop_duplicates().itertuples(index=False, name=None))
    unknown = ("S999", "K999")
    reader = OnlineFeatureReader(store, FEATURE_SERVICE_NAME, DAILY)
    asked = [list(names) for _, names in reader.views]
    reader.read(pairs)
    frame, missing = reader.read([*pairs, unknown])
    assert [names for _, names in reader.views] == asked, "Feast's Redis read appends to the names it is given"
    assert missing == [unknown] and len(frame) == len(pairs)

    refs = [
        f"{view}:{name}" for view in SERIES_VIEWS for name in [f.name for f in store.get_feature_view(view).features]
    ]
    feast = store.get_online_features(features=refs, entity_rows=[{"store_id": s, "sku_id": k} for s, k in pairs])
    expected = pd.DataFrame(feast.to_dict(include_event_timestamps=True))
    expected["event_timestamp"] = pd.to_datetime(expected[f"{SERIES_FEATURES[0]}__ts"], unit="s", utc=True)
    pd.testing.assert_frame_equal(
        frame[[*KEYS, "event_timestamp", *SERIES_FEATURES]],
        expected[[*KEYS, "event_timestamp", *SERIES_FEATURES]],
        check_dtype=False,
    )
