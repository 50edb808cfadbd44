"""Request and response models of POST /forecast (see ARCHITECTURE.md, serving contract)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, model_validator

from demandops.contract import ID_PATTERN

MAX_HORIZON = 90
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
        for name in ("planned_price", "planned_promo"):
            plan = getattr(self, name)
            if plan is not None and len(plan) != self.horizon:
                raise ValueError(
                    f"{name} has {len(plan)} values; expected one per period of the horizon ({self.horizon})"
                )
        if self.planned_price and any(p is not None and not 0 < p < 1e6 for p in self.planned_price):
            raise ValueError("planned_price values must be positive and below 1e6")
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
