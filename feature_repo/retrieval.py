"""Point-in-time retrieval: Feast's as-of join of entity rows to a feature service, checked."""

from __future__ import annotations

import pandas as pd
from feast import FeatureStore

from demandops.errors import FeatureStoreError


def historical_features(store: FeatureStore, entities: pd.DataFrame, service_name: str) -> pd.DataFrame:
    """The feature service's values as of each entity row's `event_timestamp`: one row per entity row.

    Raises when Feast returns another number of rows (a duplicated entity row, or a join gone wrong).
    """
    joined = store.get_historical_features(entity_df=entities, features=store.get_feature_service(service_name))
    frame = joined.to_df()
    if len(frame) != len(entities):
        raise FeatureStoreError(
            f"Feast returned {len(frame)} rows of {service_name} for {len(entities)} entity rows; expected one each"
        )
    return frame
