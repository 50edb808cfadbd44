"""A seeded, vectorised simulator of daily point-of-sale data that behaves like retail demand.

Expected demand per (store, sku, day) =
    level(store, sku) x weekly(category) x annual(category) x trend(sku) x price effect
    x promotion uplift (and a dip after it) x holiday effect,
and observed sales are Poisson draws censored by the stock on hand. Slow movers sell a fraction
of a unit a day; some SKUs launch late or are discontinued; stores close on some days (no rows).

Randomness is drawn per series (fixed by the seed and the shape) and per day (seeded by the
day's ordinal), so extending a preset by N days never changes the days already written: that
is how `demandops data append` emits new days.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np
import pandas as pd

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
# Annual amplitude and peak day-of-year per category: drinks peak in summer, snacks in winter.
ANNUAL_AMPLITUDE = np.array([0.05, 0.08, 0.30, 0.15])
ANNUAL_PEAK_DAY = np.array([350, 100, 200, 355])
PRICE_ELASTICITY = -1.5
PROMO_DISCOUNT = 0.25
PROMO_LENGTH_DAYS = 7
POST_PROMO_DIP_DAYS = 7
POST_PROMO_DIP = 0.3  # pantry loading: demand is 30% lower in the week after a promotion
HOLIDAY_UPLIFT = {(12, 24): 1.6, (12, 31): 1.4, (12, 23): 1.3, (4, 30): 1.2}
HOLIDAY_CLOSED = {(12, 25), (1, 1)}  # every store is closed
REPLENISH_EVERY_DAYS = 7
STOCK_COVER_DAYS = 12.0  # order-up-to level, in days of mean demand


SHIFT_KINDS = ("level", "trend", "promotion")


@dataclass(frozen=True)
class DemandShift:
    """A change in demand from a given day on, for testing how a served model notices and recovers:
    - level: expected demand x factor (a competitor closes, a new channel);
    - trend: x factor per year since the day (a category's trend breaks);
    - promotion: promotion days' demand x factor (a new promotion pattern: deeper displays, flyers).
    `category` limits it to one category's SKUs ("" for every SKU)."""

    kind: str
    start: date
    factor: float
    category: str = ""

    def __post_init__(self) -> None:
        if self.kind not in SHIFT_KINDS:
            raise ValueError(f"unknown demand shift {self.kind!r}; expected one of {', '.join(SHIFT_KINDS)}")
        if not self.factor > 0:
            raise ValueError(f"a demand shift's factor must be positive, got {self.factor}")
        if self.category and self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}; expected one of {', '.join(CATEGORIES)}")

    def multiplier(self, days: pd.DatetimeIndex, promo: np.ndarray, sku_category: np.ndarray) -> np.ndarray:
        """Per (store, sku, day): 1 before the start and outside the category, the shift after."""
        after = np.asarray(days >= pd.Timestamp(self.start))
        years = np.maximum((days - pd.Timestamp(self.start)).days.to_numpy() / 365.0, 0.0)
        if self.kind == "level":
            effect = np.where(after, self.factor, 1.0)[None, None, :]
        elif self.kind == "trend":
            effect = np.where(after, self.factor**years, 1.0)[None, None, :]
        else:
            effect = np.where(promo & after[None, None, :], self.factor, 1.0)
        chosen = np.ones(len(sku_category), bool) if not self.category else sku_category == self.category
        return np.where(chosen[None, :, None], effect, 1.0)


@dataclass(frozen=True)
class Preset:
    n_stores: int
    n_skus: int
    n_days: int
    start: date = date(2023, 1, 1)
    seed: int = 7
    slow_mover_share: float = 0.2
    launch_share: float = 0.1
    discontinue_share: float = 0.05
    promo_starts_per_year: float = 3.0
    missed_delivery_rate: float = 0.05
    closure_rate: float = 0.003
    shifts: tuple[DemandShift, ...] = ()


PRESETS: dict[str, Preset] = {
    "small": Preset(n_stores=3, n_skus=6, n_days=150),
    "default": Preset(n_stores=8, n_skus=25, n_days=730),
    "large": Preset(n_stores=50, n_skus=500, n_days=1095),
}


@dataclass(frozen=True)
class SimulatedData:
    sales: pd.DataFrame
    stores: pd.DataFrame
    skus: pd.DataFrame
    oracle: pd.DataFrame  # noise-free expected demand (uncensored) of every row in `sales`


@dataclass(frozen=True)
class _Series:
    """Per-series parameters, drawn once from the seed."""

    category: np.ndarray  # (skus,)
    level: np.ndarray  # (stores, skus)
    slope: np.ndarray  # (skus,)
    base_price: np.ndarray  # (skus,)
    launch_day: np.ndarray  # (skus,) first day index with sales
    end_day: np.ndarray  # (skus,) last day index with sales (inclusive)


def extended(preset: Preset, days: int) -> Preset:
    """The same preset, `days` days longer."""
    return replace(preset, n_days=preset.n_days + days)


def _exactly(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """A mask selecting round(share * n) of n items (at least one when share > 0)."""
    count = max(round(share * n), 1 if share > 0 else 0)
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=min(count, n), replace=False)] = True
    return mask


def _series(preset: Preset) -> _Series:
    rng = np.random.default_rng([preset.seed, 0])
    n_skus = preset.n_skus
    category = rng.integers(0, len(CATEGORIES), n_skus)
    sku_level = rng.lognormal(1.2, 0.8, n_skus)
    slow = _exactly(rng, n_skus, preset.slow_mover_share)
    sku_level = np.where(slow, rng.uniform(0.15, 0.5, n_skus), sku_level)
    level = rng.lognormal(0.0, 0.35, (preset.n_stores, 1)) * sku_level[None, :]
    # Launch and discontinuation days count from the start, so extending the preset keeps them.
    launch = np.where(_exactly(rng, n_skus, preset.launch_share), rng.integers(30, 110, n_skus), 0)
    end = np.where(_exactly(rng, n_skus, preset.discontinue_share), rng.integers(300, 600, n_skus), 10**9)
    return _Series(
        category=category,
        level=level,
        slope=rng.normal(0.0, 0.2, n_skus),
        base_price=rng.uniform(1.0, 12.0, n_skus),
        launch_day=launch,
        end_day=np.maximum(end, launch + 60),
    )


# One independent random stream per purpose and day.
PROMO, PRICE, DEMAND, CLOSURE, DELIVERY = range(5)


def _day_rng(preset: Preset, day_index: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([preset.seed, 1, purpose, day_index])


def _promo_calendar(preset: Preset) -> np.ndarray:
    """(stores, skus, days) booleans; promotions run PROMO_LENGTH_DAYS from their start day."""
    shape = (preset.n_stores, preset.n_skus, preset.n_days)
    starts = np.zeros(shape, dtype=bool)
    p_start = preset.promo_starts_per_year / 365.0
    for d in range(preset.n_days):
        starts[:, :, d] = _day_rng(preset, d, PROMO).random(shape[:2]) < p_start
    active = np.zeros(shape, dtype=bool)
    for lag in range(PROMO_LENGTH_DAYS):
        active[:, :, lag:] |= starts[:, :, : preset.n_days - lag]
    return active


def _post_promo(active: np.ndarray) -> np.ndarray:
    """True on the POST_PROMO_DIP_DAYS days after a promotion ends (and not on promotion)."""
    ended = active[:, :, :-1] & ~active[:, :, 1:]
    after = np.zeros_like(active)
    first_day_after = np.pad(ended, ((0, 0), (0, 0), (1, 0)))  # True on the first day off promotion
    for lag in range(POST_PROMO_DIP_DAYS):
        after[:, :, lag:] |= first_day_after[:, :, : active.shape[2] - lag]
    return after & ~active


def _expected_demand(preset: Preset, series: _Series, days: pd.DatetimeIndex, promo: np.ndarray, price: np.ndarray):
    years = np.arange(preset.n_days) / 365.0
    weekly = WEEKLY_PROFILES[series.category][:, days.dayofweek.to_numpy()]
    phase = 2 * np.pi * (days.dayofyear.to_numpy()[None, :] - ANNUAL_PEAK_DAY[series.category][:, None]) / 365.25
    annual = 1 + ANNUAL_AMPLITUDE[series.category][:, None] * np.cos(phase)
    trend = np.exp(series.slope[:, None] * years[None, :])
    holiday = np.array([HOLIDAY_UPLIFT.get((d.month, d.day), 1.0) for d in days])
    price_effect = (price / series.base_price[None, :, None]) ** PRICE_ELASTICITY
    dip = np.where(_post_promo(promo), 1 - POST_PROMO_DIP, 1.0)
    sku_day = (weekly * annual * trend)[None, :, :] * holiday[None, None, :]
    expected = series.level[:, :, None] * sku_day * price_effect * dip
    categories = np.array(CATEGORIES)[series.category]
    for shift in preset.shifts:
        expected = expected * shift.multiplier(days, promo, categories)
    return expected


def _open_mask(preset: Preset, series: _Series, days: pd.DatetimeIndex) -> np.ndarray:
    """(stores, skus, days): the SKU is listed and the store is open."""
    index = np.arange(preset.n_days)
    listed = (index[None, :] >= series.launch_day[:, None]) & (index[None, :] <= series.end_day[:, None])
    holiday_closed = np.array([(d.month, d.day) in HOLIDAY_CLOSED for d in days])
    store_closed = np.stack(
        [_day_rng(preset, d, CLOSURE).random(preset.n_stores) < preset.closure_rate for d in range(preset.n_days)],
        axis=1,
    )
    store_open = ~store_closed & ~holiday_closed[None, :]
    return store_open[:, None, :] & listed[None, :, :]


def _sell_through_stock(
    preset: Preset, demand_draws: np.ndarray, level: np.ndarray, is_open: np.ndarray, shifted: np.ndarray
):
    """Sales censored by stock; returns (units_sold, stock_on_hand at opening).

    The order-up-to level depends on the series level and on the demand shifts in force (`shifted`,
    per store, SKU and day: the retailer re-sizes its orders), never on the horizon.
    """
    stock = np.ceil(STOCK_COVER_DAYS * level * shifted[:, :, 0])
    sold = np.zeros_like(demand_draws)
    opening = np.zeros_like(demand_draws)
    for d in range(preset.n_days):
        if d % REPLENISH_EVERY_DAYS == 0:
            target = np.ceil(STOCK_COVER_DAYS * level * shifted[:, :, d])
            delivered = _day_rng(preset, d, DELIVERY).random(stock.shape) >= preset.missed_delivery_rate
            stock = np.where(delivered, np.maximum(stock, target), stock)
        opening[:, :, d] = stock
        sold[:, :, d] = np.where(is_open[:, :, d], np.minimum(demand_draws[:, :, d], stock), 0)
        stock = stock - sold[:, :, d]
    return sold, opening


def _level_shifts(preset: Preset, series: _Series, days: pd.DatetimeIndex, promo: np.ndarray) -> np.ndarray:
    """The level and trend shifts' multiplier of demand per (store, sku, day), which orders follow; without
    shifts one row of ones that broadcasts (a catalogue-sized array of ones would cost memory at scale)."""
    shifted = np.ones((1, 1, len(days)))
    categories = np.array(CATEGORIES)[series.category]
    for shift in (s for s in preset.shifts if s.kind != "promotion"):
        shifted = shifted * shift.multiplier(days, promo, categories)
    return shifted


def simulate(preset: Preset) -> SimulatedData:
    """Sales, master data and the oracle for every listed (store, sku, open day) of the preset."""
    series = _series(preset)
    days = pd.date_range(preset.start, periods=preset.n_days, freq="D")
    promo = _promo_calendar(preset)
    jitter = np.stack(
        [_day_rng(preset, d, PRICE).uniform(0.97, 1.03, promo.shape[:2]) for d in range(preset.n_days)], 2
    )
    price = series.base_price[None, :, None] * np.where(promo, 1 - PROMO_DISCOUNT, 1.0) * jitter
    expected = _expected_demand(preset, series, days, promo, price)
    draws = np.stack([_day_rng(preset, d, DEMAND).poisson(expected[:, :, d]) for d in range(preset.n_days)], 2)
    is_open = _open_mask(preset, series, days)
    shifted = _level_shifts(preset, series, days, promo)
    units, stock = _sell_through_stock(preset, draws.astype("float64"), series.level, is_open, shifted)

    s_idx, k_idx, d_idx = np.nonzero(is_open)
    # Object arrays: a row's key refers to its store's one string, where a fixed-width array indexed
    # per row would become a new Python string per row in pandas (1 GB a column at 25,000 series).
    store_ids = np.array([f"S{i:03d}" for i in range(preset.n_stores)], dtype=object)
    sku_ids = np.array([f"P{i:04d}" for i in range(preset.n_skus)], dtype=object)
    keys = {"date": days[d_idx], "store_id": store_ids[s_idx], "sku_id": sku_ids[k_idx]}
    sales = pd.DataFrame(
        {
            **keys,
            "units_sold": units[s_idx, k_idx, d_idx],
            "price": np.round(price[s_idx, k_idx, d_idx], 2),
            "on_promo": promo[s_idx, k_idx, d_idx],
            "stock_on_hand": stock[s_idx, k_idx, d_idx],
        }
    )
    oracle = pd.DataFrame({**keys, "expected_units": expected[s_idx, k_idx, d_idx]})
    order = ["date", "store_id", "sku_id"]
    rng = np.random.default_rng([preset.seed, 2])
    stores = pd.DataFrame(
        {
            "store_id": store_ids,
            "region": rng.choice(REGIONS, preset.n_stores),
            "size": rng.choice(["small", "medium", "large"], preset.n_stores),
        }
    )
    skus = pd.DataFrame(
        {
            "sku_id": sku_ids,
            "category": np.array(CATEGORIES)[series.category],
            "launch_date": [preset.start + timedelta(days=int(d)) for d in series.launch_day],
        }
    )
    return SimulatedData(
        sales=sales.sort_values(order, ignore_index=True),
        stores=stores,
        skus=skus,
        oracle=oracle.sort_values(order, ignore_index=True),
    )
