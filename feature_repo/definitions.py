"""Feast objects in dependency order: entities -> source -> feature views -> feature service."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float32

from training.features import DAILY, PRICE_FEATURES, FeatureSpec

FEATURE_SERVICE_NAME = "demand_forecast_v1"
# A week of daily rows: tolerates a few missing days without serving stale rows.
DAILY_TTL = timedelta(days=7)

store = Entity(name="store", join_keys=["store_id"], value_type=ValueType.STRING, description="A physical store.")
sku = Entity(name="sku", join_keys=["sku_id"], value_type=ValueType.STRING, description="A stock-keeping unit.")


def feature_objects(source_path: Path, spec: FeatureSpec = DAILY, ttl: timedelta = DAILY_TTL) -> list:
    """Every Feast object of demandops, reading features from the Parquet file at source_path.

    The history features and the TTL follow the data's frequency (see Settings.cadences).
    """
    sales_features_source = FileSource(
        name="sales_features_source",
        path=str(source_path),
        timestamp_field="event_timestamp",
        description="Per-series, per-period features written by the sales_features asset.",
    )
    demand_history_fv = FeatureView(
        name="demand_history_fv",
        entities=[store, sku],
        ttl=ttl,
        online=True,
        schema=[Field(name=name, dtype=Float32) for name in spec.history_features],
        source=sales_features_source,
    )
    price_promo_fv = FeatureView(
        name="price_promo_fv",
        entities=[store, sku],
        ttl=ttl,
        online=True,
        schema=[Field(name=name, dtype=Float32) for name in PRICE_FEATURES],
        source=sales_features_source,
    )
    demand_forecast_v1 = FeatureService(name=FEATURE_SERVICE_NAME, features=[demand_history_fv, price_promo_fv])
    return [store, sku, sales_features_source, demand_history_fv, price_promo_fv, demand_forecast_v1]
