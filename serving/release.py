"""A Validated version's way to Staged: its Bento built, served, smoke-tested and checked for skew."""

from __future__ import annotations

from feast import FeatureStore

from demandops.settings import Settings
from lifecycle.evidence import bento_tags
from lifecycle.registry import ModelRegistry
from lifecycle.states import State
from serving.build import build_in_child
from serving.server import running_bento, smoke_test
from serving.skew import sample_series, skew_check
from training.tracking import download_bundle


def stage_bento(settings: Settings, registry: ModelRegistry, store: FeatureStore, *, version: str, run_id: str) -> dict:
    """Build the Bento of a Validated version, serve it, smoke-test it and check it for train/serve skew,
    then move the version to Staged (its guards judge that evidence); returns what was done."""
    bundle_root = settings.state / "bundles" / f"v{version}"
    bundle = download_bundle(settings.mlflow_tracking_uri, run_id, bundle_root)
    built = build_in_child(
        settings,
        bundle_dir=bundle_root / "bundle",
        model_version=version,
        lifecycle_state=str(State.VALIDATED),
    )
    smoke_log = settings.state / "logs" / f"smoke-v{version}.log"
    # The smoke test's and skew check's requests are not consumers' forecasts: kept out of the prediction
    # log. This instance listens on loopback for the checks' length only, so it asks for no API key.
    checks_only = {"DEMANDOPS_SERVING__PREDICTION_LOG": "false", "DEMANDOPS_SERVING__REQUIRE_KEYS": "false"}
    with running_bento(settings, built.bento_tag, log_path=smoke_log, extra_env=checks_only) as url:
        smoke = smoke_test(
            url,
            store_id=bundle.meta.stores[0],
            sku_id=bundle.meta.skus[0],
            horizon=bundle.meta.horizon,
            model_version=version,
        )
        skew = skew_check(url, store, bundle, sample_series(bundle), tolerance=settings.lifecycle.skew_tolerance)
    registry.annotate(version, bento_tags(built.bento_tag))
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
    return value
