"""A champion whose bundle this code cannot load (an older network) is reported, not a crash."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow

from demandops.settings import Settings
from training.bundle import META_FILE, BundleMeta, ForecasterBundle, build_model
from training.tracking import BUNDLE_ARTIFACT, download_bundle_or_why, model_requirements, use_experiment


def _logged_bundle(settings: Settings, folder: Path, *, claim_hidden: int) -> str:
    """A run whose bundle's weights have hidden=8 while its metadata claims `claim_hidden`."""
    meta = BundleMeta(
        horizon=3, quantiles=[0.1, 0.5, 0.9], stores=["S1"], skus=["P1"], n_numeric=4, hidden=8, embedding_dim=2,
        feature_service="demand_forecast_v1", dataset_version="d", vocabularies={"sku_category": ["a"]},
    )  # fmt: skip
    bundle_dir = ForecasterBundle(build_model(meta), meta).save(folder / BUNDLE_ARTIFACT)
    claimed = json.loads((bundle_dir / META_FILE).read_text()) | {"hidden": claim_hidden}
    (bundle_dir / META_FILE).write_text(json.dumps(claimed))
    use_experiment(settings.mlflow_tracking_uri, settings.mlflow_artifact_root, "champion-bundle")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(bundle_dir), artifact_path=BUNDLE_ARTIFACT)
    return run.info.run_id


def test_a_loadable_champion_is_returned(settings: Settings, tmp_path: Path) -> None:
    settings.prepare_state()
    run_id = _logged_bundle(settings, tmp_path / "ok", claim_hidden=8)
    bundle, reason = download_bundle_or_why(settings.mlflow_tracking_uri, run_id, tmp_path / "ok_download")
    assert bundle is not None and bundle.meta.hidden == 8 and reason == ""


def test_a_champion_of_another_network_is_reported(settings: Settings, tmp_path: Path) -> None:
    settings.prepare_state()
    run_id = _logged_bundle(settings, tmp_path / "old", claim_hidden=16)
    bundle, reason = download_bundle_or_why(settings.mlflow_tracking_uri, run_id, tmp_path / "old_download")
    assert bundle is None and reason.startswith("its bundle does not load with this code: Error(s) in loading")


def test_the_logged_model_names_every_distribution_loading_it_imports() -> None:
    requirements = dict(line.split("==") for line in model_requirements())
    assert {"demandops", "mlflow", "torch", "numpy", "pandas"} <= set(requirements)
    assert requirements["torch"] == "2.13.0"  # as pinned, without a CPU or CUDA build's local label
