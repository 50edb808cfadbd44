"""A BentoML endpoint that does nothing: the framework's ceiling on this machine (bench/serve.py, a).

It takes the /forecast body (a list of items, parsed by pydantic as the real service does) and
answers the ids, so only BentoML's HTTP handling, (de)serialization and routing are measured.
Its media type is declared, as the real service's is, so neither pays for BentoML deriving it.
"""

from __future__ import annotations

from typing import Annotated

import bentoml
from bentoml.validators import ContentType
from pydantic import BaseModel


class Item(BaseModel):
    store_id: str
    sku_id: str
    horizon: int


@bentoml.service(name="noop_forecast_service")
class NoopForecastService:
    @bentoml.api(route="/v1/forecast")
    def forecast(self, items: list[Item]) -> Annotated[list[dict], ContentType("application/json")]:
        return [{"store_id": item.store_id, "sku_id": item.sku_id} for item in items]
