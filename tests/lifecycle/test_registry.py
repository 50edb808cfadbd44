"""The MLflow adapter against a real MLflow SQLite store in a temporary folder."""

from __future__ import annotations

import mlflow
import pytest

from demandops.errors import (
    GuardRefusedError,
    IllegalTransitionError,
    ModelNotFoundError,
    UnauthorizedActorError,
)
from demandops.settings import LifecycleSettings, Settings
from lifecycle.registry import ModelRegistry
from lifecycle.states import State
from tests.lifecycle.test_states import GOOD_EVIDENCE
from training.tracking import use_experiment

STAGING_EVIDENCE = {"bento_tag": "svc:1", "smoke_test_passed": True}


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


@pytest.fixture
def registry(settings: Settings) -> ModelRegistry:
    settings.ensure_state_dirs()
    use_experiment(settings.mlflow_tracking_uri, settings.mlflow_artifact_root, "registry-test")
    return ModelRegistry(
        tracking_uri=settings.mlflow_tracking_uri,
        model_name="demand_forecaster_test",
        lifecycle=LifecycleSettings(promoters=["ci"]),
    )


def new_version(registry: ModelRegistry) -> str:
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant())
    return registry.register(model_uri=info.model_uri, run_id=run.info.run_id, tags={"dataset_version": "d1"}).version


def to_staged(registry: ModelRegistry, version: str) -> None:
    registry.transition(version, State.VALIDATED, actor="pipeline", reason="t", evidence=GOOD_EVIDENCE)
    registry.transition(version, State.STAGED, actor="pipeline", reason="t", evidence=STAGING_EVIDENCE)


def test_states_and_aliases_move_in_step(registry: ModelRegistry) -> None:
    v1 = new_version(registry)
    assert registry.get(v1).state == State.TRAINED
    to_staged(registry, v1)
    assert registry.by_alias("staging").version == v1
    registry.transition(v1, State.PRODUCTION, actor="ci", reason="ship", evidence={})
    info = registry.get(v1)
    assert info.state == State.PRODUCTION and info.aliases == ["production"]
    assert registry.by_alias("staging") is None


def test_promotion_archives_the_previous_champion(registry: ModelRegistry) -> None:
    v1, v2 = new_version(registry), new_version(registry)
    for v in (v1, v2):
        to_staged(registry, v)
    registry.transition(v1, State.PRODUCTION, actor="ci", reason="first", evidence={})
    registry.transition(v2, State.PRODUCTION, actor="ci", reason="second", evidence={})
    assert registry.get(v1).state == State.ARCHIVED and registry.get(v1).aliases == []
    assert registry.by_alias("production").version == v2
    assert [v.state for v in registry.versions()].count(State.PRODUCTION) == 1


def test_refusals_change_nothing_but_are_audited(registry: ModelRegistry) -> None:
    v1 = new_version(registry)
    with pytest.raises(IllegalTransitionError):
        registry.transition(v1, State.PRODUCTION, actor="ci", reason="skip ahead", evidence={})
    with pytest.raises(GuardRefusedError) as refused:
        registry.transition(v1, State.VALIDATED, actor="pipeline", reason="t", evidence={**GOOD_EVIDENCE, "wape": 0.9})
    assert refused.value.failed == ["beats_seasonal_naive"]
    to_staged(registry, v1)
    with pytest.raises(UnauthorizedActorError, match="mallory"):
        registry.transition(v1, State.PRODUCTION, actor="mallory", reason="t", evidence={})
    assert registry.get(v1).state == State.STAGED
    outcomes = [(e.from_state, e.to_state, e.outcome) for e in registry.audit.history(registry.model_name)]
    assert outcomes == [
        ("Training", "Trained", "applied"),
        ("Trained", "Production", "refused"),
        ("Trained", "Validated", "refused"),
        ("Trained", "Validated", "applied"),
        ("Validated", "Staged", "applied"),
        ("Staged", "Production", "refused"),
    ]


def test_unknown_version_is_named(registry: ModelRegistry) -> None:
    with pytest.raises(ModelNotFoundError, match="no version 42"):
        registry.get(42)
