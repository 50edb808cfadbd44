"""The whole chain on the small preset, then the built Bento over HTTP."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from demandops.settings import Settings
from lifecycle.registry import STATE_TAG
from lifecycle.states import State
from pipelines.resources import DemandopsResource
from pipelines.run import run_chain
from serving.server import running_bento


@pytest.mark.slow
def test_chain_serves_its_production_model_and_a_rerun_adds_a_version(settings: Settings, tmp_path: Path) -> None:
    first = run_chain(settings)
    registry = DemandopsResource.from_settings(settings).registry()
    champion = registry.by_alias("production")
    assert champion is not None and champion.version == first.model_version
    assert champion.tags[STATE_TAG] == State.PRODUCTION and champion.tags["bento_tag"] == first.bento_tag

    with running_bento(settings, first.bento_tag, log_path=tmp_path / "serve.log") as url:
        items = [
            {"store_id": "S000", "sku_id": "P0001", "horizon": 5},
            {"store_id": "S002", "sku_id": "P0004", "horizon": 14},
        ]
        reply = httpx.post(f"{url}/forecast", json={"items": items}, timeout=60)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert [(r["store_id"], r["sku_id"], len(r["forecast"])) for r in body] == [
            ("S000", "P0001", 5),
            ("S002", "P0004", 14),
        ]
        for result in body:
            assert result["model_version"] == first.model_version and result["degraded"] is False
            origin = date.fromisoformat(result["origin_date"])
            days = [date.fromisoformat(d["date"]) for d in result["forecast"]]
            assert days == [origin + timedelta(days=h) for h in range(1, len(days) + 1)]
            assert all(0 <= d["p10"] <= d["p50"] <= d["p90"] for d in result["forecast"])

        unknown = httpx.post(f"{url}/forecast", json={"items": [{"store_id": "S000", "sku_id": "NOPE", "horizon": 3}]})
        assert unknown.status_code == 404 and "NOPE" in unknown.text
        malformed = httpx.post(f"{url}/forecast", json={"items": [{"store_id": "S000", "sku_id": "P0001"}]})
        assert malformed.status_code == 400 and "horizon" in malformed.text
        metadata = httpx.post(f"{url}/metadata", json={}).json()
        assert metadata["model_version"] == first.model_version
        assert metadata["feature_service"] == "demand_forecast_v1"

    second = run_chain(settings)
    assert int(second.model_version) == int(first.model_version) + 1
    assert second.state == State.STAGED and second.production_version == first.model_version
