"""Sales partitions: one per period (day, week or month) found under data/sales, registered as they arrive."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from demandops.contract import partition_dates
from demandops.settings import Settings
from feature_repo.freshness import OnlineLag
from feature_repo.sources import period_file
from salesdata.gate import GateLedger

# Dynamic, so that appended or imported periods appear without reloading the code location. Its stored
# name dates from when only days were partitioned; renaming it would orphan installations' partitions.
SALES_PERIODS = dg.DynamicPartitionsDefinition(name="sales_days")


def unregistered_periods(instance: dg.DagsterInstance, settings: Settings) -> tuple[list[str], list[str]]:
    """(periods on disk not yet registered, periods refused because they lie in the future)."""
    known = set(instance.get_dynamic_partitions(SALES_PERIODS.name))
    today = datetime.now(UTC).date()
    on_disk = partition_dates(settings.data)
    new = [d.isoformat() for d in on_disk if d.isoformat() not in known and d <= today]
    future = [d.isoformat() for d in on_disk if d > today]
    return new, future


def register_periods(instance: dg.DagsterInstance, settings: Settings) -> list[str]:
    """Register every past period on disk as a partition; returns the ones added."""
    new, _future = unregistered_periods(instance, settings)
    if new:
        instance.add_dynamic_partitions(SALES_PERIODS.name, new)
    return new


def periods_without_features(instance: dg.DagsterInstance, settings: Settings) -> list[str]:
    """Registered periods that have no feature file yet (new state folder, or features redefined)."""
    return [
        day
        for day in instance.get_dynamic_partitions(SALES_PERIODS.name)
        if not period_file(settings.feast_dir, day).is_file()
    ]


def periods_to_gate(
    instance: dg.DagsterInstance, settings: Settings, ledger: GateLedger, also_known: list[str]
) -> list[str]:
    """Registered periods (plus `also_known`, about to be registered) that are new to the gate or changed."""
    known = set(instance.get_dynamic_partitions(SALES_PERIODS.name)) | set(also_known)
    days = [d for d in partition_dates(settings.data) if d.isoformat() in known]
    return [d.isoformat() for d in ledger.needs_gate(settings.data, days)]


def periods_to_refill(instance: dg.DagsterInstance, lag: OnlineLag) -> list[str]:
    """The periods whose materialization restores a lagging online store; none when it is current.

    All of them up to the newest: materializing a span writes each series' latest row in it, and a
    series not sold lately has its latest row far back. A shorter span left those series without
    a row after a refill, where the chain's first materialization had written one.
    """
    if lag.current or lag.period is None:
        return []
    return [day for day in sorted(instance.get_dynamic_partitions(SALES_PERIODS.name)) if day <= lag.period]
