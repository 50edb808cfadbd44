"""Replenishment decisions from lead-time demand quantiles (training/lead_time.py), in whole units.

For an item with lead time L, review period R and service level α:
- reorder point      = the α-quantile of demand over L, in whole units (rounded down where demand
                       comes in whole units, up where it does not: see lead_time.whole_units);
- order-up-to level  = the α-quantile of demand over L + R, in whole units alike;
- safety stock       = reorder point − expected demand over L (the sum of the p50s of steps 1..L);
- suggested order    = max(0, order-up-to − on_hand − on_order), when the position is given;
- stockout probability = P(demand over L > on_hand + on_order): the risk of running out before an
  order placed now can arrive.

A bundle's table holds a handful of levels (lead_time.SERVICE_LEVELS). Between them a quantile is
interpolated linearly in the normal score z = Φ⁻¹(α), where a tail is closer to a straight line than
in α itself; beyond the outer levels it is extended with the slope of the outer two, so that any α in
[MIN_SERVICE_LEVEL, MAX_SERVICE_LEVEL] has an answer. probability_covered is the inverse of
that curve, read for whole units with a continuity correction: a whole demand stays at or below a
position x when the continuous demand the quantiles describe is below x + 1/2. On Poisson demand
(tests/training/test_replenishment.py) that reading is within 2.3 points of the true tail at
L = 1, 7 and 14; reading it at x or x + 1 was 4 to 11 points off at L = 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from demandops.contract import MAX_SERVICE_LEVEL, MIN_SERVICE_LEVEL
from training.lead_time import cumulative_median, whole_units

WHOLE_UNIT_CORRECTION = 0.5  # see the module's docstring


@dataclass(frozen=True)
class Decisions:
    """One entry per item; suggested_order and stockout_probability are NaN where no on_hand was given."""

    expected_demand: np.ndarray
    reorder_point: np.ndarray
    order_up_to: np.ndarray
    safety_stock: np.ndarray
    suggested_order: np.ndarray
    stockout_probability: np.ndarray


def quantile_at(quantiles: np.ndarray, levels, alpha: np.ndarray) -> np.ndarray:
    """Per row, the α-quantile from `quantiles` (rows, levels), interpolated in z; at least 0."""
    z_levels, z = norm.ppf(np.asarray(levels, dtype="float64")), norm.ppf(np.asarray(alpha, dtype="float64"))
    segment = np.clip(np.searchsorted(z_levels, z, side="right") - 1, 0, len(z_levels) - 2)
    rows = np.arange(len(quantiles))
    low, high = quantiles[rows, segment], quantiles[rows, segment + 1]
    share = (z - z_levels[segment]) / (z_levels[segment + 1] - z_levels[segment])
    return np.maximum(low + share * (high - low), 0.0)


def probability_covered(quantiles: np.ndarray, levels, position: np.ndarray, whole: bool = True) -> np.ndarray:
    """Per row, P(demand <= position): the level at which the quantile curve of `quantiles` (rows,
    levels), interpolated as quantile_at does, reaches position + 1/2 for whole demand, position
    itself for demand with fractions."""
    z_levels = norm.ppf(np.asarray(levels, dtype="float64"))
    target = np.asarray(position, dtype="float64") + (WHOLE_UNIT_CORRECTION if whole else 0.0)
    below = (quantiles <= target[:, None]).sum(axis=1)  # levels whose quantile the position covers
    segment = np.clip(below - 1, 0, len(z_levels) - 2)
    rows = np.arange(len(quantiles))
    low, high = quantiles[rows, segment], quantiles[rows, segment + 1]
    rise = high - low
    with np.errstate(divide="ignore", invalid="ignore"):
        z = z_levels[segment] + (target - low) / rise * (z_levels[segment + 1] - z_levels[segment])
    # A flat outer segment: the curve never reaches the target beyond it (or always has, below it).
    z = np.where(rise > 0, z, np.where(target >= high, np.inf, -np.inf))
    return np.where(np.isnan(target), np.nan, norm.cdf(z))


def decide(
    forecast: np.ndarray,
    quantiles: np.ndarray,
    levels,
    *,
    lead_time: np.ndarray,
    review_period: np.ndarray,
    service_level: np.ndarray,
    on_hand: np.ndarray,
    on_order: np.ndarray,
    whole_demand: bool = True,
) -> Decisions:
    """The decisions for rows of quantile forecasts (rows, H, 3) and lead-time quantiles (rows, H,
    levels); per row its lead time, review period, service level, and position (on_hand NaN: none);
    `whole_demand`: whether demand comes in whole units (lead_time.whole_units). Raises ValueError
    naming what is out of range."""
    lead_time, review_period = np.asarray(lead_time, dtype="int64"), np.asarray(review_period, dtype="int64")
    service_level = np.asarray(service_level, dtype="float64")
    on_hand, on_order = np.asarray(on_hand, dtype="float64"), np.asarray(on_order, dtype="float64")
    _check(forecast.shape[1], lead_time, review_period, service_level, on_hand, on_order)
    rows = np.arange(len(forecast))
    reorder_point = whole_units(quantile_at(quantiles[rows, lead_time - 1], levels, service_level), whole_demand)
    order_up_to = quantile_at(quantiles[rows, lead_time + review_period - 1], levels, service_level)
    order_up_to = whole_units(order_up_to, whole_demand)
    order_up_to = np.maximum(order_up_to, reorder_point)  # a longer window never needs less stock
    expected = cumulative_median(forecast)[rows, lead_time - 1]
    position = on_hand + on_order
    return Decisions(
        expected_demand=expected,
        reorder_point=reorder_point,
        order_up_to=order_up_to,
        safety_stock=reorder_point - expected,
        suggested_order=np.maximum(order_up_to - position, 0.0),
        stockout_probability=1.0 - probability_covered(quantiles[rows, lead_time - 1], levels, position, whole_demand),
    )


def _check(horizon: int, lead_time, review_period, service_level, on_hand, on_order) -> None:
    if (lead_time < 1).any() or (review_period < 1).any():
        raise ValueError("lead_time and review_period must be at least 1 period")
    beyond = lead_time + review_period > horizon
    if beyond.any():
        n = int(np.argmax(beyond))
        raise ValueError(
            f"lead_time + review_period is {lead_time[n] + review_period[n]} periods; this model forecasts "
            f"{horizon}, so lead_time + review_period must be at most {horizon}"
        )
    if ((service_level < MIN_SERVICE_LEVEL) | (service_level > MAX_SERVICE_LEVEL) | np.isnan(service_level)).any():
        raise ValueError(f"service_level must be within [{MIN_SERVICE_LEVEL}, {MAX_SERVICE_LEVEL}]")
    if (on_hand < 0).any() or (on_order < 0).any():
        raise ValueError("on_hand and on_order must be at least 0 units")
