from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from demandops.datasets import generate
from demandops.simulator import PRESETS, simulate


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_preset_writes_identical_bytes(tmp_path: Path) -> None:
    generate(tmp_path / "a", "small")
    generate(tmp_path / "b", "small")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_one_row_per_series_and_day(small_sales: pd.DataFrame) -> None:
    preset = PRESETS["small"]
    assert len(small_sales) == preset.n_stores * preset.n_skus * preset.n_days
    assert not small_sales.duplicated(["date", "store_id", "sku_id"]).any()
    assert (small_sales["units_sold"] >= 0).all()


def test_weekly_seasonality_and_promotion_uplift_are_present() -> None:
    sales = simulate(PRESETS["default"]).sales
    by_day = sales.groupby(sales["date"].dt.dayofweek)["units_sold"].mean()
    assert by_day[5] > 1.15 * by_day[1]  # Saturday sells clearly more than Tuesday
    promo = sales.groupby("on_promo")["units_sold"].mean()
    assert promo[True] > 1.2 * promo[False]


def test_prices_are_positive_and_discounted_on_promotion(small_sales: pd.DataFrame) -> None:
    assert (small_sales["price"] > 0).all()
    relative = small_sales["price"] / small_sales.groupby("sku_id")["price"].transform("median")
    assert np.median(relative[small_sales["on_promo"]]) < 0.85
