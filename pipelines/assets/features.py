"""Stage 3: features of the new periods only, registered in Feast and materialized online incrementally.

Both assets share raw_sales' partitions. A run over some periods reads only the lookback those
periods need, rewrites their feature files and those of the later periods that read them, and
materializes exactly that span into the online store.
"""

from datetime import date

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext

from demandops.contract import read_master
from demandops.frequency import shift_period
from feature_repo.definitions import FEATURE_SERVICE_NAME, feature_objects
from feature_repo.sources import count_period_rows, write_period_features, write_static_features
from feature_repo.store import materialize_span
from pipelines.assets.ingestion import raw_sales
from pipelines.partitions import SALES_PERIODS
from pipelines.resources import Demandops
from training.features import compute_features
from training.static_features import sku_attributes, store_attributes


def affected_span(keys: list[str], frequency: str, lookback: int, newest: str) -> tuple[date, date]:
    """The periods whose features change when `keys` change: from the first key to `lookback` periods on."""
    first, last = min(keys), max(keys)
    reach = shift_period(last, lookback, frequency).date()
    return date.fromisoformat(first), min(reach, date.fromisoformat(max(newest, last)))


@dg.asset(
    partitions_def=SALES_PERIODS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[raw_sales],
    group_name="features",
    kinds={"pandas", "parquet"},
)
def sales_features(context: AssetExecutionContext, demandops: Demandops) -> dg.MaterializeResult:
    """Per-series features of the run's periods (lags, windows, intermittency, price, promo): Feast's source."""
    settings, spec = demandops.settings(), demandops.feature_spec()
    lake = demandops.lake()
    newest = max(SALES_PERIODS.get_partition_keys(dynamic_partitions_store=context.instance))
    start, end = affected_span(context.partition_keys, spec.frequency, spec.lookback, newest)
    history_start = shift_period(start, -spec.lookback, spec.frequency)
    sales = lake.raw_sales_between(history_start.date(), end)
    first_seen = lake.first_seen()
    features = compute_features(sales, spec, first_seen=first_seen.read(), since=pd.Timestamp(start))
    first_seen.update(sales)
    written = write_period_features(settings.feast_dir, features)
    stores, skus = (
        store_attributes(read_master(settings.data, "stores")),
        sku_attributes(read_master(settings.data, "skus")),
    )
    write_static_features(settings.feast_dir, stores, skus)
    return dg.MaterializeResult(
        metadata={
            "rows": len(features),
            "periods_written": len(written),
            "first_period": written[0] if written else "",
            "last_period": written[-1] if written else "",
            "history_read_from": history_start.date().isoformat(),
            "sales_rows_read": len(sales),
            "frequency": spec.frequency,
            "features": spec.feature_names,
            "null_share": dg.MetadataValue.json(
                features[spec.history_features + spec.price_features].isna().mean().round(4).to_dict()
            ),
        }
    )


@dg.asset(
    partitions_def=SALES_PERIODS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[sales_features],
    group_name="features",
    kinds={"feast"},
)
def online_features(context: AssetExecutionContext, demandops: Demandops) -> dg.MaterializeResult:
    """The feature registry applied, and the periods the run changed materialized into the online store."""
    settings, spec = demandops.settings(), demandops.feature_spec()
    store = demandops.feature_store()
    store.apply(feature_objects(settings.feast_dir, spec, demandops.feature_ttl()))
    newest = max(SALES_PERIODS.get_partition_keys(dynamic_partitions_store=context.instance))
    start, end = affected_span(context.partition_keys, spec.frequency, spec.lookback, newest)
    # Online rows are each series' latest; a span that ends before the newest period changed none of them.
    reaches_newest = end.isoformat() >= newest
    utc = [pd.Timestamp(d, tz="UTC").to_pydatetime() for d in (start, end)]
    materialize_span(store, *utc, series=reaches_newest)
    materialized = count_period_rows(settings.feast_dir, start, end) if reaches_newest else 0
    return dg.MaterializeResult(
        metadata={
            "feature_service": FEATURE_SERVICE_NAME,
            "online_store": store.config.online_store.type,
            "materialized_from": start.isoformat(),
            "materialized_to": end.isoformat(),
            "rows_materialized": materialized,
            "online_freshness": end.isoformat(),
        }
    )
