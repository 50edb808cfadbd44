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
from demandops.progress import progress_reporter
from feature_repo.definitions import FEATURE_SERVICE_NAME, feature_objects
from feature_repo.sources import count_period_rows, write_static_features
from feature_repo.store import materialize_spans
from pipelines.assets.ingestion import raw_sales
from pipelines.feature_batches import batch_spans, periods_per_batch, write_features
from pipelines.partitions import SALES_PERIODS
from pipelines.resources import Demandops
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
    batches = periods_per_batch(lake)
    done = progress_reporter(context.log.info, "feature batches written")
    written = write_features(lake, settings.feast_dir, spec, start, end, batch_periods=batches, progress=done)
    stores, skus = (
        store_attributes(read_master(settings.data, "stores")),
        sku_attributes(read_master(settings.data, "skus")),
    )
    write_static_features(settings.feast_dir, stores, skus)
    return dg.MaterializeResult(
        metadata={
            "rows": written.rows,
            "periods_written": len(written.periods),
            "first_period": written.periods[0] if written.periods else "",
            "last_period": written.periods[-1] if written.periods else "",
            "history_read_from": shift_period(start, -spec.lookback, spec.frequency).date().isoformat(),
            "sales_rows_read": written.sales_rows_read,
            "batches": written.batches,
            "periods_per_batch": batches,
            "frequency": spec.frequency,
            "features": spec.feature_names,
            "null_share": dg.MetadataValue.json(written.null_share()),
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
    spans = batch_spans(start, end, spec.frequency, periods_per_batch(demandops.lake()))
    utc = [tuple(pd.Timestamp(d, tz="UTC").to_pydatetime() for d in span) for span in spans]
    materialize_spans(store, utc, series=reaches_newest)
    materialized = count_period_rows(settings.feast_dir, start, end) if reaches_newest else 0
    return dg.MaterializeResult(
        metadata={
            "feature_service": FEATURE_SERVICE_NAME,
            "online_store": store.config.online_store.type,
            "materialized_from": start.isoformat(),
            "materialized_to": end.isoformat(),
            "rows_materialized": materialized,
            "spans_materialized": len(spans) if reaches_newest else 0,
            "online_freshness": end.isoformat(),
        }
    )
