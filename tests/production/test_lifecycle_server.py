"""The lifecycle against a real MLflow tracking server on a PostgreSQL backend, started here."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from typer.testing import CliRunner

from demandops.postgres import MLFLOW_SCHEMA, ensure_schema, schema_url
from demandops.settings import get_settings
from lifecycle.cli import app as lifecycle_app
from lifecycle.evidence import champion_tags
from lifecycle.states import State
from tests.lifecycle.concurrent_promotions import assert_exactly_one_production, promote_all_at_once, staged_versions

pytestmark = pytest.mark.production
MODEL = "demand_forecaster"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(database: str, tmp_path: Path) -> Iterator[str]:
    """`mlflow server` on the fresh database; yields its URL once /health answers."""
    port = _free_port()
    log = (tmp_path / "mlflow-server.log").open("w")
    backend = schema_url(database, MLFLOW_SCHEMA)  # where demandops keeps MLflow in its database
    ensure_schema(backend)
    command = [
        str(Path(sys.executable).with_name("mlflow")), "server",
        "--backend-store-uri", backend,
        "--artifacts-destination", str(tmp_path / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:  # poll the readiness endpoint: the server migrates a fresh database first
            if server.poll() is not None:
                output = (tmp_path / "mlflow-server.log").read_text()[-2000:]
                pytest.fail(f"mlflow server exited with {server.returncode}: {output}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow server did not answer /health within 120 s")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_concurrent_promotions_and_a_rollback_through_the_mlflow_server(
    mlflow_server: str, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("concurrency")  # artifacts go through the server's proxy
    backend = schema_url(database, MLFLOW_SCHEMA)  # the audit log and the lock live beside the server's tables
    registry, versions = staged_versions(mlflow_server, backend, MODEL)
    winner = assert_exactly_one_production(registry, promote_all_at_once(registry, mlflow_server, backend, versions))

    # CI's commands against the same server: promote a challenger scored beside the champion, roll back.
    for name, value in {
        "DEMANDOPS_PROFILE": "production",
        "DEMANDOPS_PRODUCTION__POSTGRES_URL": database,
        "DEMANDOPS_PRODUCTION__MLFLOW_SERVER_URL": mlflow_server,
        "DEMANDOPS_LIFECYCLE__PROMOTERS": '["ci"]',
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    challenger = next(v for v in versions if v != winner)
    metrics = {"champion_latest_window_wape": 0.50, "latest_window_wape_vs_champion": 0.49}
    registry.annotate(challenger, champion_tags(metrics, winner, unscorable=""))
    runner = CliRunner()
    try:
        promoted = runner.invoke(
            lifecycle_app, ["promote", "--version", challenger, "--to", "production", "--actor", "ci", "--json"]
        )
        assert promoted.exit_code == 0, promoted.output
        assert registry.get(winner).state == State.ARCHIVED
        rolled_back = runner.invoke(lifecycle_app, ["rollback", "--actor", "ci", "--reason", "drill", "--json"])
        assert rolled_back.exit_code == 0, rolled_back.output
        assert json.loads(rolled_back.stdout)["version"] == winner
    finally:
        get_settings.cache_clear()
    assert registry.by_alias("production").version == winner and registry.get(challenger).state == State.ARCHIVED
    assert [e.reason for e in registry.audit.history(MODEL)[-2:]] == ["rollback: drill"] * 2
