"""8 processes promote 8 different Staged versions at the same moment (shared by the SQLite and
the PostgreSQL + MLflow server tests)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import mlflow

from demandops.errors import LifecycleError
from demandops.settings import LifecycleSettings
from lifecycle.registry import ModelRegistry
from lifecycle.states import ALIASES, State
from tests.lifecycle.versions import Constant, to_staged

PROMOTERS = 8


def _registry(tracking_uri: str, database_url: str, model: str) -> ModelRegistry:
    return ModelRegistry(
        tracking_uri=tracking_uri,
        model_name=model,
        lifecycle=LifecycleSettings(promoters=["ci"]),
        database_url=database_url,
    )


def _promote(tracking_uri: str, database_url: str, model: str, version: str, start) -> tuple[str, str]:
    """One CI job: wait for the others, then promote; returns (outcome, message)."""
    registry = _registry(tracking_uri, database_url, model)
    start.wait()
    try:
        registry.transition(version, State.PRODUCTION, actor="ci", reason=f"promote {version}", evidence={})
    except LifecycleError as refused:
        return "refused", str(refused)
    return "applied", ""


def staged_versions(tracking_uri: str, database_url: str, model: str) -> tuple[ModelRegistry, list[str]]:
    registry = _registry(tracking_uri, database_url, model)
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant(), pip_requirements=["mlflow"])
    versions = [
        registry.register(model_uri=info.model_uri, run_id=run.info.run_id, tags={}).version for _ in range(PROMOTERS)
    ]
    for version in versions:
        to_staged(registry, version)
    return registry, versions


def promote_all_at_once(registry: ModelRegistry, tracking_uri: str, database_url: str, versions: list[str]):
    # Fresh processes (no connection pools inherited from this one), forked from one server that has
    # imported MLflow, and through MLflow's plugins Feast, once instead of eight times on two cores.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["mlflow.tracking.request_header.registry", "lifecycle.registry", __name__])
    with context.Manager() as manager, ProcessPoolExecutor(len(versions), mp_context=context) as pool:
        start = manager.Barrier(len(versions))
        futures = [pool.submit(_promote, tracking_uri, database_url, registry.model_name, v, start) for v in versions]
        return dict(zip(versions, (f.result(timeout=300) for f in futures), strict=True))


def assert_exactly_one_production(registry: ModelRegistry, outcomes: dict[str, tuple[str, str]]) -> str:
    """One promotion won; every other was refused naming the new champion; tags, aliases and audit agree."""
    [winner] = [v for v, (outcome, _) in outcomes.items() if outcome == "applied"]
    for version, (outcome, message) in outcomes.items():
        if version != winner:
            assert outcome == "refused" and f"version {winner} is in Production now" in message, message
    states = {v.version: v.state for v in registry.versions()}
    assert [v for v, s in states.items() if s == State.PRODUCTION] == [winner]
    assert registry.by_alias(ALIASES[State.PRODUCTION]).version == winner
    staged = [v for v, s in states.items() if s == State.STAGED]
    assert registry.by_alias(ALIASES[State.STAGED]).version == max(staged, key=int)  # the newest Staged one
    promotions = [e for e in registry.audit.history(registry.model_name) if e.to_state == State.PRODUCTION]
    assert sorted((e.version, e.outcome) for e in promotions) == sorted(
        (v, "applied" if v == winner else "refused") for v in outcomes
    )
    return winner
