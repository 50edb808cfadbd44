"""The served version's lifecycle state as the registry holds it now, for /metadata.

A Bento is built while its version is Validated; it is served later, when the version may be
Staged, Production, or already Archived by a rollback. Consumers and on-call want the state now.
"""

from __future__ import annotations

import time

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from demandops.settings import Settings
from lifecycle.evidence import state_of

CACHE_SECONDS = 30.0  # the registry is asked at most this often; states change on human time scales


class LifecycleStateReader:
    def __init__(self, settings: Settings, model_name: str, model_version: str):
        self.tracking_uri = settings.mlflow_tracking_uri
        self.model_name = model_name
        self.model_version = model_version
        self._read_at = -CACHE_SECONDS
        self._answer: dict[str, str | None] = {}

    def read(self) -> dict[str, str | None]:
        """{"lifecycle_state": ...}, or a null state with the reason the registry could not say."""
        if time.monotonic() - self._read_at >= CACHE_SECONDS:
            self._answer = self._ask_registry()
            self._read_at = time.monotonic()
        return self._answer

    def _ask_registry(self) -> dict[str, str | None]:
        try:
            version = MlflowClient(tracking_uri=self.tracking_uri).get_model_version(
                self.model_name, self.model_version
            )
        except MlflowException as exc:
            return {"lifecycle_state": None, "lifecycle_state_error": f"the registry did not answer: {exc.message}"}
        return {"lifecycle_state": state_of(version.tags, None)}
