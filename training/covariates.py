"""Known-future covariates: what is known about each target period when the forecast is made.

The calendar of the target periods, the planned price and the planned promotion. Offline, the
plan is what the data recorded for those periods (prices and promotions are planned ahead in
retail). At serving time the consumer may send a plan; without one, the forecast assumes the
current price and no promotion. Both paths build the model input with `future_covariates`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demandops.contract import SERIES_KEYS
from demandops.frequency import day_of_year, period_start_days
from training.calendar import CALENDAR_WIDTHS, target_calendar, target_ordinals

# Per target period after the calendar one-hot: log planned/current price, planned promotion,
# annual position (sin, cos), and the share of the plan before it that is on promotion.
PLAN_WIDTH = 5
PRICE_RATIO_CLIP = (-1.5, 1.5)  # log ratio: a price between 0.22x and 4.5x the current one


def planned_price_columns(horizon: int) -> list[str]:
    return [f"planned_price_{h}" for h in range(1, horizon + 1)]


def planned_promo_columns(horizon: int) -> list[str]:
    return [f"planned_promo_{h}" for h in range(1, horizon + 1)]


def future_width(frequency: str) -> int:
    """Covariates per target period: the calendar one-hot plus the plan."""
    return CALENDAR_WIDTHS[frequency] + PLAN_WIDTH


def recorded_plan(calendar: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """The price and promotion each series recorded in the H periods after each row.

    `calendar` is a completed calendar (one row per period of each series, sorted). Periods
    past the end of the data are NaN, which `future_covariates` reads as "no plan".
    """
    by_series = calendar.groupby(list(SERIES_KEYS), sort=False)
    plan = {}
    for h, column in enumerate(planned_price_columns(horizon), start=1):
        plan[column] = by_series["price"].shift(-h) if "price" in calendar else np.nan
    for h, column in enumerate(planned_promo_columns(horizon), start=1):
        plan[column] = by_series["on_promo"].shift(-h).astype("float64") if "on_promo" in calendar else np.nan
    return pd.DataFrame(plan, index=calendar.index)


def plan_arrays(frame: pd.DataFrame, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Planned prices and promotions (rows, horizon) from a frame's plan columns; NaN where absent."""

    def read(columns: list[str]) -> np.ndarray:
        present = [frame[c].to_numpy("float64") if c in frame else np.full(len(frame), np.nan) for c in columns]
        return np.stack(present, axis=1) if present else np.zeros((len(frame), 0))

    return read(planned_price_columns(horizon)), read(planned_promo_columns(horizon))


def future_covariates(
    origins: pd.Series | pd.DatetimeIndex,
    current_price: np.ndarray,
    planned_price: np.ndarray,
    planned_promo: np.ndarray,
    frequency: str = "D",
) -> np.ndarray:
    """Model input for each target period: shape (rows, horizon, future_width(frequency)).

    A missing planned price means the current price; a missing planned promotion means none.
    """
    horizon = planned_price.shape[1]
    calendar = target_calendar(origins, horizon, frequency)
    current = np.asarray(current_price, dtype="float64")[:, None]
    price = np.where(np.isnan(planned_price), current, planned_price)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(price / current)
    ratio = np.clip(np.nan_to_num(ratio, nan=0.0, posinf=0.0, neginf=0.0), *PRICE_RATIO_CLIP)
    promo = np.nan_to_num(planned_promo, nan=0.0)
    # How much of the plan before each period is on promotion: a promotion ending inside the
    # horizon is followed by a dip (customers stocked up), which the model can only see here.
    promo_before = np.cumsum(promo, axis=1) - promo
    promo_before = promo_before / np.arange(1, horizon + 1)[None, :]
    days = period_start_days(target_ordinals(origins, horizon, frequency), frequency)
    angle = 2 * np.pi * day_of_year(days) / 365.25
    plan = np.stack([ratio, promo, np.sin(angle), np.cos(angle), promo_before], axis=-1)
    return np.concatenate([calendar, plan.astype("float32")], axis=-1)
