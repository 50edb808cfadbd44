"""A seeded, vectorised simulator of daily point-of-sale data.

Demand = base level(store, sku) x weekly profile(category) x trend x price effect x promo uplift,
observed through Poisson noise. Same preset and seed give the same bytes on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from demandops.contract import write_sales

CATEGORIES = ("grocery", "household", "beverages", "snacks")
REGIONS = ("north", "south", "east", "west")
# Relative demand Monday..Sunday per category: shoppers buy drinks and snacks on weekends.
WEEKLY_PROFILES = np.array(
    [
        [0.9, 0.85, 0.9, 0.95, 1.1, 1.3, 1.0],
        [1.0, 0.95, 0.95, 1.0, 1.05, 1.1, 0.95],
        [0.8, 0.8, 0.85, 0.95, 1.2, 1.45, 0.95],
        [0.85, 0.8, 0.85, 0.9, 1.15, 1.45, 1.0],
    ]
)
PRICE_ELASTICITY = -1.5
PROMO_DISCOUNT = 0.25
PROMO_PROBABILITY = 0.04


@dataclass(frozen=True)
class Preset:
    n_stores: int
    n_skus: int
    n_days: int
    start: date = date(2023, 1, 1)
    seed: int = 7


PRESETS: dict[str, Preset] = {
    "small": Preset(n_stores=3, n_skus=5, n_days=150),
    "default": Preset(n_stores=8, n_skus=25, n_days=730),
}


@dataclass(frozen=True)
class SimulatedData:
    sales: pd.DataFrame
    stores: pd.DataFrame
    skus: pd.DataFrame


def simulate(preset: Preset) -> SimulatedData:
    """Sales for every (store, sku, day) of the preset."""
    rng = np.random.default_rng(preset.seed)
    stores = pd.DataFrame(
        {
            "store_id": [f"S{i:03d}" for i in range(preset.n_stores)],
            "region": rng.choice(REGIONS, preset.n_stores),
            "size": rng.choice(["small", "medium", "large"], preset.n_stores),
        }
    )
    category_idx = rng.integers(0, len(CATEGORIES), preset.n_skus)
    skus = pd.DataFrame(
        {
            "sku_id": [f"P{i:04d}" for i in range(preset.n_skus)],
            "category": np.array(CATEGORIES)[category_idx],
        }
    )
    days = pd.date_range(preset.start, periods=preset.n_days, freq="D")
    shape = (preset.n_stores, preset.n_skus, preset.n_days)

    store_scale = rng.lognormal(0.0, 0.4, preset.n_stores)[:, None, None]
    sku_scale = rng.lognormal(1.2, 0.9, preset.n_skus)[None, :, None]
    weekly = WEEKLY_PROFILES[category_idx][:, days.dayofweek.to_numpy()][None, :, :]
    slope = rng.normal(0.0, 0.25, (1, preset.n_skus, 1))
    trend = np.exp(slope * np.linspace(0, preset.n_days / 365, preset.n_days)[None, None, :])
    base_price = rng.uniform(1.0, 12.0, preset.n_skus)[None, :, None]
    on_promo = rng.random(shape) < PROMO_PROBABILITY
    price = base_price * np.where(on_promo, 1 - PROMO_DISCOUNT, 1.0) * rng.uniform(0.97, 1.03, shape)
    price_effect = (price / base_price) ** PRICE_ELASTICITY
    expected = store_scale * sku_scale * weekly * trend * price_effect
    units = rng.poisson(expected)

    s_idx, k_idx, d_idx = np.indices(shape).reshape(3, -1)
    sales = pd.DataFrame(
        {
            "date": days[d_idx],
            "store_id": stores["store_id"].to_numpy()[s_idx],
            "sku_id": skus["sku_id"].to_numpy()[k_idx],
            "units_sold": units.reshape(-1).astype("float64"),
            "price": np.round(price.reshape(-1), 2),
            "on_promo": on_promo.reshape(-1),
        }
    ).sort_values(["date", "store_id", "sku_id"], ignore_index=True)
    return SimulatedData(sales=sales, stores=stores, skus=skus)


def write_dataset(data: SimulatedData, data_dir: Path) -> int:
    """Write sales partitions and master files; returns the number of partitions."""
    data_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(data.stores, preserve_index=False), data_dir / "stores.parquet")
    pq.write_table(pa.Table.from_pandas(data.skus, preserve_index=False), data_dir / "skus.parquet")
    return len(write_sales(data_dir, data.sales))
