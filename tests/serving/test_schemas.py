from __future__ import annotations

import pytest
from pydantic import ValidationError

from serving.schemas import ForecastItem


def test_plans_are_optional_and_may_leave_periods_open() -> None:
    item = ForecastItem(store_id="S000", sku_id="P0001", horizon=3, planned_price=[2.5, None, 2.0])
    assert item.planned_promo is None and item.planned_price == [2.5, None, 2.0]


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"planned_price": [2.5, 2.5]}, "planned_price has 2 values; expected one per period of the horizon (3)"),
        ({"planned_promo": [True, False, True, True]}, "planned_promo has 4 values"),
        ({"planned_price": [2.5, -1.0, 2.0]}, "planned_price values must be positive"),
    ],
)
def test_a_plan_that_does_not_fit_the_horizon_is_refused(plan: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ForecastItem(store_id="S000", sku_id="P0001", horizon=3, **plan)
