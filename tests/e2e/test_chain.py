"""The whole chain on the small preset, then the built Bento over HTTP: forecasts and replenishment;
then `demandops run` again as a user types it, and a blue-green switch between the two versions' Bentos."""

from __future__ import annotations

import math
import re
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import httpx
import pandas as pd
import pytest
from mlflow import MlflowClient
from pydantic import ValidationError

from bench.otlp_receiver import OtlpReceiver
from demandops.contract import partition_dates
from demandops.settings import Settings
from lifecycle.evidence import bento_of, state_of
from lifecycle.states import State
from pipelines.resources import DemandopsResource
from pipelines.run import open_instance, run_chain
from serving.client import ForecastClient, ForecastRequestError
from serving.schemas import ForecastItem
from serving.server import running_bento
from serving.skew import sample_series, skew_check
from tests.conftest import empty_sqlite_store
from tests.e2e.deploy_checks import assert_blue_green_switches_under_load
from tests.e2e.replenishment_checks import (
    assert_every_replenishment_refusal_names_its_field,
    assert_replenishment_answers_as_the_forecast_does,
    assert_served_decisions_are_logged,
    assert_the_nightly_plan_covers_every_series,
    assert_the_typed_client_plans,
)
from tests.e2e.serving_checks import (
    MAX_IN_FLIGHT,
    assert_a_locked_online_store_degrades_and_recovers,
    assert_batch_scoring_is_logged,
    assert_batch_scoring_writes_every_series,
    assert_every_refusal_is_a_4xx_naming_what_was_wrong,
    assert_every_route_answers_in_one_shape,
    assert_overload_is_refused_at_once_with_retry_after,
    assert_probes_docs_and_metrics,
    assert_served_answers_are_logged,
)
from tests.e2e.terminal_checks import assert_a_plain_successful_run, run_the_command
from tests.e2e.trace_checks import assert_a_request_is_traced, assert_the_service_logs_json
from training.tracking import download_bundle


# Nine minutes here beside another end-to-end test on 2 cores: past the default 600 s on a slower day.
@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_chain_serves_its_production_model_and_a_rerun_adds_a_version(settings: Settings, tmp_path: Path) -> None:
    with ExitStack() as stack:
        _the_chain_serves_and_reruns(settings, tmp_path, stack)


def _the_chain_serves_and_reruns(settings: Settings, tmp_path: Path, stack: ExitStack) -> None:
    first = run_chain(settings)
    periods = len(partition_dates(settings.data))
    assert (first.gate, first.reconciled) == (f"{periods} period(s) gated: {periods} accepted, 0 quarantined", "")
    registry = DemandopsResource.from_settings(settings).registry()
    champion = registry.by_alias("production")
    assert champion is not None and champion.version == first.model_version
    assert state_of(champion.tags, "") == State.PRODUCTION and bento_of(champion.tags) == first.bento_tag

    receiver = stack.enter_context(OtlpReceiver())  # what a tracing collector gets
    served_env = {
        "DEMANDOPS_SERVING__BREAKER_COOLDOWN_S": "1",  # recovery is awaited below; keep it short
        "DEMANDOPS_SERVING__MAX_IN_FLIGHT": str(MAX_IN_FLIGHT),
        "DEMANDOPS_SERVING__OTLP_ENDPOINT": receiver.endpoint,
        "DEMANDOPS_SERVING__TRACE_SAMPLE_RATE": "1",  # every batch: the check below waits for one
    }
    with running_bento(settings, first.bento_tag, log_path=tmp_path / "serve.log", extra_env=served_env) as url:
        items = [
            {"store_id": "S000", "sku_id": "P0001", "horizon": 5},
            {"store_id": "S002", "sku_id": "P0004", "horizon": 14},
        ]
        reply = httpx.post(f"{url}/v1/forecast", json={"items": items}, timeout=60)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        answers = {reply.headers["x-request-id"]: body}
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

        # Request-time plans reach the model through the same covariate code as training (that a
        # discount sells more is tested on a model trained on more data, in tests/training).
        store_id, sku_id, price = _last_sale(settings)
        plain = {"store_id": store_id, "sku_id": sku_id, "horizon": 7}
        promoted = {**plain, "planned_promo": [True] * 7, "planned_price": [0.75 * price] * 7}
        planned = httpx.post(f"{url}/v1/forecast", json={"items": [plain, promoted]}, timeout=60)
        both = planned.json()
        answers[planned.headers["x-request-id"]] = both
        assert [d["p50"] for d in both[1]["forecast"]] != [d["p50"] for d in both[0]["forecast"]]

        _assert_no_skew_until_the_online_store_is_tampered_with(settings, url, champion.run_id, tmp_path)

        _assert_the_typed_client_works(url, first.model_version)
        metadata = httpx.post(f"{url}/v1/metadata", json={}).json()
        assert metadata["model_version"] == first.model_version and metadata["lifecycle_state"] == "Production"
        assert metadata["feature_service"] == "demand_forecast_v1"
        assert_every_refusal_is_a_4xx_naming_what_was_wrong(url, metadata["horizon"])
        planned = assert_replenishment_answers_as_the_forecast_does(url, metadata["horizon"])
        assert_every_replenishment_refusal_names_its_field(url, metadata["horizon"])
        assert_the_typed_client_plans(url, first.model_version)
        assert_every_route_answers_in_one_shape(url)
        assert_overload_is_refused_at_once_with_retry_after(url)
        assert_a_locked_online_store_degrades_and_recovers(url, settings.feast_dir / "online_store.db")
        assert_probes_docs_and_metrics(url, first.model_version)
        assert_a_request_is_traced(url, receiver, plain)
        assert_the_service_logs_json(tmp_path / "serve.log")
        served = httpx.post(f"{url}/v1/forecast", json={"items": [plain]}).json()[0]
    assert_served_answers_are_logged(settings, answers)  # the service wrote its queue as it stopped
    assert_served_decisions_are_logged(settings, planned)

    meta = download_bundle(settings.mlflow_tracking_uri, champion.run_id, tmp_path / "scored_bundle").meta
    model_series = {(store, sku) for store in meta.stores for sku in meta.skus}
    assert_batch_scoring_writes_every_series(settings, tmp_path / "nightly.csv", served, model_series)
    assert_batch_scoring_is_logged(settings, tmp_path / "nightly.csv")
    assert_the_nightly_plan_covers_every_series(settings, tmp_path, planned, model_series)

    _assert_the_run_is_tracked(settings, first.model_version)
    # With no new period, the online store emptied: the run refills it before its Bento's skew check.
    assert empty_sqlite_store(settings.feast_dir / "online_store.db") > 0
    # The rerun as a user types it, its output piped: plain lines, a figure per stage, the summary last.
    second = run_the_command(settings)
    assert_a_plain_successful_run(
        second,
        {
            "online_features": "rows into the sqlite online store",
            "trained_model": "epochs on cpu",
            "model_evaluation": "backtest WAPE",
            "bento": "(Staged)",
        },
    )
    assert "  gate              no new or changed periods" in second.stdout
    newest = registry.get(str(int(first.model_version) + 1))
    assert newest.state == State.STAGED and registry.by_alias("production").version == first.model_version
    # Behind nginx: the Production Bento, then the new version's and back again, under 64 clients.
    assert_blue_green_switches_under_load(settings, tmp_path, first.model_version, newest.version)


def _last_sale(settings: Settings) -> tuple[str, str, float]:
    """A series sold on the last day of the data, with its price that day."""
    [last_day] = sorted((settings.data / "sales").glob("date=*"))[-1:]
    row = pd.concat([pd.read_parquet(path) for path in last_day.glob("*.parquet")]).iloc[0]
    return row["store_id"], row["sku_id"], float(row["price"])


def _assert_the_run_is_tracked(settings: Settings, version: str) -> None:
    """Training ran through Dagster Pipes, and the MLflow run holds the backtest and its plots."""
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    run_id = client.get_model_version(settings.model.name, version).run_id
    run = client.get_run(run_id)
    assert {"dataset_version", "git_commit", "device", "feature_service", "world_size"} <= run.data.params.keys()
    assert run.data.metrics["backtest_wape"] < run.data.metrics["backtest_seasonal_naive_wape"]
    logged = {a.path for a in client.list_artifacts(run_id, "backtest")}
    assert logged == {
        "backtest/backtest.csv", "backtest/residuals.parquet", "backtest/forecast_vs_actual.png",
        "backtest/residuals.png", "backtest/calibration.png", "backtest/lead_time_service.png",
    }  # fmt: skip
    # Lead-time quantiles calibrated on the validation window, scored on the backtest beside the textbook.
    for lead in (1, 7, 14):
        achieved = run.data.metrics[f"backtest_lead_time_service_L{lead}_p95"]
        assert 0.85 <= achieved <= 1.0, (lead, achieved)
        assert math.isfinite(run.data.metrics[f"backtest_textbook_safety_stock_L{lead}_p95"])
    with open_instance(settings) as instance:
        trained = instance.get_latest_materialization_event(dg.AssetKey("trained_model")).asset_materialization
        evaluated = instance.get_latest_materialization_event(dg.AssetKey("model_evaluation")).asset_materialization
    assert trained.metadata["run_id"].value == run_id and trained.metadata["world_size"].value == 1
    assert trained.metadata["mlflow_run"].value.endswith(run_id)
    assert evaluated.metadata["forecast_plot"].value.startswith("![forecast versus actual](data:image/png;base64,")
    assert evaluated.metadata["lead_time_plot"].value.startswith("![lead-time service levels")
    # The registry as the Dagster UI shows it: the version's state, and its transitions so far.
    assert re.search(rf"\|\s*{version}\s*\|\s*Validated\s*\|", evaluated.metadata["registry_versions"].value)
    assert "Trained -> Validated" in evaluated.metadata["lifecycle_history"].value


def _assert_no_skew_until_the_online_store_is_tampered_with(
    settings: Settings, url: str, run_id: str, tmp_path: Path
) -> None:
    """Served forecasts equal offline ones; a changed online row makes them differ, and the check says so."""
    store = DemandopsResource.from_settings(settings).feature_store()
    bundle = download_bundle(settings.mlflow_tracking_uri, run_id, tmp_path / "bundle")
    clean = skew_check(url, store, bundle, sample_series(bundle, 6), tolerance=1e-5)
    assert clean.passed and clean.items == 6, clean.detail

    latest = pd.read_parquet(sorted((settings.feast_dir / "sales_features").glob("*.parquet"))[-1]).iloc[[0]]
    pair = (latest["store_id"].iloc[0], latest["sku_id"].iloc[0])
    view = store.get_feature_view("demand_history_fv")
    tampered = latest[["store_id", "sku_id", "event_timestamp", *(f.name for f in view.features)]].copy()
    tampered["lag_1"] = tampered["lag_1"] + 25  # what a broken materialization might write
    store.write_to_online_store("demand_history_fv", tampered)
    skewed = skew_check(url, store, bundle, [pair], tolerance=1e-5)
    assert not skewed.passed and skewed.max_difference > 1e-3 and f"{pair[0]}/{pair[1]}" in skewed.detail
    original = latest[tampered.columns]
    store.write_to_online_store("demand_history_fv", original)  # the rerun below must not meet the tampering
    assert skew_check(url, store, bundle, [pair], tolerance=1e-5).passed


def _assert_the_typed_client_works(url: str, version: str) -> None:
    with ForecastClient(url) as client:
        [result] = client.forecast([ForecastItem(store_id="S000", sku_id="P0001", horizon=3)])
        assert result.model_version == version and len(result.forecast) == 3
        assert client.metadata()["model_version"] == version
        with pytest.raises(ForecastRequestError) as refused:
            client.forecast([{"store_id": "S000", "sku_id": "NOPE", "horizon": 3}])
        assert refused.value.status_code == 404 and refused.value.code == "unknown_series"
        assert refused.value.details == [{"id": "sku NOPE"}]
        with pytest.raises(ValidationError, match="horizon"):  # checked before anything is sent
            client.forecast([{"store_id": "S000", "sku_id": "P0001", "horizon": 0}])
