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
from lifecycle.evidence import STATE_TAG, bento_tags, champion_tags, registration_tags
from lifecycle.registry import ModelRegistry
from lifecycle.states import State
from tests.lifecycle.test_states import GOOD_EVIDENCE
from tests.lifecycle.versions import Constant, to_staged
from training.tracking import use_experiment


@pytest.fixture
def registry(settings: Settings) -> ModelRegistry:
    settings.prepare_state()
    use_experiment(settings.mlflow_tracking_uri, settings.mlflow_artifact_root, "registry-test")
    return ModelRegistry(
        tracking_uri=settings.mlflow_tracking_uri,
        model_name="demand_forecaster_test",
        lifecycle=LifecycleSettings(promoters=["ci"]),
    )


def new_version(registry: ModelRegistry) -> str:
    # Requirements named: inferring them loads the model in a subprocess, seconds a version.
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant(), pip_requirements=["mlflow"])
    return registry.register(
        model_uri=info.model_uri,
        run_id=run.info.run_id,
        tags=registration_tags(dataset_version="d1", feature_service="s", pipeline_run="r1"),
    ).version


def scored_beside(
    registry: ModelRegistry, version: str, *, champion: str, challenger_wape: float, champion_wape: float
):
    """What model_evaluation records when it scores the champion on the challenger's latest window."""
    metrics = {"latest_window_wape_vs_champion": challenger_wape, "champion_latest_window_wape": champion_wape}
    registry.annotate(version, champion_tags(metrics, champion, unscorable=""))


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
    scored_beside(registry, v2, champion=v1, challenger_wape=0.40, champion_wape=0.41)
    registry.transition(v2, State.PRODUCTION, actor="ci", reason="second", evidence={})
    assert registry.get(v1).state == State.ARCHIVED and registry.get(v1).aliases == []
    assert registry.by_alias("production").version == v2
    assert [v.state for v in registry.versions()].count(State.PRODUCTION) == 1


def test_refusals_change_nothing_but_are_audited(registry: ModelRegistry) -> None:
    v1 = new_version(registry)
    with pytest.raises(IllegalTransitionError):
        registry.transition(v1, State.PRODUCTION, actor="ci", reason="skip ahead", evidence={})
    with pytest.raises(GuardRefusedError) as refused:
        worse_than_naive = {**GOOD_EVIDENCE, "window_starts_seasonal_naive_wape": 0.30}
        registry.transition(v1, State.VALIDATED, actor="pipeline", reason="t", evidence=worse_than_naive)
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


def test_a_challenger_worse_than_the_champion_is_refused_with_its_evidence(registry: ModelRegistry) -> None:
    v1, v2 = new_version(registry), new_version(registry)
    to_staged(registry, v1)
    registry.transition(v1, State.PRODUCTION, actor="ci", reason="first", evidence={})
    to_staged(registry, v2)
    with pytest.raises(GuardRefusedError, match="re-run model_evaluation") as stale:
        registry.transition(v2, State.PRODUCTION, actor="ci", reason="not compared", evidence={})
    assert stale.value.failed == ["beats_champion"]
    scored_beside(registry, v2, champion=v1, challenger_wape=0.45, champion_wape=0.40)
    with pytest.raises(GuardRefusedError, match=r"latest-window WAPE 0.4500 must be <= 0.4000") as worse:
        registry.transition(v2, State.PRODUCTION, actor="ci", reason="worse", evidence={})
    assert worse.value.evidence["champion_latest_window_wape"] == 0.40
    assert registry.by_alias("production").version == v1 and registry.get(v2).state == State.STAGED


def test_a_version_must_soak_in_staged(settings: Settings, registry: ModelRegistry) -> None:
    soaking = ModelRegistry(
        tracking_uri=settings.mlflow_tracking_uri,
        model_name=registry.model_name,
        lifecycle=LifecycleSettings(promoters=["ci"], min_soak_hours=1),
    )
    v1 = new_version(soaking)
    to_staged(soaking, v1)
    with pytest.raises(GuardRefusedError, match=r"0.00 h in Staged; at least 1.0 h required") as refused:
        soaking.transition(v1, State.PRODUCTION, actor="ci", reason="too soon", evidence={})
    assert refused.value.failed == ["soaked_in_staged"]


def test_rollback_restores_the_previous_production_version(registry: ModelRegistry) -> None:
    with pytest.raises(IllegalTransitionError, match="no version is in Production"):
        registry.rollback(actor="ci", reason="nothing yet")
    v1, v2 = new_version(registry), new_version(registry)
    to_staged(registry, v1)
    registry.transition(v1, State.PRODUCTION, actor="ci", reason="first", evidence={})
    with pytest.raises(IllegalTransitionError, match=f"version {v1} is the only version ever in Production"):
        registry.rollback(actor="ci", reason="nothing earlier")
    to_staged(registry, v2)
    scored_beside(registry, v2, champion=v1, challenger_wape=0.40, champion_wape=0.41)
    registry.transition(v2, State.PRODUCTION, actor="ci", reason="second", evidence={})
    with pytest.raises(UnauthorizedActorError, match="mallory"):
        registry.rollback(actor="mallory", reason="t")

    restored = registry.rollback(actor="ci", reason="v2 over-forecasts promotions")
    assert restored.version == v1 and restored.state == State.PRODUCTION and restored.aliases == ["production"]
    assert registry.get(v2).state == State.ARCHIVED and registry.get(v2).aliases == []
    last_two = registry.audit.history(registry.model_name)[-2:]
    assert [(e.version, e.from_state, e.to_state, e.outcome) for e in last_two] == [
        (v2, "Production", "Archived", "applied"),
        (v1, "Archived", "Production", "applied"),
    ]
    assert all(e.reason == "rollback: v2 over-forecasts promotions" and e.actor == "ci" for e in last_two)


def test_a_failed_step_after_a_registry_write_rejects_the_version(registry: ModelRegistry) -> None:
    v1 = new_version(registry)
    registry.transition(v1, State.VALIDATED, actor="pipeline", reason="t", evidence=GOOD_EVIDENCE)
    with pytest.raises(RuntimeError, match="bentoml build exited 1"), registry.compensating(v1, step="bento"):
        raise RuntimeError("bentoml build exited 1")
    assert registry.get(v1).state == State.REJECTED
    last = registry.audit.history(registry.model_name)[-1]
    assert (last.to_state, last.outcome, last.reason) == (
        "Rejected",
        "applied",
        "bento failed: RuntimeError: bentoml build exited 1",
    )


def test_compensation_never_demotes_production(registry: ModelRegistry) -> None:
    v1 = new_version(registry)
    to_staged(registry, v1)
    registry.transition(v1, State.PRODUCTION, actor="ci", reason="first", evidence={})
    assert registry.compensate(v1, reason="a rebuild failed").state == State.PRODUCTION


def test_a_version_left_in_training_ends_failed(registry: ModelRegistry) -> None:
    """What register() does when the step after create_model_version fails."""
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant(), pip_requirements=["mlflow"])
    registry.client.create_registered_model(registry.model_name)
    created = registry.client.create_model_version(
        registry.model_name, info.model_uri, run_id=run.info.run_id, tags={STATE_TAG: State.TRAINING}
    )
    with pytest.raises(OSError, match="disk full"), registry.compensating(created.version, step="registration"):
        raise OSError("disk full")
    assert registry.get(created.version).state == State.FAILED
    assert registry.audit.history(registry.model_name)[-1].reason == "registration failed: OSError: disk full"


def test_promotion_evidence_is_recorded_in_the_audit_log(registry: ModelRegistry) -> None:
    v1 = new_version(registry)
    to_staged(registry, v1)
    registry.annotate(v1, bento_tags("svc:abc"))
    registry.transition(v1, State.PRODUCTION, actor="ci", reason="ship", evidence={})
    entry = registry.audit.history(registry.model_name)[-1]
    assert (entry.actor, entry.from_state, entry.to_state, entry.reason) == ("ci", "Staged", "Production", "ship")
    assert entry.evidence["dataset_version"] == "d1" and entry.evidence["bento_tag"] == "svc:abc"
    assert entry.evidence["champion_version"] is None and entry.evidence["staged_hours"] < 1
    assert set(entry.evidence["guards"]) == {
        "actor_authorized",
        "soaked_in_staged",
        "beats_champion",
        "beats_champion_live",  # passes, recorded as not required while lifecycle.live_guard is off
    }
    assert entry.evidence["guards"]["beats_champion_live"]["detail"] == "not required (lifecycle.live_guard is off)"
