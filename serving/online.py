"""Online feature lookups the way the service does them: one read of the per-period views per batch.

Static attributes (store size and region, SKU category and launch date) do not change between
batches: they are read once per id, with the first read that needs them, and kept, so a batch
reads two feature views, not four.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from feast import FeatureStore

from demandops.errors import FeatureStoreError
from feature_repo.definitions import SERIES_VIEWS, STATIC_VIEWS
from feature_repo.freshness import consistent_stamps, stamp_column
from training.features import FeatureSpec


class OnlineFeatureReader:
    def __init__(self, store: FeatureStore, service_name: str, spec: FeatureSpec):
        self.store = store
        self.spec = spec
        service = store.get_feature_service(service_name)  # resolved once, not per batch
        projections = [p for p in service.feature_view_projections if p.name in SERIES_VIEWS]
        self.series_refs = [f"{p.name}:{feature.name}" for p in projections for feature in p.features]
        # One feature's event time per view tells whether the view holds the series, and of which period.
        self.stamp_columns = [stamp_column(p.features[0].name) for p in projections]
        self.static: dict[str, dict[str, dict]] = {key: {} for key in STATIC_VIEWS}

    def _static(self, key: str, ids: list[str]) -> None:
        """Keep the attributes of ids not kept yet; an id the store does not hold is asked again next time."""
        missing = [i for i in dict.fromkeys(ids) if i not in self.static[key]]
        if not missing:
            return
        view, names = STATIC_VIEWS[key]
        response = self.store.get_online_features(
            features=[f"{view}:{n}" for n in names], entity_rows=[{key: i} for i in missing]
        ).to_dict()
        for position, entity in enumerate(response[key]):
            attributes = {n: response[n][position] for n in names}
            if all(value is not None for value in attributes.values()):
                self.static[key][entity] = attributes

    def read(self, pairs: Sequence[tuple[str, str]]) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
        """Features of the pairs the online store holds complete, in one read, and the pairs it does not.

        Complete: every per-period view holds a row of the same period, and the store and SKU
        attributes are held (feature_repo/freshness.py says why a series can be half there).
        Columns are gathered as lists and framed once: joins and per-step frames cost more than
        Feast's own read at a batch of 64 (18.6 ms against 8.4 ms before this was so).
        """
        response = self.store.get_online_features(
            features=self.series_refs, entity_rows=[{"store_id": s, "sku_id": k} for s, k in pairs]
        ).to_dict(include_event_timestamps=True)
        stamps = consistent_stamps(response, self.stamp_columns)  # the period the features describe; 0: incomplete
        self._static("store_id", [s for (s, _), stamp in zip(pairs, stamps, strict=True) if stamp > 0])
        self._static("sku_id", [k for (_, k), stamp in zip(pairs, stamps, strict=True) if stamp > 0])
        stores, skus = self.static["store_id"], self.static["sku_id"]
        complete = [stamp > 0 and s in stores and k in skus for (s, k), stamp in zip(pairs, stamps, strict=True)]
        held = np.flatnonzero(complete)
        missing = [tuple(pair) for pair, whole in zip(pairs, complete, strict=True) if not whole]
        names = ["store_id", "sku_id", *self.spec.history_features, *self.spec.price_features]
        columns = {name: [response[name][n] for n in held] for name in names}
        columns["event_timestamp"] = pd.to_datetime(stamps[held], unit="s", utc=True)
        for key, (_, attributes) in STATIC_VIEWS.items():
            known = self.static[key]
            for attribute in attributes:
                columns[attribute] = [known[i][attribute] for i in columns[key]]
        return pd.DataFrame(columns), missing

    def lookup(self, pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
        """Latest features of each (store, sku) pair, with the period they describe; every pair must be held."""
        frame, missing = self.read(pairs)
        if missing:
            pairs_missing = ", ".join(f"{s}/{k}" for s, k in missing)
            raise FeatureStoreError(
                f"the online store holds no complete features for {pairs_missing}; is it materialized?"
            )
        return frame


def online_features(
    store: FeatureStore, service_name: str, spec: FeatureSpec, pairs: Sequence[tuple[str, str]]
) -> pd.DataFrame:
    """One lookup without a kept reader (tests, scripts)."""
    return OnlineFeatureReader(store, service_name, spec).lookup(pairs)
