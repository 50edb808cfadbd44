"""Request and response models of POST /forecast and POST /replenishment (see ARCHITECTURE.md, serving contract)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, model_validator

from demandops.contract import ID_PATTERN, MAX_SERVICE_LEVEL, MIN_SERVICE_LEVEL
from demandops.settings import MAX_HORIZON

# Strict: JSON types are taken as they are, so `"horizon": true` or `"3"` is refused rather than
# read as 1 or 3, and `[1]` is no promo plan. JSON integers are still numbers for float fields.
STRICT_REQUEST = ConfigDict(extra="forbid", strict=True)


class ForecastItem(BaseModel):
    """One series to forecast."""

    model_config = STRICT_REQUEST

    store_id: str = Field(pattern=ID_PATTERN, description="Store id as in the store master file.")
    sku_id: str = Field(pattern=ID_PATTERN, description="SKU id as in the SKU master file.")
    horizon: int = Field(
        ge=1, le=MAX_HORIZON, description="Periods to forecast (days, weeks or months: the model's frequency)."
    )
    planned_price: list[float | None] | None = Field(
        default=None,
        description="Planned shelf price of each forecast period, in order (null: the current price).",
    )
    planned_promo: list[bool | None] | None = Field(
        default=None,
        description="Whether each forecast period is planned to be on promotion (null: no promotion).",
    )

    @model_validator(mode="after")
    def _plans_cover_the_horizon(self) -> ForecastItem:
        _check_plans(self, self.horizon, "the horizon")
        return self


class QuantileForecast(BaseModel):
    date: date
    p10: float
    p50: float
    p90: float


class ForecastResult(BaseModel):
    store_id: str
    sku_id: str
    origin_date: date
    model_version: str
    degraded: bool
    forecast: list[QuantileForecast]


class ForecastRequest(BaseModel):
    """The body of POST /forecast."""

    model_config = STRICT_REQUEST

    items: list[ForecastItem] = Field(min_length=1, description="Series to forecast; answered in this order.")


class ReplenishmentItem(BaseModel):
    """One series to plan stock for: its lead time, review period, service level and, optionally, position."""

    model_config = STRICT_REQUEST

    store_id: str = Field(pattern=ID_PATTERN, description="Store id as in the store master file.")
    sku_id: str = Field(pattern=ID_PATTERN, description="SKU id as in the SKU master file.")
    lead_time: int = Field(ge=1, le=MAX_HORIZON, description="Periods from placing an order to receiving it (L).")
    review_period: int = Field(
        default=1, ge=1, le=MAX_HORIZON, description="Periods between two orders (R); L + R is at most the horizon."
    )
    service_level: float = Field(
        default=0.95,
        ge=MIN_SERVICE_LEVEL,
        le=MAX_SERVICE_LEVEL,
        description="Probability that demand over the lead time is covered (cycle service level, α).",
    )
    on_hand: int | None = Field(
        default=None, ge=0, description="Units on hand now; with it, a suggested order and a stockout probability."
    )
    on_order: int = Field(default=0, ge=0, description="Units ordered and not yet received.")
    planned_price: list[float | None] | None = Field(
        default=None, description="Planned shelf price of each of the next L + R periods (null: the current price)."
    )
    planned_promo: list[bool | None] | None = Field(
        default=None, description="Whether each of the next L + R periods is planned to be on promotion."
    )

    @model_validator(mode="after")
    def _plans_cover_the_window(self) -> ReplenishmentItem:
        _check_plans(self, self.lead_time + self.review_period, "L + R")
        return self


class ReplenishmentResult(BaseModel):
    store_id: str
    sku_id: str
    origin_date: date
    model_version: str
    degraded: bool
    lead_time: int
    review_period: int
    service_level: float
    expected_demand: float = Field(description="Sum of the p50s over the lead time.")
    reorder_point: int = Field(description="The service level's quantile of demand over L, in whole units.")
    order_up_to: int = Field(description="The service level's quantile of demand over L + R, in whole units.")
    safety_stock: float = Field(description="Reorder point less the expected demand over L.")
    suggested_order: int | None = Field(description="max(0, order_up_to - on_hand - on_order); null without on_hand.")
    stockout_probability: float | None = Field(
        description="P(demand over L > on_hand + on_order): running out before an order placed now arrives."
    )


class ReplenishmentRequest(BaseModel):
    """The body of POST /replenishment."""

    model_config = STRICT_REQUEST

    items: list[ReplenishmentItem] = Field(min_length=1, description="Series to plan; answered in this order.")


def _check_plans(item: ForecastItem | ReplenishmentItem, periods: int, what: str) -> None:
    """One planned value per period ahead (`periods`, named `what`), and prices a shelf could hold."""
    for name in ("planned_price", "planned_promo"):
        plan = getattr(item, name)
        if plan is not None and len(plan) != periods:
            raise ValueError(f"{name} has {len(plan)} values; expected one per period of {what} ({periods})")
    if item.planned_price and any(p is not None and not 0 < p < 1e6 for p in item.planned_price):
        raise ValueError("planned_price values must be positive and below 1e6")
