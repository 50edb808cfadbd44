"""Reading raw_sales partitions straight from the lake: a bounded slice of history, and series first seen."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from demandops.contract import SERIES_KEYS
from training.features import first_seen


def read_lake_periods(lake_dir: Path, start: date, end: date) -> pd.DataFrame:
    """Validated sales of the partitions from start to end; quarantined or empty periods are simply absent."""
    files = [p for p in sorted(lake_dir.glob("*.parquet")) if start.isoformat() <= p.stem <= end.isoformat()]
    if not files:
        raise FileNotFoundError(f"no validated raw_sales partitions in {lake_dir} from {start} to {end}")
    return pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)


def lake_columns(lake_dir: Path) -> set[str]:
    """The columns of the validated raw sales (the optional ones present in the data)."""
    newest = max(lake_dir.glob("*.parquet"), default=None)
    if newest is None:
        raise FileNotFoundError(f"no validated raw_sales partitions in {lake_dir}")
    return set(pq.read_schema(newest).names)


class FirstSeen:
    """The first period of every series ever ingested, so a slice of history knows which series are older."""

    def __init__(self, directory: Path):
        self.path = directory / "first_seen.parquet"

    def read(self) -> pd.DataFrame | None:
        return pd.read_parquet(self.path) if self.path.is_file() else None

    def update(self, sales: pd.DataFrame) -> None:
        known = self.read()
        seen = first_seen(sales) if known is None else pd.concat([known, first_seen(sales)], ignore_index=True)
        merged = seen.groupby(list(SERIES_KEYS), as_index=False)["first_period"].min()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        merged.to_parquet(self.path, index=False)
