"""Bring-your-own monthly data with only the required columns, through the whole chain to a served model."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import pytest

from demandops.settings import LifecycleSettings, Settings
from lifecycle.evidence import dataset_version_of
from pipelines.provenance import latest_metadata
from pipelines.resources import DemandopsResource
from pipelines.run import open_instance, run_chain
from salesdata.datasets import import_sales
from salesdata.simulator import Preset, simulate
from serving.server import running_bento
from tests.e2e.serving_checks import assert_large_requests_leave_small_ones_unrefused


def monthly_sales_csv(path: Path) -> Path:
    """Five years of simulated daily sales summed per month: what a planner's export looks like."""
    sales = simulate(Preset(n_stores=3, n_skus=6, n_days=1827, start=date(2020, 1, 1), seed=11)).sales
    monthly = (
        sales.assign(date=sales["date"].dt.to_period("M").dt.start_time)
        .groupby(["date", "store_id", "sku_id"], as_index=False)["units_sold"]
        .sum()
    )
    monthly.assign(date=monthly["date"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_monthly_import_runs_to_a_registered_model_that_forecasts_months(settings: Settings, tmp_path: Path) -> None:
    source = monthly_sales_csv(tmp_path / "monthly.csv")
    assert list(pd.read_csv(source, nrows=1).columns) == ["date", "store_id", "sku_id", "units_sold"]
    imported = import_sales(settings.project_dir, settings.data, source, frequency="M", limits=settings.gate)
    # 18 series x 9 backtest months: 162 rows cannot pin coverage to the default band of 0.75-0.85.
    # Set in code, with no environment variable: the settings object reaches every asset as it is.
    settings = settings.model_copy(update={"lifecycle": LifecycleSettings(naive_margin=0, coverage_band=(0.5, 0.95))})

    summary = run_chain(settings)

    assert summary.dataset_version == imported.version and summary.frequency == "M"
    registry = DemandopsResource.from_settings(settings).registry()
    version = registry.get(summary.model_version)
    [validated] = [e for e in registry.audit.history(settings.model.name) if e.to_state == "Validated"]
    assert "[0.5, 0.95]" in validated.evidence["guards"]["coverage_in_band"]["detail"], "the band set in code"
    assert dataset_version_of(version.tags) == imported.version, "dataset version on the model version"
    run = mlflow.MlflowClient(settings.mlflow_tracking_uri).get_run(version.run_id)
    assert run.data.params["dataset_version"] == imported.version, "and on the MLflow run"
    assert run.data.params["frequency"] == "M" and run.data.params["horizon"] == "3"
    with open_instance(settings) as instance:
        assert latest_metadata(instance, "raw_sales")["dataset_version"] == imported.version, "and on the asset"

    with running_bento(settings, summary.bento_tag, log_path=tmp_path / "serve.log") as url:
        reply = httpx.post(f"{url}/v1/forecast", json={"items": [summary.example_item]}, timeout=60)
        assert reply.status_code == 200, reply.text
        [result] = reply.json()
        assert result["origin_date"] == "2024-12-01"
        assert [d["date"] for d in result["forecast"]] == ["2025-01-01", "2025-02-01", "2025-03-01"]
        too_far = {**summary.example_item, "horizon": 4}
        refused = httpx.post(f"{url}/v1/forecast", json={"items": [too_far]}, timeout=60)
        assert refused.status_code == 422 and "3 months" in refused.json()["error"]["message"]
        assert refused.json()["error"]["details"][0]["field"] == "items[0].horizon"
        # Reorder points in months: a lead time of 2 months and a monthly review fill the horizon of 3.
        plan = {"store_id": summary.example_item["store_id"], "sku_id": summary.example_item["sku_id"], "on_hand": 0}
        reply = httpx.post(f"{url}/v1/replenishment", json={"items": [{**plan, "lead_time": 2}]}, timeout=60)
        assert reply.status_code == 200, reply.text
        [decided] = reply.json()
        assert decided["origin_date"] == "2024-12-01" and 0 <= decided["reorder_point"] <= decided["order_up_to"]
        assert decided["suggested_order"] == decided["order_up_to"], "nothing on hand or on order"
        beyond = httpx.post(f"{url}/v1/replenishment", json={"items": [{**plan, "lead_time": 3}]}, timeout=60)
        assert beyond.status_code == 422 and "3 months" in beyond.json()["error"]["message"]
        assert_large_requests_leave_small_ones_unrefused(url, summary.example_item)
    for lead in (1, 3):  # the backtest scores the lead-time quantiles in months too
        assert 0 <= run.data.metrics[f"backtest_lead_time_service_L{lead}_p95"] <= 1
