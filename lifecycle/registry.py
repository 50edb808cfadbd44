"""The MLflow 3 registry adapter: lifecycle state as a version tag, with aliases kept in step."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
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
from demandops.settings import LifecycleSettings, Settings
from lifecycle.audit import AuditLog
from lifecycle.evidence import STATE_TAG, promotion_evidence, registration_evidence, state_of
from lifecycle.lock import TransitionLock
from lifecycle.states import ALIASES, UNFINISHED, State, compensation_target, evaluate_guards, rollback_target


@dataclass(frozen=True)
class VersionInfo:
    version: str
    state: State
    aliases: list[str]
    run_id: str
    tags: dict[str, str]


# MLflow's error codes of a request its server's authentication refused.
PERMISSION_CODES = {"PERMISSION_DENIED", "UNAUTHENTICATED"}


class ModelRegistry:
    """Every state change of a model version goes through `transition`."""

    def __init__(
        self, *, tracking_uri: str, model_name: str, lifecycle: LifecycleSettings, database_url: str | None = None
    ):
        """`database_url` is the MLflow backend's database, for the audit log and the transition
        lock; it defaults to the tracking URI, which is that database unless MLflow runs as a server."""
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.lifecycle = lifecycle
        self.audit = AuditLog(database_url or tracking_uri)
        self.lock = TransitionLock(database_url or tracking_uri)

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        """The profile's registry: MLflow (its server, or its database), with the audit log and the
        lock in MLflow's database."""
        return cls(
            tracking_uri=settings.mlflow_tracking_uri,
            model_name=settings.model.name,
            lifecycle=settings.lifecycle,
            database_url=settings.mlflow_database_url,
        )

    # -- reads ----------------------------------------------------------------------------
    def get(self, version: str | int) -> VersionInfo:
        try:
            mv = self.client.get_model_version(self.model_name, str(version))
        except MlflowException as exc:
            raise ModelNotFoundError(f"model {self.model_name!r} has no version {version}") from exc
        return VersionInfo(
            version=str(mv.version),
            state=State(state_of(mv.tags, State.TRAINING)),
            aliases=list(mv.aliases),
            run_id=mv.run_id,
            tags=dict(mv.tags),
        )

    def versions(self) -> list[VersionInfo]:
        found = self.client.search_model_versions(f"name = '{self.model_name}'")
        return sorted((self.get(mv.version) for mv in found), key=lambda v: int(v.version))

    def unfinished(self) -> list[VersionInfo]:
        """Versions a run is still carrying through the lifecycle, or that an interrupted run left behind."""
        return [v for v in self.versions() if v.state in UNFINISHED]

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
                self.model_name,
                model_uri,
                run_id=run_id,
                tags={**tags, STATE_TAG: State.TRAINING},
                model_id=_logged_model_id(model_uri),  # a tracking server requires it
            )
        with self.compensating(mv.version, step="registration"):
            evidence = registration_evidence(tags)
            self.transition(mv.version, State.TRAINED, actor="pipeline", reason="training finished", evidence=evidence)
        return self.get(mv.version)

    @contextmanager
    def compensating(self, version: str | int, *, step: str) -> Iterator[None]:
        """Run a step that follows a registry write; if it fails, the version ends in Failed or
        Rejected with the error as the recorded reason, and the error goes on."""
        try:
            yield
        except Exception as failed:  # re-raised below: this only records the failure
            self.compensate(version, reason=f"{step} failed: {type(failed).__name__}: {failed}")
            raise

    def compensate(self, version: str | int, *, reason: str) -> VersionInfo:
        """Move a version whose pipeline step failed to Failed or Rejected (see compensation_target)."""
        current = self.get(version)
        target = compensation_target(current.state)
        if target is None:
            return current
        return self.transition(current.version, target, actor="pipeline", reason=reason, evidence={})

    def transition(
        self, version: str | int, target: State, *, actor: str, reason: str, evidence: dict[str, Any]
    ) -> VersionInfo:
        """Apply one transition after its legality and guards; refusals are audited and raised.

        Transitions of one model run one at a time (see lifecycle/lock.py): of concurrent
        promotions, the first wins and the others meet the new champion in their guards.
        """
        with self.lock.hold(self.model_name), self._server_permission(actor, version, target, reason):
            return self._transition(version, target, actor=actor, reason=reason, evidence=evidence)

    def _transition(
        self, version: str | int, target: State, *, actor: str, reason: str, evidence: dict[str, Any]
    ) -> VersionInfo:
        current = self.get(version)
        if (current.state, target) == (State.STAGED, State.PRODUCTION):
            evidence = {**self._production_evidence(current), **evidence}
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

    def rollback(self, *, actor: str, reason: str, evidence: dict[str, Any] | None = None) -> VersionInfo:
        """Make the previous Production version Production again; the current one is Archived. `evidence`
        (e.g. the live accuracy that moved the loop to roll back) goes into the audit entry."""
        with (
            self.lock.hold(self.model_name),
            self._server_permission(actor, "-", State.ARCHIVED, f"rollback: {reason}"),
        ):
            return self._rollback(actor=actor, reason=reason, evidence=evidence or {})

    @contextmanager
    def _server_permission(self, actor: str, version: str | int, target: State, reason: str) -> Iterator[None]:
        """An MLflow server with authentication refuses registry writes of a user without EDIT or MANAGE
        on the model (403): a refusal, audited. The first write of a change is its first state tag,
        so a refused user changes nothing."""
        try:
            yield
        except MlflowException as exc:
            if exc.error_code not in PERMISSION_CODES:
                raise
            self.audit.append(
                model=self.model_name, version=str(version), from_state="-", to_state=target, actor=actor,
                reason=reason, outcome="refused", evidence={"mlflow": exc.message[:500]},
            )  # fmt: skip
            raise UnauthorizedActorError(
                f"the MLflow server refused {actor!r} a write on model {self.model_name!r}: {exc.message[:300]} "
                "(EDIT or MANAGE on the registered model is needed)"
            ) from exc

    def _rollback(self, *, actor: str, reason: str, evidence: dict[str, Any]) -> VersionInfo:
        champion = self.by_alias(ALIASES[State.PRODUCTION])
        audit = dict(
            model=self.model_name,
            version=champion.version if champion else "-",
            from_state=State.PRODUCTION,
            to_state=State.ARCHIVED,
            actor=actor,
            reason=f"rollback: {reason}",
        )
        if actor not in self.lifecycle.promoters:
            self.audit.append(**audit, outcome="refused", evidence={"promoters": self.lifecycle.promoters})
            raise UnauthorizedActorError(
                f"rollback refused: actor {actor!r} is not allowed; allowed: {', '.join(self.lifecycle.promoters)}"
            )
        entered = [
            e.version for e in self.audit.history(self.model_name)
            if e.outcome == "applied" and e.to_state == State.PRODUCTION
        ]  # fmt: skip
        try:
            restored = self.get(rollback_target(entered, champion.version if champion else None))
            if restored.state != State.ARCHIVED:
                raise IllegalTransitionError(
                    f"rollback refused: version {restored.version} is {restored.state}, not Archived"
                )
        except IllegalTransitionError:
            self.audit.append(**audit, outcome="refused", evidence={"production_history": entered})
            raise
        self._transition(champion.version, State.ARCHIVED, actor=actor, reason=audit["reason"], evidence={})
        self._apply(restored, State.PRODUCTION)
        self.audit.append(
            **{**audit, "version": restored.version, "from_state": State.ARCHIVED, "to_state": State.PRODUCTION},
            outcome="applied",
            evidence={**evidence, "replaces": champion.version},
        )
        return self.get(restored.version)

    def _production_evidence(self, challenger: VersionInfo) -> dict[str, Any]:
        """What the Staged -> Production guards judge: soak time and the comparison with the champion."""
        staged = [
            e.at for e in self.audit.history(self.model_name)
            if e.version == challenger.version and e.outcome == "applied" and e.to_state == State.STAGED
        ]  # fmt: skip
        champion = self.by_alias(ALIASES[State.PRODUCTION])
        return {
            **promotion_evidence(challenger.tags),
            "staged_hours": (datetime.now(UTC) - _aware(staged[-1])).total_seconds() / 3600 if staged else 0.0,
            "champion_version": champion.version if champion else None,
        }

    def _apply(self, current: VersionInfo, target: State) -> None:
        """Set the state tag, then keep the aliases in step: an alias names the newest version in its state."""
        self.client.set_model_version_tag(self.model_name, current.version, STATE_TAG, target)
        versions = self.versions()
        for state in {current.state, target} & set(ALIASES):
            holders = [v for v in versions if v.state == state]
            if holders:
                self.client.set_registered_model_alias(self.model_name, ALIASES[state], holders[-1].version)
            elif ALIASES[state] in current.aliases:
                self.client.delete_registered_model_alias(self.model_name, ALIASES[state])

    def _archive_current_production(self, *, actor: str, replaced_by: str) -> None:
        champion = self.by_alias(ALIASES[State.PRODUCTION])
        if champion is not None and champion.version != replaced_by:
            self._transition(
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


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _logged_model_id(model_uri: str) -> str | None:
    """The id in an MLflow 3 logged-model URI (`models:/m-...`); None for other sources."""
    rest = model_uri.removeprefix("models:/")
    return rest if rest != model_uri and rest.startswith("m-") and "/" not in rest else None
