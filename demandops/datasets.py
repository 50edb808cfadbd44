"""The dataset the chain runs on: pulled from the DVC remote, or generated and recorded with DVC."""

from __future__ import annotations

from pathlib import Path

from demandops import lineage
from demandops.contract import SALES_DIRNAME
from demandops.settings import Settings
from demandops.simulator import PRESETS, simulate, write_dataset

LOCAL_REMOTE_DIRNAME = ".dvcstore"


def generate(data_dir: Path, preset: str) -> int:
    """Write the simulator's dataset for a preset; returns the number of daily partitions."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    return write_dataset(simulate(PRESETS[preset]), data_dir)


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
