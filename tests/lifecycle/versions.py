"""Registered versions for the lifecycle tests, without training's imports (torch): the concurrent
promotion tests import this in eight fresh processes at once."""

from __future__ import annotations

import mlflow

from lifecycle.registry import ModelRegistry
from lifecycle.states import State
from tests.lifecycle.test_states import GOOD_EVIDENCE

STAGING_EVIDENCE = {"bento_tag": "svc:1", "smoke_test_passed": True, "skew_max_difference": 0.0}


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


def to_staged(registry: ModelRegistry, version: str) -> None:
    registry.transition(version, State.VALIDATED, actor="pipeline", reason="t", evidence=GOOD_EVIDENCE)
    registry.transition(version, State.STAGED, actor="pipeline", reason="t", evidence=STAGING_EVIDENCE)
