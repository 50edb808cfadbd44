"""Daily partitions of raw sales: one per day found in the data folder."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from demandops.contract import partition_dates
from demandops.settings import Settings


def sales_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """First to last day present under data/sales (new days appear when the location reloads)."""
    days = partition_dates(settings.data)
    if not days:
        raise ValueError(f"no sales partitions under {settings.data}; run `demandops data generate` first")
    return dg.DailyPartitionsDefinition(
        start_date=days[0].isoformat(), end_date=(days[-1] + timedelta(days=1)).isoformat()
    )
