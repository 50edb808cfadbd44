"""Drift: how far recent distributions have moved from a model's training window, as the population
stability index (PSI) per feature, in the usual bands: < 0.10 stable, 0.10-0.25 moderate, > 0.25
significant.

PSI = sum over bins of (recent share - reference share) * ln(recent share / reference share), the
bins being the reference's deciles (ties merged), so that a feature whose mass sits on a few values
(zero sales, a flag) gets the bins it has. An empty bin counts as half an observation, so that a
value range the reference never had weighs heavily but finitely.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: figures are rendered to files
import numpy as np
import pandas as pd
from matplotlib import pyplot as plt

from demandops.files import write_text_atomically

MODERATE, SIGNIFICANT = 0.10, 0.25
BINS = 10


def band(psi: float) -> str:
    return "significant" if psi > SIGNIFICANT else "moderate" if psi >= MODERATE else "stable"


def psi(reference: np.ndarray, recent: np.ndarray, bins: int = BINS) -> float:
    """Population stability index of `recent` against `reference` (NaN values left out)."""
    reference = reference[~np.isnan(reference)]
    recent = recent[~np.isnan(recent)]
    if len(reference) == 0 or len(recent) == 0:
        raise ValueError(f"PSI needs values on both sides: {len(reference)} reference, {len(recent)} recent")
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    expected = np.bincount(np.searchsorted(inner, reference, side="right"), minlength=len(inner) + 1)
    actual = np.bincount(np.searchsorted(inner, recent, side="right"), minlength=len(inner) + 1)
    expected_share = np.maximum(expected, 0.5) / len(reference)
    actual_share = np.maximum(actual, 0.5) / len(recent)
    return float(np.sum((actual_share - expected_share) * np.log(actual_share / expected_share)))


def drift_table(reference: pd.DataFrame, recent: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """PSI and band per column that both frames hold with values; sorted, the largest drift first."""
    rows = []
    for column in columns:
        left = reference[column].to_numpy("float64")
        right = recent[column].to_numpy("float64")
        if np.isnan(left).all() or np.isnan(right).all():
            continue  # a feature this catalogue does not have (no prices, no stock)
        value = psi(left, right)
        rows.append({"feature": column, "psi": value, "band": band(value)})
    table = pd.DataFrame(rows, columns=["feature", "psi", "band"])
    return table.sort_values("psi", ascending=False, ignore_index=True)


def unseen_share(recent_series: pd.DataFrame, known_stores: list[str], known_skus: list[str]) -> float:
    """Share of the series selling recently that the model never saw (a store or SKU it does not know)."""
    if recent_series.empty:
        return 0.0
    known = recent_series["store_id"].isin(known_stores) & recent_series["sku_id"].isin(known_skus)
    return float(1 - known.mean())


DRIFT_PATH = ("feature_drift", "drift.json")  # in the lake: written by the feature_drift asset, read by the loop


def drift_summary_path(lake_dir: Path) -> Path:
    return lake_dir.joinpath(*DRIFT_PATH)


def write_drift_summary(lake_dir: Path, summary: dict) -> Path:
    path = drift_summary_path(lake_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomically(path, json.dumps(summary, indent=2, allow_nan=False))


def read_drift_summary(lake_dir: Path) -> dict | None:
    path = drift_summary_path(lake_dir)
    return json.loads(path.read_text()) if path.is_file() else None


def worst_band(table: pd.DataFrame) -> str:
    bands = set(table["band"])
    return next((b for b in ("significant", "moderate") if b in bands), "stable")


def drift_plot(table: pd.DataFrame) -> bytes:
    """PSI per feature as bars, with the two band thresholds. PNG bytes."""
    figure, axis = plt.subplots(figsize=(8, max(2.0, 0.28 * len(table) + 1)))
    colours = table["band"].map({"stable": "tab:green", "moderate": "tab:orange", "significant": "tab:red"})
    axis.barh(table["feature"], table["psi"], color=colours.tolist())
    for threshold in (MODERATE, SIGNIFICANT):
        axis.axvline(threshold, linestyle="--", color="grey")
    axis.invert_yaxis()
    axis.set_xlabel("population stability index (recent against the training window)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
