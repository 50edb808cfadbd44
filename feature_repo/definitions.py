"""Feast objects in dependency order: entities -> sources -> feature views -> feature service.

Sources are the Parquet files the `sales_features` asset writes (see feature_repo/sources.py):
one file per period of history and price features, and one file each of store and SKU attributes.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Float32, String

from feature_repo.sources import PERIOD_GLOB, SKU_ATTRIBUTES, STORE_ATTRIBUTES
from training.features import FeatureSpec

FEATURE_SERVICE_NAME = "demand_forecast_v1"
NEVER_EXPIRES = timedelta(0)
SERIES_VIEWS = ["demand_history_fv", "price_promo_fv"]  # keyed by (store, sku), one row per period
# Static views by the join key they are read with: (view, its features).
STATIC_VIEWS = {
    "store_id": ("store_attributes_fv", ["store_size", "store_region"]),
    "sku_id": ("sku_attributes_fv", ["sku_category", "sku_launch_date"]),
}

store = Entity(name="store", join_keys=["store_id"], value_type=ValueType.STRING, description="A physical store.")
sku = Entity(name="sku", join_keys=["sku_id"], value_type=ValueType.STRING, description="A stock-keeping unit.")


def _source(name: str, path: Path, description: str) -> FileSource:
    return FileSource(
        name=name,
        path=str(path),
        file_format=ParquetFormat(),
        timestamp_field="event_timestamp",
        description=description,
    )


def feature_objects(source_dir: Path, spec: FeatureSpec, ttl: timedelta) -> list:
    """Every Feast object of demandops, reading the sources under source_dir.

    The history features and the TTL (how stale an online row may be) follow the data's frequency:
    Settings.cadences holds them, and the Dagster resource derives both.
    """
    periods = _source(
        "sales_features_source", source_dir / PERIOD_GLOB, "Per-series, per-period features (sales_features)."
    )
    stores = _source("store_attributes_source", source_dir / STORE_ATTRIBUTES, "Store master attributes.")
    skus = _source("sku_attributes_source", source_dir / SKU_ATTRIBUTES, "SKU master attributes.")
    series_schema = {"demand_history_fv": spec.history_features, "price_promo_fv": spec.price_features}
    views = [
        FeatureView(
            name=name,
            entities=[store, sku],
            ttl=ttl,
            schema=[Field(name=feature, dtype=Float32) for feature in features],
            source=periods,
        )
        for name, features in series_schema.items()
    ]
    static_sources = {"store_id": (store, stores), "sku_id": (sku, skus)}
    for key, (name, features) in STATIC_VIEWS.items():
        entity, source = static_sources[key]
        views.append(
            FeatureView(
                name=name,
                entities=[entity],
                ttl=NEVER_EXPIRES,
                schema=[Field(name=feature, dtype=String) for feature in features],
                source=source,
            )
        )
    service = FeatureService(name=FEATURE_SERVICE_NAME, features=views)
    return [store, sku, periods, stores, skus, *views, service]
