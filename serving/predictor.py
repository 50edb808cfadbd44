"""From request items to forecasts: one online-feature lookup per batch, then the model bundle."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from feast import FeatureStore

from demandops.errors import FeatureStoreError, UnknownSeriesError
from demandops.frequency import PERIOD_NAMES
from serving.schemas import ForecastItem, ForecastResult, QuantileForecast
from training.bundle import ForecasterBundle
from training.calendar import target_dates
from training.features import FeatureSpec


def online_features(
    store: FeatureStore, service_name: str, spec: FeatureSpec, pairs: Sequence[tuple[str, str]]
) -> pd.DataFrame:
    """Latest features of each (store, sku) pair, with the period they describe, in one lookup."""
    feature_names, history_features = spec.feature_names, spec.history_features
    response = store.get_online_features(
        features=store.get_feature_service(service_name),
        entity_rows=[{"store_id": s, "sku_id": k} for s, k in pairs],
    ).to_dict(include_event_timestamps=True)
    frame = pd.DataFrame({name: response[name] for name in ["store_id", "sku_id", *feature_names]})
    # The period the features describe: the newest stamp of the per-period views (static rows are undated).
    stamps = pd.DataFrame({n: response[f"{n}__ts"] for n in history_features}).max(axis=1)
    missing = frame.loc[stamps <= 0, ["store_id", "sku_id"]]
    if not missing.empty:
        pairs_missing = ", ".join(f"{s}/{k}" for s, k in missing.itertuples(index=False))
        raise FeatureStoreError(f"the online store holds no features for {pairs_missing}; is it materialized?")
    frame["event_timestamp"] = pd.to_datetime(stamps, unit="s", utc=True)
    return frame


class Predictor:
    """Answers forecast items with a bundle and a feature store."""

    def __init__(self, bundle: ForecasterBundle, store: FeatureStore, *, model_version: str):
        self.bundle = bundle
        self.store = store
        self.model_version = model_version

    def forecast(self, items: Sequence[ForecastItem]) -> list[ForecastResult]:
        horizon = self.bundle.meta.horizon
        too_long = [i for i in items if i.horizon > horizon]
        if too_long:
            period = PERIOD_NAMES[self.bundle.meta.frequency]
            raise ValueError(f"horizon {too_long[0].horizon} exceeds this model's horizon of {horizon} {period}s")
        unknown = self.bundle.unknown_ids([i.store_id for i in items], [i.sku_id for i in items])
        if unknown:
            raise UnknownSeriesError(unknown)
        pairs = list(dict.fromkeys((i.store_id, i.sku_id) for i in items))
        meta = self.bundle.meta
        features = online_features(self.store, meta.feature_service, meta.spec, pairs)
        quantiles = self.bundle.predict(features)
        row_of = {pair: n for n, pair in enumerate(pairs)}
        return [self._result(item, features, quantiles, row_of[(item.store_id, item.sku_id)]) for item in items]

    def _result(self, item: ForecastItem, features: pd.DataFrame, quantiles, row: int) -> ForecastResult:
        origin = features["event_timestamp"].iloc[row].tz_localize(None)
        days = target_dates(origin, item.horizon, self.bundle.meta.frequency)
        return ForecastResult(
            store_id=item.store_id,
            sku_id=item.sku_id,
            origin_date=origin.date(),
            model_version=self.model_version,
            degraded=False,
            forecast=[
                QuantileForecast(date=d.date(), p10=float(q[0]), p50=float(q[1]), p90=float(q[2]))
                for d, q in zip(days, quantiles[row][: item.horizon], strict=True)
            ],
        )
