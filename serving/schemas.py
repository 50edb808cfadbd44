"""Request and response models of POST /forecast (see ARCHITECTURE.md, serving contract)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from demandops.contract import ID_PATTERN

MAX_HORIZON = 90


class ForecastItem(BaseModel):
    """One series to forecast."""

    model_config = ConfigDict(extra="forbid")

    store_id: str = Field(pattern=ID_PATTERN, description="Store id as in the store master file.")
    sku_id: str = Field(pattern=ID_PATTERN, description="SKU id as in the SKU master file.")
    horizon: int = Field(
        ge=1, le=MAX_HORIZON, description="Periods to forecast (days, weeks or months: the model's frequency)."
    )


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
