"""Live accuracy from the lake: a gated period's sales scored against the forecasts logged for it,
and the rolling window of scored periods that the UI, the service's gauges and the loop read."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from demandops.frequency import period_ordinals, periods_after, shift_period
from demandops.settings import Settings
from lifecycle.registry import ModelRegistry
from monitoring.accuracy import SCORED_COLUMNS, SCORED_DTYPES, accuracy_table, mover_classes, score_forecasts
from monitoring.decision_log import decision_log_dir, read_decisions
from monitoring.lead_time_evidence import (
    SERVED_DIR,
    build_evidence,
    refitted_rows,
    served_calibration,
    write_evidence,
    write_served,
)
from monitoring.live_summary import build_summary, service_summary
from monitoring.prediction_log import log_dir, read_log, scored_forecasts
from monitoring.service_level import score_decisions, service_table, window_end_ordinals
from pipelines.lake import Lake
from training.tracking import backtest_wape, bundle_lead_time

FORECAST_ACCURACY = "forecast_accuracy"
LEAD_TIME_SERVICE = (FORECAST_ACCURACY, "lead_time_service")  # the decisions scored, one file per period
NO_SALES = pd.DataFrame(
    {"store_id": pd.Series(dtype="object"), "sku_id": pd.Series(dtype="object"), "date": pd.to_datetime([]),
     "units_sold": pd.Series(dtype="float64")}
)  # fmt: skip


@dataclass(frozen=True)
class LiveAccuracy:
    scored: list[pd.DataFrame]  # each period's forecasts beside their actuals
    decided: list[pd.DataFrame]  # each period's reorder points whose lead time ended with it, scored
    window: pd.DataFrame  # every scored forecast of the rolling window, this period included
    table: pd.DataFrame  # accuracy_table of the window
    summary: dict  # monitoring/live_summary.py
    service: pd.DataFrame  # service_table of the decisions scored in the window (monitoring/service_level.py)
    evidence: int  # lead-time demands known to refit /replenishment's tables on (monitoring/lead_time_evidence.py)
    served_tables: dict[str, int] = field(default_factory=dict)  # version -> the demands its served tables rest on


def score_period(lake: Lake, settings: Settings, period: str, frequency: str, horizon: int) -> pd.DataFrame:
    """The period's gated sales against every forecast logged for it (empty when none was, or the gate
    quarantined the period)."""
    day = date.fromisoformat(period)
    earliest = shift_period(day, -horizon, frequency).date()
    logged = read_log(log_dir(settings), targets=[day], earliest_origin=earliest)
    sales = lake.raw_sales_of([period]) if not logged.empty else None
    if sales is None:
        return empty_scored()
    trailing = shift_period(day, -settings.monitoring.history_periods, frequency).date()
    history = lake.raw_sales_between(trailing, shift_period(day, -1, frequency).date())
    return score_forecasts(scored_forecasts(logged), sales, mover_classes(history))


def score_decisions_ending(lake: Lake, settings: Settings, period: str, frequency: str, horizon: int) -> pd.DataFrame:
    """The reorder points served whose lead time ends with this period, against its gated sales and
    those of the periods before it (monitoring/service_level.py)."""
    day = date.fromisoformat(period)
    first = shift_period(day, -horizon, frequency).date()
    decisions = read_decisions(decision_log_dir(settings), first_origin=first, last_origin=day)
    decisions = decisions[window_end_ordinals(decisions, frequency) == period_ordinals([day], frequency)[0]]
    files = lake.raw_sales_files_between(shift_period(first, 1, frequency).date(), day) if len(decisions) else []
    sales = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else None
    if sales is None:
        return score_decisions(decisions.iloc[:0], pd.DataFrame(), frequency)
    return score_decisions(decisions.reset_index(drop=True), sales, frequency)


def rolling_window(
    lake: Lake, period: str, scored: pd.DataFrame, periods: int, asset_path: tuple[str, ...] = (FORECAST_ACCURACY,)
) -> pd.DataFrame:
    """The scored forecasts (or decisions, by `asset_path`) of the `periods` latest scored periods up to this one."""
    directory = lake.asset_dir(asset_path)
    earlier = sorted(p for p in directory.glob("*.parquet") if p.stem < period)[-(periods - 1) :] if periods > 1 else []
    frames = [pd.read_parquet(p) for p in earlier] + [scored]
    return pd.concat([f for f in frames if not f.empty] or [scored], ignore_index=True)


def scored_history(lake: Lake) -> pd.DataFrame:
    """Every forecast scored so far, all of forecast_accuracy's partitions (for reports, not the loop)."""
    files = sorted(lake.asset_dir([FORECAST_ACCURACY]).glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else empty_scored()


def live_accuracy(
    lake: Lake, settings: Settings, periods: list[str], frequency: str, horizon: int, registry: ModelRegistry
) -> LiveAccuracy:
    """Score each period in order (each written to the lake as it is scored), then the rolling window
    that ends with the last one; and the lead-time evidence, with the tables each version serves now."""
    scored, decided = [], []
    for period in sorted(periods):
        scored.append(score_period(lake, settings, period, frequency, horizon))
        decided.append(score_decisions_ending(lake, settings, period, frequency, horizon))
        if not scored[-1].empty:  # a period nobody was served a forecast for leaves no file
            lake.write_partitions([FORECAST_ACCURACY], {period: scored[-1]})
        if not decided[-1].empty:
            lake.write_partitions(LEAD_TIME_SERVICE, {period: decided[-1]})
    period, periods_kept = max(periods), settings.monitoring.window_periods
    evidence = lead_time_evidence(lake, settings, period, frequency, horizon)
    write_evidence(settings.lake_dir, evidence)
    served = serve_lead_time_tables(settings, registry, evidence)  # before the summary: the service reads on its change
    window = rolling_window(lake, period, scored[-1], periods_kept)
    table = accuracy_table(window)
    service = service_table(rolling_window(lake, period, decided[-1], periods_kept, LEAD_TIME_SERVICE))
    summary = build_summary(period, table, window) | {"service": service_summary(service)}
    known = int(evidence["demand"].notna().sum())
    return LiveAccuracy(scored, decided, window, table, summary, service, evidence=known, served_tables=served)


def lead_time_evidence(lake: Lake, settings: Settings, period: str, frequency: str, horizon: int) -> pd.DataFrame:
    """The forecasts logged at the origins whose lead times can end within the calibration window up
    to `period` (as long as the cadence's validation window), and at those whose lead times the
    tables served at each of these origins were refitted on, beside the gated sales that followed."""
    window = settings.cadence(frequency).validation_periods
    day = date.fromisoformat(period)
    reach = 2 * (window + horizon)  # the window's origins reach back window + horizon, and so do their refits'
    first = shift_period(day, -reach, frequency).date()  # the origin before the first that counts
    targets = [t.date() for t in periods_after(first, reach + horizon - 1, frequency)]
    logged = scored_forecasts(read_log(log_dir(settings), targets=targets, earliest_origin=first))
    logged = logged[(logged["origin_date"] > pd.Timestamp(first)) & (logged["origin_date"] < pd.Timestamp(day))]
    files = lake.raw_sales_files_between(shift_period(first, 1, frequency).date(), day) if len(logged) else []
    sales = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else NO_SALES
    return build_evidence(logged, sales, period=period, frequency=frequency, horizon=horizon, window=window)


def serve_lead_time_tables(settings: Settings, registry: ModelRegistry, evidence: pd.DataFrame) -> dict[str, int]:
    """Write the lead-time calibration each registered version serves now (served_calibration, from its
    bundle's tables and its evidence), and remove it where there is none any more (the bundle's tables
    again); returns each written version's refitted rows."""
    runs = {info.version: info.run_id for info in registry.versions()}
    stale = {path.stem.removeprefix("v") for path in settings.lake_dir.joinpath(*SERVED_DIR).glob("v*.json")}
    with_evidence = set(evidence.loc[evidence["demand"].notna(), "model_version"].astype(str))
    written = {}
    with tempfile.TemporaryDirectory() as scratch:
        for version in sorted((with_evidence | stale) & set(runs)):
            kept, horizon = bundle_lead_time(settings.mlflow_tracking_uri, runs[version], Path(scratch) / version)
            calibration = served_calibration(evidence, version, kept, horizon) if version in with_evidence else None
            write_served(settings.lake_dir, version, calibration, horizon)
            if calibration is not None:
                written[version] = refitted_rows(calibration)
    return written


def empty_scored() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=SCORED_DTYPES.get(name, "float64")) for name in SCORED_COLUMNS})


def backtest_wapes(settings: Settings, registry: ModelRegistry, versions: Iterable[str]) -> dict[str, float]:
    """The backtest WAPE of each version the registry knows and whose run logged a backtest."""
    known = {info.version: info.run_id for info in registry.versions()}
    wapes = {}
    for version in (v for v in versions if v in known):
        wape = backtest_wape(settings.mlflow_tracking_uri, known[version])
        if wape is not None:
            wapes[version] = wape
    return wapes
