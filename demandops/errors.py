"""The demandops exception hierarchy: every failure a user can meet names what was wrong."""

from __future__ import annotations


class DemandopsError(Exception):
    """Base of every error raised by demandops."""


class SettingsError(DemandopsError):
    """A DEMANDOPS_* setting is missing, malformed or out of its allowed range (the variable named)."""


class DataContractError(DemandopsError):
    """Input data does not match the raw-data contract (file, column, value named)."""


class DatasetVersionError(DemandopsError):
    """The data on disk does not match its DVC record, or no DVC record exists."""


class FeatureStoreError(DemandopsError):
    """The feature store could not be reached or returned something unusable."""


class ModelNotFoundError(DemandopsError):
    """A registered model or version does not exist."""


class LifecycleError(DemandopsError):
    """Base of model-lifecycle refusals."""


class IllegalTransitionError(LifecycleError):
    """The requested lifecycle transition is not an edge of the state machine."""


class GuardRefusedError(LifecycleError):
    """A transition is legal but one of its guards refused it."""

    def __init__(self, message: str, *, failed: list[str], evidence: dict[str, object]):
        super().__init__(message)
        self.failed = failed
        self.evidence = evidence


class UnauthorizedActorError(LifecycleError):
    """The actor is not on the allow-list for this transition."""


class ReproductionError(DemandopsError):
    """A run cannot be reproduced from what it recorded, or its reproduction differs."""
