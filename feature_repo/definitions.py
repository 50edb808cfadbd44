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
from training.features import DAILY, FeatureSpec

FEATURE_SERVICE_NAME = "demand_forecast_v1"
# A week of daily rows: tolerates a few missing days without serving stale rows.
DAILY_TTL = timedelta(days=7)
NEVER_EXPIRES = timedelta(0)

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


def feature_objects(source_dir: Path, spec: FeatureSpec = DAILY, ttl: timedelta = DAILY_TTL) -> list:
    """Every Feast object of demandops, reading the sources under source_dir.

    The history features and the TTL follow the data's frequency (see Settings.cadences).
    """
    periods = _source(
        "sales_features_source", source_dir / PERIOD_GLOB, "Per-series, per-period features (sales_features)."
    )
    stores = _source("store_attributes_source", source_dir / STORE_ATTRIBUTES, "Store master attributes.")
    skus = _source("sku_attributes_source", source_dir / SKU_ATTRIBUTES, "SKU master attributes.")
    views = [
        FeatureView(
            name="demand_history_fv",
            entities=[store, sku],
            ttl=ttl,
            schema=[Field(name=name, dtype=Float32) for name in spec.history_features],
            source=periods,
        ),
        FeatureView(
            name="price_promo_fv",
            entities=[store, sku],
            ttl=ttl,
            schema=[Field(name=name, dtype=Float32) for name in spec.price_features],
            source=periods,
        ),
        FeatureView(
            name="store_attributes_fv",
            entities=[store],
            ttl=NEVER_EXPIRES,
            schema=[Field(name="store_size", dtype=String), Field(name="store_region", dtype=String)],
            source=stores,
        ),
        FeatureView(
            name="sku_attributes_fv",
            entities=[sku],
            ttl=NEVER_EXPIRES,
            schema=[Field(name="sku_category", dtype=String), Field(name="sku_launch_date", dtype=String)],
            source=skus,
        ),
    ]
    service = FeatureService(name=FEATURE_SERVICE_NAME, features=views)
    return [store, sku, periods, stores, skus, *views, service]
