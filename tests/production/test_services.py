"""The production profile against the real PostgreSQL and Redis on localhost."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import mlflow
import psycopg2
import pytest

from demandops.errors import DemandopsError
from demandops.postgres import DatabaseSetupError, ensure_schema, schema_url
from demandops.settings import ProductionServices
from feature_repo.definitions import FEATURE_SERVICE_NAME
from feature_repo.redis_store import STORE_TYPE as REDIS_STORE_TYPE
from feature_repo.store import materialize_span
from lifecycle.registry import ModelRegistry
from lifecycle.states import State
from serving.online import online_features
from tests.conftest import (
    DAILY,
    POSTGRES_ADMIN_DSN,
    RedisDatabase,
    apply_features,
    production_settings,
)
from training.tracking import use_experiment

pytestmark = pytest.mark.production


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


def test_lifecycle_runs_on_the_postgres_mlflow_backend(tmp_path: Path, database: str) -> None:
    settings = production_settings(tmp_path, postgres_url=database)
    settings.prepare_state()
    tracking = settings.mlflow_tracking_uri
    assert tracking.startswith("postgresql+psycopg2://") and "search_path%3Dmlflow" in tracking, tracking
    use_experiment(tracking, settings.mlflow_artifact_root, "prod-test")
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Echo(), pip_requirements=["mlflow"])
    registry = ModelRegistry.from_settings(settings)
    version = registry.register(model_uri=info.model_uri, run_id=run.info.run_id, tags={}).version
    registry.transition(version, State.REJECTED, actor="pipeline", reason="test", evidence={"why": "test"})
    assert registry.get(version).state == State.REJECTED
    with psycopg2.connect(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT from_state, to_state, outcome FROM mlflow.demandops_lifecycle_audit ORDER BY id")
        assert cur.fetchall() == [("Training", "Trained", "applied"), ("Trained", "Rejected", "applied")]


def test_feast_materializes_into_redis_and_serves_online(tmp_path: Path, redis_db: RedisDatabase, small_data) -> None:
    settings = production_settings(tmp_path, redis_url=redis_db.url)
    store, features = apply_features(settings, small_data)
    assert store.config.online_store.type == REDIS_STORE_TYPE and store.config.online_store.retries == 3
    latest = features["event_timestamp"].max()
    materialize_span(store, (latest - timedelta(days=2)).to_pydatetime(), latest.to_pydatetime())
    assert redis_db.client.dbsize() > 0
    pairs = [("S000", "P0000"), ("S001", "P0003")]
    online = online_features(store, FEATURE_SERVICE_NAME, DAILY, pairs)
    assert list(zip(online["store_id"], online["sku_id"], strict=True)) == pairs
    assert (online["event_timestamp"] == latest).all()


def test_a_missing_database_is_created_and_a_registry_left_in_public_is_refused(database: str) -> None:
    fresh = f"{database}_new"
    ensure_schema(schema_url(fresh, "mlflow"))  # created, with its schema, as `make run` would
    try:
        with psycopg2.connect(fresh) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'mlflow'")
            assert cur.fetchone() == (1,)
    finally:
        admin = psycopg2.connect(POSTGRES_ADMIN_DSN)
        admin.autocommit = True  # DROP DATABASE runs outside a transaction
        admin.cursor().execute(f"DROP DATABASE {fresh.rsplit('/', 1)[1]} WITH (FORCE)")
        admin.close()

    with psycopg2.connect(database) as conn, conn.cursor() as cur:  # an installation from before the schemas
        cur.execute("CREATE TABLE public.registered_models (name text)")
    with pytest.raises(DatabaseSetupError, match="holds an MLflow registry in schema 'public'"):
        ensure_schema(schema_url(database, "mlflow"))
    with psycopg2.connect(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regnamespace('mlflow') IS NULL")
        assert cur.fetchone() == (True,), "nothing was changed"


def test_a_url_that_is_not_postgresql_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="uses 'mysql'; expected one of postgresql://"):
        ProductionServices(postgres_url="mysql://root@127.0.0.1/demandops")
    with pytest.raises(ValueError, match="names no database"):
        ProductionServices(postgres_url="postgresql://postgres@127.0.0.1:5432")
    with pytest.raises(DemandopsError, match="is not a database URL"):
        schema_url("127.0.0.1:5432", "mlflow")
