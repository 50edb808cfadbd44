from __future__ import annotations

import json

import pytest
from pydantic import TypeAdapter, ValidationError

from serving.schemas import ForecastItem, ForecastRequest


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


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("horizon", True),
        ("horizon", False),
        ("horizon", "3"),
        ("horizon", 3.0),
        ("store_id", 7),
        ("planned_promo", [1, 0, 1]),
        ("planned_promo", ["true", None, None]),
        ("planned_price", [True, 2.0, 2.0]),
        ("planned_price", ["2.5", 2.0, 2.0]),
    ],
)
def test_json_values_of_another_type_are_refused_not_coerced(field: str, value: object) -> None:
    body = {"store_id": "S000", "sku_id": "P0001", "horizon": 3, field: value}
    with pytest.raises(ValidationError) as refused:
        ForecastItem.model_validate_json(json.dumps(body))
    assert {error["loc"][0] for error in refused.value.errors()} == {field}


def test_json_integers_are_prices_as_the_gateway_reads_them() -> None:
    body = json.dumps({"items": [{"store_id": "S000", "sku_id": "P0001", "horizon": 2, "planned_price": [1, 2.5]}]})
    [item] = TypeAdapter(ForecastRequest).validate_python(json.loads(body)).items  # what the gateway does
    assert item.planned_price == [1.0, 2.5] and all(type(price) is float for price in item.planned_price)
    assert ForecastRequest.model_validate_json(body).items == [item]
