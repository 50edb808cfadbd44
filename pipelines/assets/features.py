"""Stage 3: features computed offline, registered in Feast and materialized online."""

from datetime import timedelta

import dagster as dg
import pandas as pd

from feature_repo.definitions import FEATURE_SERVICE_NAME, feature_objects
from feature_repo.store import feature_source_path
from pipelines.resources import DemandopsResource
from training.features import compute_features


@dg.asset(group_name="features", kinds={"pandas", "parquet"})
def sales_features(raw_sales: pd.DataFrame, demandops: DemandopsResource) -> dg.MaterializeResult:
    """Per-series features in periods of the data's frequency (lags, rolling stats, price, promo): the Feast source."""
    spec = demandops.feature_spec()
    features = compute_features(raw_sales, spec)
    path = feature_source_path(demandops.settings())
    path.parent.mkdir(parents=True, exist_ok=True)
    features.to_parquet(path, index=False)
    return dg.MaterializeResult(
        metadata={
            "rows": len(features),
            "path": dg.MetadataValue.path(str(path)),
            "latest_event": str(features["event_timestamp"].max()),
            "null_share": float(features.isna().mean().mean()),
            "frequency": spec.frequency,
            "features": spec.feature_names,
        }
    )


@dg.asset(deps=[sales_features], group_name="features", kinds={"feast", "sqlite"})
def online_features(demandops: DemandopsResource) -> dg.MaterializeResult:
    """Feast registry applied and the latest features materialized into the online store."""
    settings = demandops.settings()
    store = demandops.feature_store()
    ttl = demandops.feature_ttl()
    store.apply(feature_objects(feature_source_path(settings), demandops.feature_spec(), ttl))
    latest = pd.read_parquet(feature_source_path(settings), columns=["event_timestamp"])["event_timestamp"].max()
    # Serving needs each series' newest row; the TTL window is all an online read may use.
    start = (latest - ttl).to_pydatetime()
    store.materialize(start_date=start, end_date=(latest + timedelta(days=1)).to_pydatetime())
    return dg.MaterializeResult(
        metadata={
            "feature_service": FEATURE_SERVICE_NAME,
            "online_store": store.config.online_store.type,
            "materialized_from": str(start),
            "online_freshness": str(latest),
        }
    )
