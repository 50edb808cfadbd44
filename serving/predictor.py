"""From request items to forecasts: one online-feature lookup per batch, then the model bundle."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from feast import FeatureStore

from demandops.errors import UnknownSeriesError
from demandops.frequency import PERIOD_NAMES
from serving.online import start_reader
from serving.schemas import ForecastItem, ForecastResult, QuantileForecast
from training.bundle import ForecasterBundle
from training.calendar import target_dates
from training.covariates import planned_price_columns, planned_promo_columns


class Predictor:
    """Answers forecast items with a bundle and a feature store."""

    def __init__(self, bundle: ForecasterBundle, store: FeatureStore, *, model_version: str):
        self.bundle = bundle
        self.model_version = model_version
        meta = bundle.meta
        self.features = start_reader(store, meta.feature_service, meta.spec, stores=meta.stores, skus=meta.skus)

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
        looked_up = self.features.lookup(pairs)  # one online lookup for the whole batch
        row_of = {pair: n for n, pair in enumerate(pairs)}
        features = looked_up.iloc[[row_of[(i.store_id, i.sku_id)] for i in items]].reset_index(drop=True)
        features = pd.concat([features, self._plans(items)], axis=1)
        quantiles = self.bundle.predict(features)
        return [self._result(item, features, quantiles, n) for n, item in enumerate(items)]

    def _plans(self, items: Sequence[ForecastItem]) -> pd.DataFrame:
        """Each item's planned price and promotion per period (NaN where it sent none)."""
        horizon = self.bundle.meta.horizon
        prices = np.full((len(items), horizon), np.nan)
        promos = np.full((len(items), horizon), np.nan)
        for n, item in enumerate(items):
            for h, value in enumerate(item.planned_price or []):
                prices[n, h] = np.nan if value is None else value
            for h, value in enumerate(item.planned_promo or []):
                promos[n, h] = np.nan if value is None else float(value)
        columns = {
            **dict(zip(planned_price_columns(horizon), prices.T, strict=True)),
            **dict(zip(planned_promo_columns(horizon), promos.T, strict=True)),
        }
        return pd.DataFrame(columns)

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
