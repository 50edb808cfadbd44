"""Stage 7: the Bento of the Validated version, smoke-tested over HTTP, then Staged."""

import dagster as dg

from lifecycle.states import State
from pipelines.registry_metadata import registry_metadata
from pipelines.resources import Demandops
from serving.build import build_in_child
from serving.server import running_bento, smoke_test
from serving.skew import sample_series, skew_check
from training.tracking import download_bundle


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
        return _build_and_stage(demandops, registry, version, trained_model["run_id"])


def _build_and_stage(demandops: Demandops, registry, version: str, run_id: str) -> dg.Output[dict]:
    settings = demandops.settings()
    bundle_root = settings.state / "bundles" / f"v{version}"
    bundle = download_bundle(settings.mlflow_tracking_uri, run_id, bundle_root)
    built = build_in_child(
        settings,
        bundle_dir=bundle_root / "bundle",
        model_version=version,
        lifecycle_state=str(State.VALIDATED),
    )
    with running_bento(settings, built.bento_tag, log_path=settings.state / "logs" / f"smoke-v{version}.log") as url:
        smoke = smoke_test(
            url,
            store_id=bundle.meta.stores[0],
            sku_id=bundle.meta.skus[0],
            horizon=bundle.meta.horizon,
            model_version=version,
        )
        skew = skew_check(
            url, demandops.feature_store(), bundle, sample_series(bundle), tolerance=settings.lifecycle.skew_tolerance
        )
    registry.annotate(version, {"bento_tag": built.bento_tag})
    info = registry.transition(
        version,
        State.STAGED,
        actor="pipeline",
        reason="bento built and smoke-tested",
        evidence={
            "bento_tag": built.bento_tag,
            "bento_model_tag": built.bento_model_tag,
            "smoke_test_passed": smoke.passed,
            "smoke_test_detail": smoke.detail,
            "skew_max_difference": skew.max_difference,
            "skew_detail": skew.detail,
        },
    )
    value = {
        "model_version": version,
        "bento_tag": built.bento_tag,
        "state": str(info.state),
        "smoke_test": smoke.detail,
        "skew_check": skew.detail,
        "frequency": bundle.meta.frequency,
        "example_item": {
            "store_id": bundle.meta.stores[0],
            "sku_id": bundle.meta.skus[0],
            "horizon": bundle.meta.horizon,
        },
    }
    return dg.Output(value, metadata={**value, **registry_metadata(registry)})
