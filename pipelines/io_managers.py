"""Stores asset outputs as Parquet (one file per daily partition) or JSON under the state folder."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd


class LakeIOManager(dg.ConfigurableIOManager):
    """DataFrames become Parquet, dicts become JSON; partitioned frames are split by their `date`."""

    base_dir: str

    def _asset_dir(self, context: dg.OutputContext | dg.InputContext) -> Path:
        return Path(self.base_dir).joinpath(*context.asset_key.path)

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | dict) -> None:
        directory = self._asset_dir(context)
        directory.mkdir(parents=True, exist_ok=True)
        if isinstance(obj, dict):
            (directory / "value.json").write_text(json.dumps(obj, indent=2, default=str))
        elif context.has_asset_partitions:
            days = obj["date"].dt.strftime("%Y-%m-%d")
            for key in context.asset_partition_keys:
                obj[days == key].to_parquet(directory / f"{key}.parquet", index=False)
        else:
            obj.to_parquet(directory / "value.parquet", index=False)

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | dict:
        directory = self._asset_dir(context)
        if (directory / "value.json").is_file():
            return json.loads((directory / "value.json").read_text())
        if context.has_asset_partitions:
            paths = [directory / f"{key}.parquet" for key in context.asset_partition_keys]
            missing = [p.name for p in paths if not p.is_file()]
            if missing:
                raise FileNotFoundError(
                    f"{context.asset_key.to_user_string()} is not materialized for partitions {missing[:5]} "
                    f"({len(missing)} missing); materialize them first"
                )
            return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
        return pd.read_parquet(directory / "value.parquet")
