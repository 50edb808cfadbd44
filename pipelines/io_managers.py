"""Stores asset outputs as Parquet (one file per partition) or JSON under the state folder."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from demandops.errors import DataContractError
from demandops.files import write_atomically, write_text_atomically
from demandops.memory import release_free_memory
from pipelines.lake import Lake, parquet_writer
from training.training_folder import TrainingSetFolder


class LakeIOManager(dg.ConfigurableIOManager):
    """DataFrames become Parquet, dicts JSON; a partitioned output is a dict of partition -> DataFrame;
    a training set, written as a folder of parts by its asset, gets its manifest (pipelines/lake.py).

    A partition missing from such a dict is left as it was: the gate quarantined it, and the last
    validated version (if any) stays in place. Loading skips a partition that has no file only
    when the gate has a verdict for it; anything else missing is an error.
    """

    base_dir: str

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | dict | TrainingSetFolder) -> None:
        lake, asset = Lake(Path(self.base_dir)), context.asset_key.path
        lake.asset_dir(asset).mkdir(parents=True, exist_ok=True)
        if context.has_asset_partitions:
            lake.write_partitions(asset, obj)
        elif isinstance(obj, TrainingSetFolder):
            lake.write_dataset_folder(asset, obj)
        elif isinstance(obj, dict):
            write_text_atomically(lake.value_file(asset, "json"), json.dumps(obj, indent=2, default=str))
        else:
            write_atomically(lake.value_file(asset, "parquet"), parquet_writer(obj))
        release_free_memory()  # the step is done: what it freed goes back to the system, not to the run

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | dict:
        lake, asset = Lake(Path(self.base_dir)), context.asset_key.path
        if context.has_asset_partitions:
            return self._load_partitions(context, lake)
        if lake.value_file(asset, "json").is_file():
            value = json.loads(lake.value_file(asset, "json").read_text())
            is_folder = TrainingSetFolder.is_manifest(value)
            return TrainingSetFolder.from_manifest(value, lake.asset_dir(asset)) if is_folder else value
        return pd.read_parquet(lake.value_file(asset, "parquet"))

    def _load_partitions(self, context: dg.InputContext, lake: Lake) -> pd.DataFrame:
        frames, quarantined, missing = [], [], []
        asset = context.asset_key.path
        for key in context.asset_partition_keys:
            path = lake.partition_file(asset, key)
            if path.is_file():
                frames.append(pd.read_parquet(path))
            elif lake.has_verdict(asset, key):
                quarantined.append(key)
            else:
                missing.append(key)
        if missing:
            raise FileNotFoundError(
                f"{context.asset_key.to_user_string()} is not materialized for partitions "
                f"{missing[:5]} ({len(missing)} missing); materialize them first"
            )
        if quarantined:
            context.log.warning(f"skipping {len(quarantined)} quarantined partitions: {quarantined[:5]}")
        if not frames:
            raise DataContractError(
                f"no validated data: all {len(quarantined)} requested partitions of "
                f"{context.asset_key.to_user_string()} were quarantined by the gate (its reports: "
                f"{lake.gate_ledger().directory}); fix those files and run again"
            )
        return pd.concat(frames, ignore_index=True)
