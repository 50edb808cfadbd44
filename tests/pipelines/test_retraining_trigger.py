"""The retraining sensor: a training run, tagged with its reason, once per scored period, only on evidence."""

from __future__ import annotations

import dagster as dg
import mlflow
import pytest

from demandops.settings import Settings
from lifecycle.evidence import registration_tags
from lifecycle.states import State
from monitoring.drift import write_drift_summary
from monitoring.live_summary import write_summary
from pipelines.resources import DemandopsResource
from pipelines.run_tags import RETRAIN_REASON
from pipelines.sensors import retraining_trigger
from tests.lifecycle.test_states import GOOD_EVIDENCE
from tests.lifecycle.versions import STAGING_EVIDENCE, Constant
from training.tracking import backtest_metric, use_experiment


@pytest.fixture
def champion(settings: Settings) -> str:
    """Version 1 in Production, whose backtest measured a WAPE of 0.40."""
    settings.prepare_state()
    use_experiment(settings.mlflow_tracking_uri, settings.mlflow_artifact_root, settings.model.experiment)
    registry = DemandopsResource.from_settings(settings).registry()
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant(), pip_requirements=["mlflow"])
        mlflow.log_metric(backtest_metric("wape"), 0.40)
    tags = registration_tags(dataset_version="d", feature_service="s", pipeline_run="r", trained_until="2024-01-31")
    version = registry.register(model_uri=info.model_uri, run_id=run.info.run_id, tags=tags).version
    registry.transition(version, State.VALIDATED, actor="pipeline", reason="t", evidence=GOOD_EVIDENCE)
    registry.transition(version, State.STAGED, actor="pipeline", reason="t", evidence=STAGING_EVIDENCE)
    registry.transition(version, State.PRODUCTION, actor="ci", reason="t", evidence={})
    return version


def evaluate(settings: Settings) -> dg.SensorResult:
    resources = {"demandops": DemandopsResource.from_settings(settings)}
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), resources=resources) as context:
        return retraining_trigger(context)


def scored(settings: Settings, version: str, wapes: list[float]) -> None:
    periods = {f"2024-02-{day:02d}": wape for day, wape in enumerate(wapes, start=1)}
    summary = {"period": max(periods), "periods": len(periods), "versions": {version: {"wape_per_period": periods}}}
    write_summary(settings.lake_dir, summary)


def test_live_degradation_starts_one_tagged_run_per_scored_period(settings: Settings, champion: str) -> None:
    scored(settings, champion, [0.41, 0.52, 0.55, 0.60])  # above 0.40 x 1.2 for the last 3 periods
    result = evaluate(settings)
    [request] = result.run_requests
    assert request.run_key == f"retrain:{champion}:2024-02-04"
    assert "above its backtest WAPE 0.400 by more than 20%" in request.tags[RETRAIN_REASON]


def test_reorder_points_that_keep_their_promise_too_rarely_start_a_run(settings: Settings, champion: str) -> None:
    kept = [{"lead_time": 7, "service_level": 0.95, "decisions": 800, "achieved": 0.94}]
    summary = {"period": "2024-02-04", "periods": 4, "versions": {champion: {}}, "service": {champion: kept}}
    write_summary(settings.lake_dir, summary)
    assert evaluate(settings).skip_reason is not None, "one point short: within the 3 points allowed"
    short = [{**kept[0], "achieved": 0.90}, {"lead_time": 1, "service_level": 0.9, "decisions": 20, "achieved": 0.5}]
    write_summary(settings.lake_dir, {**summary, "service": {champion: short}})
    [request] = evaluate(settings).run_requests
    reason = request.tags[RETRAIN_REASON]
    assert "L=7 at 0.95: 0.900 over 800 decisions" in reason and "L=1" not in reason, "20 decisions are too few"


def test_no_evidence_no_run(settings: Settings, champion: str) -> None:
    assert evaluate(settings).skip_reason is not None, "nothing scored yet"
    scored(settings, champion, [0.41, 0.52, 0.47, 0.60])  # 0.47 is within the margin
    write_drift_summary(settings.lake_dir, {"band": "moderate", "psi": {"units_sold": 0.2}})
    result = evaluate(settings)
    assert not result.run_requests and "holds up" in result.skip_reason.skip_message
    write_drift_summary(settings.lake_dir, {"band": "significant", "psi": {"units_sold": 0.4}})
    [request] = evaluate(settings).run_requests
    assert (
        request.tags[RETRAIN_REASON].startswith("significant drift")
        and "units_sold PSI 0.400" in request.tags[RETRAIN_REASON]
    )
