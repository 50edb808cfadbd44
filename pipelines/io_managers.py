"""Stores asset outputs as Parquet (one file per partition) or JSON under the state folder."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd

GATE_DIRNAME = "_gate"  # per-partition gate verdicts, beside the partitions they judge


class LakeIOManager(dg.ConfigurableIOManager):
    """DataFrames become Parquet, dicts JSON; a partitioned output is a dict of partition -> DataFrame.

    A partition missing from such a dict is left as it was: the gate quarantined it, and the last
    validated version (if any) stays in place. Loading skips a partition that has no file only
    when the gate has a verdict for it; anything else missing is an error.
    """

    base_dir: str

    def _asset_dir(self, context: dg.OutputContext | dg.InputContext) -> Path:
        return Path(self.base_dir).joinpath(*context.asset_key.path)

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | dict) -> None:
        directory = self._asset_dir(context)
        directory.mkdir(parents=True, exist_ok=True)
        if context.has_asset_partitions:
            for key, frame in obj.items():
                frame.to_parquet(directory / f"{key}.parquet", index=False)
        elif isinstance(obj, dict):
            (directory / "value.json").write_text(json.dumps(obj, indent=2, default=str))
        else:
            obj.to_parquet(directory / "value.parquet", index=False)

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | dict:
        directory = self._asset_dir(context)
        if context.has_asset_partitions:
            return self._load_partitions(context, directory)
        if (directory / "value.json").is_file():
            return json.loads((directory / "value.json").read_text())
        return pd.read_parquet(directory / "value.parquet")

    def _load_partitions(self, context: dg.InputContext, directory: Path) -> pd.DataFrame:
        frames, quarantined, missing = [], [], []
        for key in context.asset_partition_keys:
            path = directory / f"{key}.parquet"
            if path.is_file():
                frames.append(pd.read_parquet(path))
            elif (directory / GATE_DIRNAME / f"{key}.json").is_file():
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
            raise ValueError(f"every requested partition of {context.asset_key.to_user_string()} is quarantined")
        return pd.concat(frames, ignore_index=True)
