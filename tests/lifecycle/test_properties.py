"""Property test: random transition sequences against the real registry adapter (MLflow, SQLite)."""

from __future__ import annotations

import uuid

import mlflow
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demandops.errors import LifecycleError
from demandops.settings import LifecycleSettings, Settings
from lifecycle.registry import ModelRegistry
from lifecycle.states import ALIASES, TRANSITIONS, State
from tests.lifecycle.test_registry import scored_beside
from tests.lifecycle.test_states import GOOD_EVIDENCE
from tests.lifecycle.versions import STAGING_EVIDENCE, Constant
from training.tracking import use_experiment

EVIDENCE = {
    State.VALIDATED: (GOOD_EVIDENCE, {**GOOD_EVIDENCE, "coverage_p10_p90": 0.5}),
    State.STAGED: (STAGING_EVIDENCE, {"bento_tag": "", "smoke_test_passed": False}),
}
steps = st.lists(
    st.tuples(
        st.integers(0, 1),  # which of two versions
        st.sampled_from(list(State)),  # any target, legal or not
        st.booleans(),  # evidence that passes the guards, or not
        st.sampled_from(["ci", "mallory"]),
    ),
    max_size=10,
)


def _snapshot(registry: ModelRegistry, versions: list[str]) -> dict[str, tuple[State, list[str]]]:
    return {v: (info.state, sorted(info.aliases)) for v in versions for info in [registry.get(v)]}


@pytest.fixture
def logged(settings: Settings) -> tuple[Settings, str, str]:
    """The test's state folder and one logged model (run id, URI) that every version registers."""
    settings.prepare_state()
    use_experiment(settings.mlflow_tracking_uri, settings.mlflow_artifact_root, "property-test")
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant(), pip_requirements=["mlflow"])
    return settings, run.info.run_id, info.model_uri


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps)
def test_no_sequence_reaches_an_illegal_state_and_refusals_change_nothing(
    logged: tuple[Settings, str, str], sequence: list[tuple[int, State, bool, str]]
) -> None:
    settings_, run_id, model_uri = logged
    registry = ModelRegistry(
        tracking_uri=settings_.mlflow_tracking_uri,
        model_name=f"prop_{uuid.uuid4().hex[:8]}",
        lifecycle=LifecycleSettings(promoters=["ci"]),
    )
    versions = [registry.register(model_uri=model_uri, run_id=run_id, tags={}).version for _ in range(2)]

    for index, target, good, actor in sequence:
        version = versions[index]
        before = _snapshot(registry, versions)
        champion = registry.by_alias("production")
        if target == State.PRODUCTION and champion and champion.version != version:
            scored_beside(registry, version, champion=champion.version, challenger_wape=0.4, champion_wape=0.4)
        passing, failing = EVIDENCE.get(target, ({}, {}))
        try:
            registry.transition(version, target, actor=actor, reason="property", evidence=passing if good else failing)
        except LifecycleError:
            assert _snapshot(registry, versions) == before, "a refused transition changed the registry"
        else:
            assert target in TRANSITIONS[before[version][0]], f"{before[version][0]} -> {target} was applied"
        states = {v: registry.get(v).state for v in versions}
        assert list(states.values()).count(State.PRODUCTION) <= 1
        for state, alias in ALIASES.items():
            holder = registry.by_alias(alias)
            newest = max((v for v, s in states.items() if s == state), key=int, default=None)
            assert (holder.version if holder else None) == newest, f"alias {alias} disagrees with the tags"
