"""The lake under the state folder: one owner for where every asset output, the gate's ledger and the
first-seen table live, and for reading raw sales straight from it.

Layout: `<asset>/<partition>.parquet` for partitioned outputs, `<asset>/value.parquet|json` for the
others (the training set: `training_set/<run id>/part-*.parquet`, named by `training_set/value.json`),
`raw_sales/_gate/` for the gate's verdicts beside the partitions they judge, and
`sales_features/first_seen.parquet`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from demandops.contract import SERIES_KEYS
from demandops.files import write_atomically, write_text_atomically
from salesdata.gate import GateLedger
from training.features import first_seen
from training.sales_table import SalesTable
from training.training_folder import TrainingSetFolder

RAW_SALES = "raw_sales"
GATE_DIRNAME = "_gate"


def parquet_writer(frame: pd.DataFrame):
    return lambda partial: frame.to_parquet(partial, index=False)


class Lake:
    def __init__(self, root: Path):
        self.root = root

    def asset_dir(self, asset_path: Sequence[str]) -> Path:
        return self.root.joinpath(*asset_path)

    def partition_file(self, asset_path: Sequence[str], partition: str) -> Path:
        return self.asset_dir(asset_path) / f"{partition}.parquet"

    def value_file(self, asset_path: Sequence[str], suffix: str) -> Path:
        return self.asset_dir(asset_path) / f"value.{suffix}"

    def write_partitions(self, asset_path: Sequence[str], frames: dict[str, pd.DataFrame]) -> None:
        """Each frame as its partition's Parquet file, replaced atomically (a reader sees old or new)."""
        self.asset_dir(asset_path).mkdir(parents=True, exist_ok=True)
        for key, frame in frames.items():
            write_atomically(self.partition_file(asset_path, key), parquet_writer(frame))

    def write_dataset_folder(self, asset_path: Sequence[str], folder: TrainingSetFolder) -> None:
        """Point the asset's manifest at `folder` (already written, inside the asset's directory), then
        remove what the asset held before: the manifest switches atomically, so a reader sees a whole set."""
        asset_dir = self.asset_dir(asset_path)
        manifest = json.dumps(folder.manifest(relative_to=asset_dir), indent=2)
        write_text_atomically(self.value_file(asset_path, "json"), manifest)
        for stale in asset_dir.iterdir():
            if stale.is_dir() and stale != folder.directory:
                shutil.rmtree(stale)
            elif stale.is_file() and stale != self.value_file(asset_path, "json"):
                stale.unlink()

    def gate_ledger(self) -> GateLedger:
        """The gate's verdict on every raw_sales partition, and each one's last accepted version."""
        return GateLedger(self.asset_dir([RAW_SALES]) / GATE_DIRNAME)

    def has_verdict(self, asset_path: Sequence[str], partition: str) -> bool:
        """Whether the gate judged this partition (a partition it quarantined has no file, but a verdict)."""
        return (self.asset_dir(asset_path) / GATE_DIRNAME / f"{partition}.json").is_file()

    def first_seen(self) -> FirstSeen:
        return FirstSeen(self.asset_dir(["sales_features"]) / "first_seen.parquet")

    def raw_sales_between(self, start: date, end: date) -> pd.DataFrame:
        """Validated sales of the partitions from start to end; quarantined or empty periods are simply absent."""
        files = self.raw_sales_files_between(start, end)
        if not files:
            raise FileNotFoundError(
                f"no validated raw_sales partitions in {self.asset_dir([RAW_SALES])} from {start} to {end}"
            )
        return pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)

    def raw_sales_files_between(self, start: date, end: date) -> list[Path]:
        directory = self.asset_dir([RAW_SALES])
        return [p for p in sorted(directory.glob("*.parquet")) if start.isoformat() <= p.stem <= end.isoformat()]

    def raw_sales_rows_per_period(self) -> int:
        """Rows of the newest validated raw_sales partition: how much one period of the catalogue weighs."""
        return pq.read_metadata(self._newest_raw_sales()).num_rows

    def raw_sales_of(self, partitions: Sequence[str]) -> pd.DataFrame | None:
        """Validated sales of these partitions; None when the gate accepted none of them."""
        files = [f for p in partitions if (f := self.partition_file([RAW_SALES], p)).is_file()]
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else None

    def sales_table(self, partitions: Sequence[str]) -> SalesTable:
        """Validated sales of these partitions as one Arrow table sorted by series (training/sales_table.py):
        a third of the memory pandas takes, for stages that hand pandas some series at a time."""
        files = [f for p in partitions if (f := self.partition_file([RAW_SALES], p)).is_file()]
        if not files:
            directory = self.asset_dir([RAW_SALES])
            raise FileNotFoundError(f"none of the {len(partitions)} raw_sales partitions asked for is in {directory}")
        return SalesTable(pa.concat_tables([pq.read_table(f) for f in files], promote_options="default"))

    def raw_sales_columns(self) -> set[str]:
        """The columns of the validated raw sales (the optional ones present in the data)."""
        return set(pq.read_schema(self._newest_raw_sales()).names)

    def _newest_raw_sales(self) -> Path:
        directory = self.asset_dir([RAW_SALES])
        newest = max(directory.glob("*.parquet"), default=None)
        if newest is None:
            raise FileNotFoundError(f"no validated raw_sales partitions in {directory}")
        return newest


class FirstSeen:
    """The first period of every series ever ingested, so a slice of history knows which series are older."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> pd.DataFrame | None:
        return pd.read_parquet(self.path) if self.path.is_file() else None

    def update(self, sales: pd.DataFrame) -> None:
        known = self.read()
        seen = first_seen(sales) if known is None else pd.concat([known, first_seen(sales)], ignore_index=True)
        merged = seen.groupby(list(SERIES_KEYS), as_index=False)["first_period"].min()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        merged.to_parquet(self.path, index=False)
