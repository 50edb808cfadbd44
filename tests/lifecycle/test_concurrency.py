from __future__ import annotations

import pytest

from demandops.settings import Settings
from tests.lifecycle.concurrent_promotions import assert_exactly_one_production, promote_all_at_once, staged_versions
from training.tracking import use_experiment


@pytest.mark.slow
def test_eight_concurrent_promotions_on_sqlite_end_with_one_production(settings: Settings) -> None:
    settings.prepare_state()
    uri = settings.mlflow_tracking_uri
    use_experiment(uri, settings.mlflow_artifact_root, "concurrency")
    registry, versions = staged_versions(uri, uri, "concurrent_sqlite")
    assert_exactly_one_production(registry, promote_all_at_once(registry, uri, uri, versions))
