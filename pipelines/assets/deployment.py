"""Stage 7: the Bento of the Validated version, smoke-tested over HTTP, then Staged."""

import dagster as dg

from lifecycle.states import State
from pipelines.metadata import registry_metadata
from pipelines.resources import Demandops
from serving.release import stage_bento


@dg.asset(io_manager_key="lake", group_name="deployment", kinds={"bentoml"})
def bento(model_evaluation: dict, trained_model: dict, demandops: Demandops) -> dg.Output[dict]:
    """`bentoml build` of the validated version; a passing HTTP smoke test and skew check move it to Staged."""
    version = trained_model["model_version"]
    if model_evaluation["state"] != State.VALIDATED:
        raise dg.Failure(
            f"version {version} is {model_evaluation['state']}, not Validated: {model_evaluation['refusal']}"
        )
    registry = demandops.registry()
    with registry.compensating(version, step="bento"):
        staged = stage_bento(
            demandops.settings(), registry, demandops.feature_store(), version=version, run_id=trained_model["run_id"]
        )
    return dg.Output(staged, metadata={**staged, **registry_metadata(registry)})
