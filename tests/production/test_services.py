"""The production profile against the real PostgreSQL and Redis on localhost."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import mlflow
import psycopg2
import pytest
import redis

from feature_repo.definitions import FEATURE_SERVICE_NAME
from lifecycle.registry import ModelRegistry
from lifecycle.states import State
from serving.online import online_features
from tests.conftest import REDIS_HOST, REDIS_PORT, REDIS_TEST_DB, apply_features, production_settings
from training.features import DAILY
from training.tracking import use_experiment

pytestmark = pytest.mark.production


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


def test_lifecycle_runs_on_the_postgres_mlflow_backend(tmp_path: Path, database: str) -> None:
    settings = production_settings(tmp_path, postgres_url=database)
    settings.ensure_state_dirs()
    assert settings.mlflow_tracking_uri == database
    use_experiment(database, settings.mlflow_artifact_root, "prod-test")
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Echo())
    registry = ModelRegistry(tracking_uri=database, model_name="demand_forecaster", lifecycle=settings.lifecycle)
    version = registry.register(model_uri=info.model_uri, run_id=run.info.run_id, tags={}).version
    registry.transition(version, State.REJECTED, actor="pipeline", reason="test", evidence={"why": "test"})
    assert registry.get(version).state == State.REJECTED
    with psycopg2.connect(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT from_state, to_state, outcome FROM demandops_lifecycle_audit ORDER BY id")
        assert cur.fetchall() == [("Training", "Trained", "applied"), ("Trained", "Rejected", "applied")]


def test_feast_materializes_into_redis_and_serves_online(tmp_path: Path, redis_db: str, small_data) -> None:
    settings = production_settings(tmp_path, redis_url=redis_db)
    store, features = apply_features(settings, small_data)
    assert store.config.online_store.type == "redis"
    latest = features["event_timestamp"].max()
    store.materialize(
        start_date=(latest - timedelta(days=2)).to_pydatetime(),
        end_date=(latest + timedelta(days=1)).to_pydatetime(),
    )
    assert redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_TEST_DB).dbsize() > 0
    pairs = [("S000", "P0000"), ("S001", "P0003")]
    online = online_features(store, FEATURE_SERVICE_NAME, DAILY, pairs)
    assert list(zip(online["store_id"], online["sku_id"], strict=True)) == pairs
    assert (online["event_timestamp"] == latest).all()
