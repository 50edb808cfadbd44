"""The MLflow 3 registry adapter: lifecycle state as a version tag, with aliases kept in step."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from demandops.errors import (
    GuardRefusedError,
    IllegalTransitionError,
    ModelNotFoundError,
    UnauthorizedActorError,
)
from demandops.settings import LifecycleSettings
from lifecycle.audit import AuditLog
from lifecycle.states import ALIASES, State, evaluate_guards

STATE_TAG = "lifecycle.state"


@dataclass(frozen=True)
class VersionInfo:
    version: str
    state: State
    aliases: list[str]
    run_id: str
    tags: dict[str, str]


class ModelRegistry:
    """Every state change of a model version goes through `transition`."""

    def __init__(self, *, tracking_uri: str, model_name: str, lifecycle: LifecycleSettings):
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.lifecycle = lifecycle
        self.audit = AuditLog(tracking_uri)

    # -- reads ----------------------------------------------------------------------------
    def get(self, version: str | int) -> VersionInfo:
        try:
            mv = self.client.get_model_version(self.model_name, str(version))
        except MlflowException as exc:
            raise ModelNotFoundError(f"model {self.model_name!r} has no version {version}") from exc
        return VersionInfo(
            version=str(mv.version),
            state=State(mv.tags.get(STATE_TAG, State.TRAINING)),
            aliases=list(mv.aliases),
            run_id=mv.run_id,
            tags=dict(mv.tags),
        )

    def versions(self) -> list[VersionInfo]:
        found = self.client.search_model_versions(f"name = '{self.model_name}'")
        return sorted((self.get(mv.version) for mv in found), key=lambda v: int(v.version))

    def by_alias(self, alias: str) -> VersionInfo | None:
        try:
            mv = self.client.get_model_version_by_alias(self.model_name, alias)
        except MlflowException:
            return None  # MLflow answers a missing alias with RESOURCE_DOES_NOT_EXIST
        return self.get(mv.version)

    # -- writes ---------------------------------------------------------------------------
    def annotate(self, version: str | int, tags: dict[str, str]) -> None:
        """Attach facts (e.g. the Bento tag) to a version without changing its state."""
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, str(version), key, value)

    def register(self, *, model_uri: str, run_id: str, tags: dict[str, str]) -> VersionInfo:
        """Register a trained model as a new version in state Trained."""
        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException:
            self.client.create_registered_model(self.model_name)
        with _process_tracking_uri(self.tracking_uri):
            mv = self.client.create_model_version(
                self.model_name, model_uri, run_id=run_id, tags={**tags, STATE_TAG: State.TRAINING}
            )
        self.transition(mv.version, State.TRAINED, actor="pipeline", reason="training finished", evidence={})
        return self.get(mv.version)

    def transition(
        self, version: str | int, target: State, *, actor: str, reason: str, evidence: dict[str, Any]
    ) -> VersionInfo:
        """Apply one transition after its legality and guards; refusals are audited and raised."""
        current = self.get(version)
        audit = dict(
            model=self.model_name,
            version=current.version,
            from_state=current.state,
            to_state=target,
            actor=actor,
            reason=reason,
        )
        try:
            results = evaluate_guards(current.state, target, evidence, self.lifecycle, actor)
        except IllegalTransitionError:
            self.audit.append(**audit, outcome="refused", evidence=dict(evidence))
            raise
        recorded = {**evidence, "guards": {r.name: {"passed": r.passed, "detail": r.detail} for r in results}}
        failed = [r for r in results if not r.passed]
        if failed:
            self.audit.append(**audit, outcome="refused", evidence=recorded)
            names = [r.name for r in failed]
            message = f"{current.state} -> {target} of version {current.version} refused by " + "; ".join(
                f"{r.name}: {r.detail}" for r in failed
            )
            if names == ["actor_authorized"]:
                raise UnauthorizedActorError(message)
            raise GuardRefusedError(message, failed=names, evidence=recorded)
        if target == State.PRODUCTION:
            self._archive_current_production(actor=actor, replaced_by=current.version)
        self._apply(current, target)
        self.audit.append(**audit, outcome="applied", evidence=recorded)
        return self.get(current.version)

    def _apply(self, current: VersionInfo, target: State) -> None:
        self.client.set_model_version_tag(self.model_name, current.version, STATE_TAG, target)
        old_alias = ALIASES.get(current.state)
        if old_alias and old_alias in current.aliases:
            self.client.delete_registered_model_alias(self.model_name, old_alias)
        new_alias = ALIASES.get(target)
        if new_alias:
            self.client.set_registered_model_alias(self.model_name, new_alias, current.version)

    def _archive_current_production(self, *, actor: str, replaced_by: str) -> None:
        champion = self.by_alias(ALIASES[State.PRODUCTION])
        if champion is not None and champion.version != replaced_by:
            self.transition(
                champion.version,
                State.ARCHIVED,
                actor=actor,
                reason=f"replaced by version {replaced_by}",
                evidence={},
            )


@contextmanager
def _process_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow 3's SQL registry looks a logged model up through a client on the process-wide
    tracking URI (not this client's), so a model logged by another process is "not found"
    unless that URI is ours while the version is created."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
