"""The rolling live accuracy per model version, and the live cycle service of its reorder points, as one
JSON file in the lake: written by the `forecast_accuracy` asset, read by the service's gauges and by the
loop's decisions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from demandops.files import write_text_atomically
from monitoring.accuracy import METRICS

SUMMARY_PATH = ("forecast_accuracy", "live_summary.json")  # beside the asset's partition files


def summary_path(lake_dir: Path) -> Path:
    return lake_dir.joinpath(*SUMMARY_PATH)


def per_period_wape(window: pd.DataFrame) -> pd.DataFrame:
    """WAPE of each model version in each scored period (rows: period, columns: version; NaN where
    every actual was zero)."""
    parts = window.assign(absolute=(window["actual"] - window["p50"]).abs())
    sums = parts.groupby(["date", "model_version"])[["absolute", "actual"]].sum()
    wape = (sums["absolute"] / sums["actual"].where(sums["actual"] > 0)).unstack("model_version")
    return wape.sort_index()


def build_summary(period: str, table: pd.DataFrame, window: pd.DataFrame) -> dict:
    """Per version: the window's metrics, WAPE per horizon step and per scored period."""
    per_period = per_period_wape(window) if not window.empty else pd.DataFrame()
    versions = {}
    for version, rows in table.groupby("model_version"):
        overall = rows[rows["segment_kind"] == "all"].iloc[0]
        steps = rows[rows["segment_kind"] == "step"]
        versions[str(version)] = {
            "rows": int(overall["rows"]),
            **{m: _number(overall[m]) for m in METRICS},
            "wape_per_step": {str(s): _number(w) for s, w in zip(steps["segment"], steps["wape"], strict=True)},
            "wape_per_period": {
                d.date().isoformat(): _number(w) for d, w in per_period.get(version, pd.Series(dtype=float)).items()
            },
        }
    return {"period": period, "periods": len(per_period), "versions": versions}


def service_summary(service: pd.DataFrame) -> dict[str, list[dict]]:
    """Per version, the live cycle service of each lead time and level served (monitoring/service_level.py)."""
    return {
        str(version): [
            {
                "lead_time": int(row.lead_time),
                "service_level": float(row.service_level),
                "decisions": int(row.decisions),
                "achieved": float(row.achieved),
            }
            for row in rows.itertuples()
        ]
        for version, rows in service.groupby("model_version", sort=True)
    }


def write_summary(lake_dir: Path, summary: dict) -> Path:
    path = summary_path(lake_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomically(path, json.dumps(summary, indent=2, allow_nan=False))


def read_summary(lake_dir: Path) -> dict | None:
    """The latest summary, or None before any period was scored."""
    path = summary_path(lake_dir)
    return json.loads(path.read_text()) if path.is_file() else None


def _number(value: float) -> float | None:
    """JSON has no NaN: an undefined metric (every actual zero) is null."""
    return None if math.isnan(value) else float(value)
