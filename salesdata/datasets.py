"""The dataset the chain runs on: simulated or pulled from the DVC remote, recorded with DVC.

A simulated dataset carries `simulation.json` (its preset) so that `append` can emit the next
days exactly as a longer simulation would have. The oracle (noise-free expected demand) is
written beside the data folder, never inside it, so the pipeline cannot read it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from demandops.contract import (
    DATASET_MANIFEST,
    SALES_DIRNAME,
    partition_dates,
    read_master,
    recorded_frequency,
    write_sales,
)
from demandops.errors import DataContractError
from demandops.frequency import Frequency
from demandops.settings import GateSettings, Settings
from salesdata import dvc_versions
from salesdata.gate import file_md5
from salesdata.importing import read_user_master, read_user_sales
from salesdata.plausibility import dates_text
from salesdata.simulator import PRESETS, DemandShift, Preset, SimulatedData, extended, simulate

LOCAL_REMOTE_DIRNAME = ".dvcstore"
SIMULATION_MANIFEST = "simulation.json"
ORACLE_FILE = "expected_demand.parquet"


def oracle_dir(data_dir: Path) -> Path:
    """Where the oracle of a simulated data folder lives (`data/` -> `data_oracle/`)."""
    return data_dir.with_name(f"{data_dir.name}_oracle")


def read_oracle(data_dir: Path, since: pd.Timestamp | None = None) -> pd.DataFrame | None:
    """The simulator's expected demand for the data in `data_dir` (from `since` on); None for data it
    did not simulate."""
    path = oracle_dir(data_dir) / ORACLE_FILE
    if not path.exists():
        return None
    if since is None:
        return pd.read_parquet(path)
    naive = since.tz_convert(None) if since.tzinfo else since  # the oracle's dates are naive, like the data's
    column = pq.read_schema(path).field("date").type
    return pq.read_table(path, filters=[("date", ">=", pa.scalar(naive.to_pydatetime(), type=column))]).to_pandas()


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
    (data_dir / SIMULATION_MANIFEST).write_text(json.dumps(manifest_of(preset), indent=2) + "\n")
    _write_table(data.oracle, oracle_dir(data_dir) / ORACLE_FILE)
    return len(write_sales(data_dir, sales))


def generate(
    data_dir: Path, preset: str, *, stores: int | None = None, skus: int | None = None, days: int | None = None
) -> int:
    """Write the simulator's dataset for a preset, resized where stores, SKUs or days are given;
    returns the number of daily partitions."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    sized = resized(PRESETS[preset], stores=stores, skus=skus, days=days)
    return _write(simulate(sized), data_dir, sized)


def resized(preset: Preset, *, stores: int | None, skus: int | None, days: int | None) -> Preset:
    """The preset with the catalogue's size replaced where given; every other property is kept."""
    sizes = {"n_stores": stores, "n_skus": skus, "n_days": days}
    for name, value in sizes.items():
        if value is not None and value < 1:
            raise ValueError(f"--{name[2:]} must be at least 1, got {value}")
    return replace(preset, **{name: value for name, value in sizes.items() if value is not None})


def read_manifest(data_dir: Path) -> Preset:
    path = data_dir / SIMULATION_MANIFEST
    if not path.is_file():
        raise DataContractError(f"{data_dir} has no {SIMULATION_MANIFEST}: only simulated data can be appended to")
    return preset_of(json.loads(path.read_text()))


def manifest_of(preset: Preset) -> dict:
    """The preset as JSON: dates as ISO strings."""
    shifts = [{**asdict(s), "start": s.start.isoformat()} for s in preset.shifts]
    return {**asdict(preset), "start": preset.start.isoformat(), "shifts": shifts}


def preset_of(manifest: dict) -> Preset:
    shifts = tuple(DemandShift(**{**s, "start": date.fromisoformat(s["start"])}) for s in manifest.get("shifts", []))
    fields = {**manifest, "start": date.fromisoformat(manifest["start"]), "shifts": shifts}
    return replace(Preset(n_stores=1, n_skus=1, n_days=1), **fields)


def next_day(data_dir: Path) -> date:
    """The first day a simulated dataset has not written yet."""
    preset = read_manifest(data_dir)
    return preset.start + timedelta(days=preset.n_days)


def append_days(data_dir: Path, days: int, shift: DemandShift | None = None) -> list[date]:
    """Emit the next `days` days of a simulated dataset as new partitions; existing ones stay untouched.
    A `shift` changes demand from its start on (a day not yet written), in these days and every later one."""
    if days < 1:
        raise ValueError(f"--days must be at least 1, got {days}")
    preset = read_manifest(data_dir)
    first_new = preset.start + timedelta(days=preset.n_days)
    if shift is not None and shift.start < first_new:
        raise DataContractError(
            f"a demand shift must start on a day not yet written ({first_new} or later), not {shift.start}"
        )
    longer = extended(replace(preset, shifts=preset.shifts + ((shift,) if shift else ())), days)
    clash = [d for d in partition_dates(data_dir) if d >= first_new]
    if clash:
        raise DataContractError(f"refusing to overwrite existing partitions {dates_text(clash)}")
    _write(simulate(longer), data_dir, longer, from_day=first_new)
    return [d for d in partition_dates(data_dir) if d >= first_new]


ImportMode = Literal["new", "replace", "append"]
STORE_COLUMNS = ("region", "size")
SKU_COLUMNS = ("category",)
UNCATEGORIZED = "uncategorized"


@dataclass(frozen=True)
class ImportSummary:
    frequency: Frequency
    rows: int
    periods: int
    first: date
    last: date
    masters: str
    version: str
    replaced_version: str | None


def _masters(
    sales: pd.DataFrame, data_dir: Path, mode: ImportMode, stores: Path | None, skus: Path | None
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Store and SKU masters covering every id: the user's files, the dataset's, or derived from the sales."""
    keep = mode == "append"
    derived = keep and _manifest(data_dir).get("masters") == "derived"
    tables = []
    for name, key, user_file, optional in (
        ("stores", "store_id", stores, STORE_COLUMNS),
        ("skus", "sku_id", skus, SKU_COLUMNS),
    ):
        ids = set(sales[key])
        old = read_master(data_dir, name) if keep else pd.DataFrame({key: pd.Series(dtype=str)})
        if user_file is not None:
            table = read_user_master(user_file, key, ids | set(old[key]), optional)
        elif keep and not derived:
            unknown = sorted(ids - set(old[key]))
            if unknown:
                raise DataContractError(
                    f"{key}(s) {unknown[:5]} are not in {data_dir / name}.parquet; pass --{name} with them"
                )
            table = old
        else:
            table = pd.DataFrame({key: sorted(ids | set(old[key]))})
        if name == "skus":
            table = table.assign(category=table.get("category", UNCATEGORIZED)).fillna({"category": UNCATEGORIZED})
        tables.append(table)
    given = "provided" if stores is not None or skus is not None or (keep and not derived) else "derived"
    return tables[0], tables[1], given


def import_sales(
    project_dir: Path,
    data_dir: Path,
    source: Path,
    *,
    frequency: Frequency,
    stores: Path | None = None,
    skus: Path | None = None,
    limits: GateSettings,
    date_format: str | None = None,
    delimiter: str = ",",
    mode: ImportMode = "new",
) -> ImportSummary:
    """Check a user's sales file against the contract, write it as partitions, record the DVC version.

    Nothing stored is lost: `new` refuses to touch an existing dataset, `replace` pushes the
    current version to the DVC remote before swapping the folder, and `append` refuses periods
    that already exist. A file that breaks the contract changes nothing. `limits` (the gate's
    settings) bound plausible units and dates.
    """
    exists = (data_dir / SALES_DIRNAME).is_dir()
    known = partition_dates(data_dir) if exists and mode == "append" else []
    sales = read_user_sales(
        source, frequency, limits=limits, date_format=date_format, delimiter=delimiter, known_periods=known
    )
    _refuse_conflicts(data_dir, source, sales, frequency=frequency, mode=mode, exists=exists)
    store_master, sku_master, masters = _masters(sales, data_dir, mode, stores, skus)
    record = {"file": source.name, "md5": file_md5(source), "rows": len(sales)}
    earlier = _manifest(data_dir).get("imports", []) if mode == "append" else []
    manifest = {"frequency": frequency, "masters": masters, "imports": [*earlier, record]}
    dvc_versions.ensure_repo(project_dir, remote_dir=project_dir / LOCAL_REMOTE_DIRNAME)
    replaced = None
    if exists and mode == "replace":
        # Record and push what is there first, so the replaced dataset stays restorable by its version.
        replaced = dvc_versions.track(project_dir, data_dir)
        dvc_versions.push(project_dir)
    # A new dataset is written beside the old one and swapped in only when complete.
    target = data_dir if mode == "append" else data_dir.with_name(f"{data_dir.name}.importing")
    if target != data_dir:
        shutil.rmtree(target, ignore_errors=True)
    _write_table(store_master, target / "stores.parquet")
    _write_table(sku_master, target / "skus.parquet")
    (target / DATASET_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    write_sales(target, sales)
    if target != data_dir:
        shutil.rmtree(oracle_dir(data_dir), ignore_errors=True)  # the oracle belonged to simulated data
        shutil.rmtree(data_dir, ignore_errors=True)
        target.rename(data_dir)
    version = dvc_versions.track(project_dir, data_dir)
    dvc_versions.push(project_dir)
    periods = sorted(set(sales["date"].dt.date))
    return ImportSummary(frequency, len(sales), len(periods), periods[0], periods[-1], masters, version, replaced)


def _refuse_conflicts(
    data_dir: Path, source: Path, sales: pd.DataFrame, *, frequency: Frequency, mode: ImportMode, exists: bool
) -> None:
    """A new import over a dataset, or an append to none, of another frequency or of periods already there."""
    if exists and mode == "new":
        raise DataContractError(f"{data_dir} already holds a dataset; pass --replace or --append")
    if mode != "append":
        return
    if not exists:
        raise DataContractError(f"nothing to append to: {data_dir} holds no dataset")
    if recorded_frequency(data_dir) != frequency:
        raise DataContractError(f"{data_dir} holds {recorded_frequency(data_dir)} data, not {frequency}")
    clash = sorted(set(sales["date"].dt.date) & set(partition_dates(data_dir)))
    if clash:
        raise DataContractError(
            f"{source} holds periods the dataset already has: {dates_text(clash)}; append only new ones"
        )


def _manifest(data_dir: Path) -> dict:
    path = data_dir / DATASET_MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def resolve_frequency(settings: Settings) -> Frequency:
    """The data's frequency; a configured frequency must agree with what the data declares."""
    recorded = recorded_frequency(settings.data)
    if settings.frequency is not None and settings.frequency != recorded:
        raise DataContractError(
            f"configured frequency {settings.frequency} but {settings.data} holds {recorded} data; "
            "unset DEMANDOPS_FREQUENCY or import the data again with the right --frequency"
        )
    return recorded


def ensure_dataset(settings: Settings) -> str:
    """The DVC version of the data folder, creating the data first when there is none.

    Existing data is never overwritten: if it differs from its DVC record, this raises.
    """
    dvc_versions.ensure_repo(settings.project_dir, remote_dir=settings.project_dir / LOCAL_REMOTE_DIRNAME)
    has_sales = (settings.data / SALES_DIRNAME).is_dir()
    if not has_sales and dvc_versions.dvc_file(settings.data).is_file():
        has_sales = dvc_versions.pull(settings.project_dir, settings.data)
    if not has_sales:
        generate(settings.data, settings.preset)
    if not has_sales or not dvc_versions.dvc_file(settings.data).is_file():
        dvc_versions.track(settings.project_dir, settings.data)
        dvc_versions.push(settings.project_dir)
    return dvc_versions.dataset_version(settings.project_dir, settings.data)
