"""Replenishment decisions (training/replenishment.py) from lead-time quantiles of known demand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import poisson

from training.lead_time import SERVICE_LEVELS, calibration, lead_time_quantiles
from training.replenishment import decide, probability_covered, quantile_at

H = 14


def _poisson_world(rows: int, seed: int, rate: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Forecasts that know the rate exactly, and Poisson actuals: lead-time demand is Poisson(L·rate)."""
    rng = np.random.default_rng(seed)
    bands = poisson.ppf([0.1, 0.5, 0.9], rate)
    forecast = np.broadcast_to(bands, (rows, H, 3)).astype("float64").copy()
    return forecast, rng.poisson(rate, size=(rows, H)).astype("float64")


def _calibrated(rows: int = 20_000) -> tuple[np.ndarray, np.ndarray, dict]:
    kept = calibration(*_poisson_world(rows, 1))
    forecast, _ = _poisson_world(64, 2)
    return forecast, lead_time_quantiles(forecast, np.asarray(kept["table"]), spread=kept["spread"]), kept


def _decide(forecast, quantiles, levels, **given):
    rows = len(forecast)
    defaults = {"lead_time": 7, "review_period": 1, "service_level": 0.95, "on_hand": np.nan, "on_order": 0}
    arrays = {k: np.full(rows, v, dtype="float64") for k, v in (defaults | given).items()}
    return decide(forecast, quantiles, levels, **arrays)


def test_quantiles_between_and_beyond_the_table_levels_grow_with_the_level_and_meet_them_exactly() -> None:
    forecast, quantiles, kept = _calibrated()
    levels = kept["levels"]
    at_seven = quantiles[:, 6]
    for n, alpha in enumerate(levels):  # on a level: the table's own value
        np.testing.assert_allclose(quantile_at(at_seven, levels, np.full(64, alpha)), at_seven[:, n])
    grid = np.linspace(0.5, 0.999, 60)
    curve = np.stack([quantile_at(at_seven, levels, np.full(64, a)) for a in grid], axis=1)
    assert (np.diff(curve, axis=1) >= -1e-9).all(), "a higher service level never needs less stock"
    assert (curve[:, -1] > at_seven[:, levels.index(0.99)]).all(), "0.999 reaches beyond the table's 0.99"


def test_reorder_points_and_order_up_to_levels_match_the_true_poisson_quantiles_within_a_unit() -> None:
    forecast, quantiles, kept = _calibrated()
    for lead, review, alpha in [(1, 1, 0.9), (7, 1, 0.95), (7, 7, 0.98), (10, 3, 0.95)]:
        made = _decide(forecast, quantiles, kept["levels"], lead_time=lead, review_period=review, service_level=alpha)
        assert np.abs(made.reorder_point - poisson.ppf(alpha, 6.0 * lead)).max() <= 1, (lead, alpha)
        assert np.abs(made.order_up_to - poisson.ppf(alpha, 6.0 * (lead + review))).max() <= 1, (lead, review)
        assert (made.reorder_point == np.floor(made.reorder_point)).all()
        assert (made.order_up_to >= made.reorder_point).all()
        np.testing.assert_allclose(made.safety_stock, made.reorder_point - 6.0 * lead)
        assert np.isnan(made.suggested_order).all() and np.isnan(made.stockout_probability).all(), "no position given"


def test_the_suggested_order_fills_the_position_up_to_the_level_and_is_never_negative() -> None:
    forecast, quantiles, kept = _calibrated()
    position = {"on_hand": np.array([0, 20, 500]), "on_order": np.array([5, 0, 0])}
    made = _decide(forecast[:3], quantiles[:3], kept["levels"], **position)
    up_to = made.order_up_to
    assert made.suggested_order.tolist() == [up_to[0] - 5, up_to[1] - 20, 0.0]


def test_the_stockout_probability_of_a_position_is_the_poisson_tail_within_three_points() -> None:
    forecast, quantiles, kept = _calibrated()
    for lead in (1, 7, 13):
        positions = np.resize(np.arange(0.0, 12.0 * lead), 64)
        made = _decide(forecast, quantiles, kept["levels"], lead_time=lead, on_hand=positions)
        truth = poisson.sf(positions, 6.0 * lead)  # P(demand over L days > position)
        assert np.abs(made.stockout_probability - truth).max() < 0.03, lead
    for alpha in (0.9, 0.95, 0.98):  # at the reorder point, about 1 - alpha
        point = _decide(forecast, quantiles, kept["levels"], service_level=alpha).reorder_point
        at_point = _decide(forecast, quantiles, kept["levels"], service_level=alpha, on_hand=point)
        assert np.abs(at_point.stockout_probability - (1 - alpha)).max() < 0.03, alpha
    covered = probability_covered(quantiles[:5, 6], kept["levels"], np.array([10.0, 30, 40, 50, 80]))
    assert (np.diff(covered) > 0).all()


def test_an_empty_shelf_on_a_slow_mover_is_a_likely_stockout_and_a_deep_one_is_not() -> None:
    levels = list(SERVICE_LEVELS)
    flat = np.zeros((2, len(levels)))  # a series that sells nothing: every quantile is 0
    assert probability_covered(flat, levels, np.array([0.0, 3.0])).tolist() == [1.0, 1.0]
    rising = np.array([[0, 0, 1, 2, 3, 4, 6, 8], [0, 0, 1, 2, 3, 4, 6, 8]], dtype="float64")
    covered = probability_covered(rising, levels, np.array([0.0, 30.0]))
    assert 0.25 < covered[0] < 0.5 and covered[1] > 0.9999


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"lead_time": 14}, r"lead_time \+ review_period is 15"),
        ({"lead_time": 7, "review_period": 8}, "at most 14"),
        ({"service_level": 0.9995}, "service_level"),
        ({"service_level": 0.4}, "service_level"),
        ({"on_hand": -1.0}, "on_hand"),
        ({"on_hand": 3.0, "on_order": -2.0}, "on_order"),
    ],
)
def test_what_is_out_of_range_is_refused_by_name(given: dict, named: str) -> None:
    forecast, quantiles, kept = _calibrated()
    with pytest.raises(ValueError, match=named):
        _decide(forecast, quantiles, kept["levels"], **given)


def test_reorder_points_round_down_for_unit_counts_and_up_for_demand_with_fractions() -> None:
    forecast = np.zeros((1, 3, 3))
    quantiles = np.broadcast_to(np.array([9.0, 10.2, 12.0]), (1, 3, 3))  # levels 0.8, 0.9, 0.95
    made = {
        whole: decide(
            forecast,
            quantiles,
            [0.8, 0.9, 0.95],
            lead_time=[1],
            review_period=[1],
            service_level=[0.9],
            on_hand=[10],
            on_order=[0],
            whole_demand=whole,
        )  # fmt: skip
        for whole in (True, False)
    }
    assert (made[True].reorder_point[0], made[False].reorder_point[0]) == (10, 11)
    assert (made[True].order_up_to[0], made[False].order_up_to[0]) == (10, 11)
    # 10 units on hand: a whole demand above it is 11 or more, a fractional one anything above 10.
    assert made[True].stockout_probability[0] < made[False].stockout_probability[0]
