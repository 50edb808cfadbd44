"""Promotion and rollback on live evidence, against a real MLflow store: the live guard reads the
challenger's shadow scoring from its tags; the loop's rollback and retraining reasons reach the audit log."""

from __future__ import annotations

import mlflow
import pytest

from demandops.errors import GuardRefusedError
from demandops.settings import LifecycleSettings, Settings
from lifecycle.evidence import live_tags, registration_tags
from lifecycle.registry import ModelRegistry
from lifecycle.states import State
from tests.lifecycle.test_registry import new_version, scored_beside
from tests.lifecycle.versions import Constant, to_staged
from training.tracking import use_experiment


@pytest.fixture
def registry(settings: Settings) -> ModelRegistry:
    settings.prepare_state()
    use_experiment(settings.mlflow_tracking_uri, settings.mlflow_artifact_root, "live-guard-test")
    return ModelRegistry(
        tracking_uri=settings.mlflow_tracking_uri,
        model_name="demand_forecaster_live",
        lifecycle=LifecycleSettings(promoters=["ci", "demandops-loop"], live_guard=True, live_min_forecasts=50),
    )


def champion_and_challenger(registry: ModelRegistry) -> tuple[str, str]:
    v1, v2 = new_version(registry), new_version(registry)
    to_staged(registry, v1)
    registry.transition(v1, State.PRODUCTION, actor="ci", reason="first", evidence={})
    to_staged(registry, v2)
    scored_beside(registry, v2, champion=v1, challenger_wape=0.40, champion_wape=0.41)  # the backtest agrees
    return v1, v2


def shadow(registry: ModelRegistry, version: str, *, champion: str, challenger: float, forecasts: int = 200) -> None:
    tags = live_tags(
        champion_version=champion, challenger_wape=challenger, champion_wape=0.50, forecasts=forecasts, window="w"
    )
    registry.annotate(version, tags)


def test_without_shadow_scoring_the_live_guard_refuses(registry: ModelRegistry) -> None:
    _, v2 = champion_and_challenger(registry)
    with pytest.raises(GuardRefusedError, match="beats_champion_live: the shadow scoring compared with no champion"):
        registry.transition(v2, State.PRODUCTION, actor="ci", reason="ship", evidence={})


def test_a_challenger_worse_in_shadow_stays_staged_and_a_better_one_is_promoted(registry: ModelRegistry) -> None:
    v1, v2 = champion_and_challenger(registry)
    shadow(registry, v2, champion=v1, challenger=0.55)
    with pytest.raises(GuardRefusedError, match=r"shadow WAPE 0.5500 on 200 live forecasts"):
        registry.transition(v2, State.PRODUCTION, actor="demandops-loop", reason="loop", evidence={})
    assert registry.get(v2).state == State.STAGED
    shadow(registry, v2, champion=v1, challenger=0.45, forecasts=10)
    with pytest.raises(GuardRefusedError, match="10 live forecasts scored; at least 50 required"):
        registry.transition(v2, State.PRODUCTION, actor="demandops-loop", reason="loop", evidence={})
    shadow(registry, v2, champion=v1, challenger=0.45)
    registry.transition(v2, State.PRODUCTION, actor="demandops-loop", reason="loop", evidence={})
    assert registry.by_alias("production").version == v2
    applied = registry.audit.history(registry.model_name)[-1]
    assert applied.evidence["guards"]["beats_champion_live"]["passed"] is True
    assert applied.evidence["live_challenger_wape"] == repr(0.45)


def test_the_rollback_s_live_evidence_and_the_retrain_reason_are_audited(registry: ModelRegistry) -> None:
    v1, v2 = champion_and_challenger(registry)
    shadow(registry, v2, champion=v1, challenger=0.45)
    registry.transition(v2, State.PRODUCTION, actor="ci", reason="ship", evidence={})
    evidence = {"champion_live_wape": 0.7, "previous_live_wape": 0.5, "periods": ["2024-02-01", "2024-02-02"]}
    registry.rollback(actor="demandops-loop", reason="live WAPE above", evidence=evidence)
    restored = registry.audit.history(registry.model_name)[-1]
    assert (restored.version, restored.to_state, restored.actor) == (v1, State.PRODUCTION, "demandops-loop")
    assert restored.evidence == {**evidence, "replaces": v2}

    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant(), pip_requirements=["mlflow"])
    tags = registration_tags(
        dataset_version="d2", feature_service="s", pipeline_run="r2", trained_until="2024-02-01", retrain_reason="drift"
    )
    v3 = registry.register(model_uri=info.model_uri, run_id=run.info.run_id, tags=tags).version
    trained = registry.audit.history(registry.model_name)[-1]
    assert (trained.version, trained.to_state) == (v3, State.TRAINED) and trained.evidence["retrain_reason"] == "drift"
