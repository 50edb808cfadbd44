"""The dataset the chain runs on: simulated or pulled from the DVC remote, recorded with DVC.

A simulated dataset carries `simulation.json` (its preset) so that `append` can emit the next
days exactly as a longer simulation would have. The oracle (noise-free expected demand) is
written beside the data folder, never inside it, so the pipeline cannot read it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from demandops import lineage
from demandops.contract import SALES_DIRNAME, partition_dates, write_sales
from demandops.errors import DataContractError
from demandops.settings import Settings
from demandops.simulator import PRESETS, Preset, SimulatedData, extended, simulate

LOCAL_REMOTE_DIRNAME = ".dvcstore"
SIMULATION_MANIFEST = "simulation.json"
ORACLE_FILE = "expected_demand.parquet"


def oracle_dir(data_dir: Path) -> Path:
    """Where the oracle of a simulated data folder lives (`data/` -> `data_oracle/`)."""
    return data_dir.with_name(f"{data_dir.name}_oracle")


def _write_table(frame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def _write(data: SimulatedData, data_dir: Path, preset: Preset, *, from_day: date | None = None) -> int:
    """Master files, manifest, oracle, and the sales partitions from `from_day` on.

    A day on which every store was closed has no rows, and so no partition.
    """
    sales = data.sales if from_day is None else data.sales[data.sales["date"].dt.date >= from_day]
    _write_table(data.stores, data_dir / "stores.parquet")
    _write_table(data.skus, data_dir / "skus.parquet")
    manifest = {**asdict(preset), "start": preset.start.isoformat()}
    (data_dir / SIMULATION_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    _write_table(data.oracle, oracle_dir(data_dir) / ORACLE_FILE)
    return len(write_sales(data_dir, sales))


def generate(data_dir: Path, preset: str) -> int:
    """Write the simulator's dataset for a preset; returns the number of daily partitions."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    return _write(simulate(PRESETS[preset]), data_dir, PRESETS[preset])


def read_manifest(data_dir: Path) -> Preset:
    path = data_dir / SIMULATION_MANIFEST
    if not path.is_file():
        raise DataContractError(f"{data_dir} has no {SIMULATION_MANIFEST}: only simulated data can be appended to")
    fields = json.loads(path.read_text())
    return replace(Preset(n_stores=1, n_skus=1, n_days=1), **{**fields, "start": date.fromisoformat(fields["start"])})


def append_days(data_dir: Path, days: int) -> list[date]:
    """Emit the next `days` days of a simulated dataset as new partitions; existing ones stay untouched."""
    if days < 1:
        raise ValueError(f"--days must be at least 1, got {days}")
    preset = read_manifest(data_dir)
    longer = extended(preset, days)
    first_new = preset.start + timedelta(days=preset.n_days)
    clash = [d for d in partition_dates(data_dir) if d >= first_new]
    if clash:
        raise DataContractError(f"refusing to overwrite existing partitions {clash[:3]}")
    _write(simulate(longer), data_dir, longer, from_day=first_new)
    return [d for d in partition_dates(data_dir) if d >= first_new]


def ensure_dataset(settings: Settings) -> str:
    """The DVC version of the data folder, creating the data first when there is none.

    Existing data is never overwritten: if it differs from its DVC record, this raises.
    """
    lineage.ensure_repo(settings.project_dir, remote_dir=settings.project_dir / LOCAL_REMOTE_DIRNAME)
    has_sales = (settings.data / SALES_DIRNAME).is_dir()
    if not has_sales and lineage.dvc_file(settings.data).is_file():
        has_sales = lineage.pull(settings.project_dir, settings.data)
    if not has_sales:
        generate(settings.data, settings.preset)
    if not has_sales or not lineage.dvc_file(settings.data).is_file():
        lineage.track(settings.project_dir, settings.data)
        lineage.push(settings.project_dir)
    return lineage.dataset_version(settings.project_dir, settings.data)
