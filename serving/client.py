"""A typed Python client of the forecast service, for consumers that plan in Python.

    from serving.client import ForecastClient, ForecastRequestError

    client = ForecastClient("http://127.0.0.1:3000", api_key=KEY)  # KEY: where the service requires keys
    results = client.forecast([{"store_id": "S000", "sku_id": "P0000", "horizon": 7}])
    results[0].forecast[0].p90
    [plan] = client.replenishment([{"store_id": "S000", "sku_id": "P0000", "lead_time": 7, "on_hand": 12}])
    plan.reorder_point, plan.suggested_order

Items are validated by the same pydantic schema as the service before they are sent; a refused
request raises ForecastRequestError with the HTTP status and the service's message.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from pydantic import TypeAdapter

from serving.routes import FORECAST, METADATA, REPLENISHMENT
from serving.schemas import ForecastItem, ForecastResult, ReplenishmentItem, ReplenishmentResult

_RESULTS = TypeAdapter(list[ForecastResult])
_PLANS = TypeAdapter(list[ReplenishmentResult])


class ForecastRequestError(Exception):
    """The service refused a request: the HTTP status, the error's stable `code`, its message and
    details (the fields or ids at fault), and for a 503 how many seconds to wait (`retry_after`)."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        code: str = "",
        details: list[dict] | None = None,
        retry_after: int | None = None,
    ):
        super().__init__(f"HTTP {status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details or []
        self.retry_after = retry_after


class ForecastClient:
    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 30.0):
        """api_key: a key of `demandops keys create`, for a service that requires one."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, headers=headers)

    def forecast(self, items: Sequence[ForecastItem | dict]) -> list[ForecastResult]:
        """p10/p50/p90 per period for each item, in the order given."""
        checked = [item if isinstance(item, ForecastItem) else ForecastItem.model_validate(item) for item in items]
        body = {"items": [item.model_dump(exclude_none=True) for item in checked]}
        return _RESULTS.validate_python(self._post(FORECAST, body))

    def replenishment(self, items: Sequence[ReplenishmentItem | dict]) -> list[ReplenishmentResult]:
        """Reorder point, order-up-to level, safety stock and (given on_hand) the order, per item in order."""
        checked = [i if isinstance(i, ReplenishmentItem) else ReplenishmentItem.model_validate(i) for i in items]
        body = {"items": [item.model_dump(exclude_none=True) for item in checked]}
        return _PLANS.validate_python(self._post(REPLENISHMENT, body))

    def metadata(self) -> dict:
        """The served model version, its lifecycle state at build, the feature service, the horizon."""
        return self._post(METADATA, {})

    def _post(self, path: str, body: dict):
        reply = self._http.post(path, json=body)
        if reply.status_code == 200:
            return reply.json()
        retry_after = reply.headers.get("retry-after")
        retry_after = int(retry_after) if retry_after and retry_after.isdigit() else None
        try:
            error = reply.json()["error"]
        except (ValueError, KeyError, TypeError):  # not the service's error shape (a proxy in between?)
            raise ForecastRequestError(reply.status_code, reply.text[:500], retry_after=retry_after) from None
        raise ForecastRequestError(
            reply.status_code, error["message"], code=error["code"], details=error["details"], retry_after=retry_after
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ForecastClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
