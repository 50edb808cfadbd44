"""The lifecycle against a real MLflow tracking server on a PostgreSQL backend, started here with MLflow's
own authentication (`--app-name basic-auth`): the actor of a promotion is the user the server authenticated."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow.server import get_app_client
from typer.testing import CliRunner

from demandops.postgres import MLFLOW_SCHEMA, ensure_schema, schema_url
from demandops.settings import get_settings
from lifecycle.cli import EXIT_UNAUTHORIZED
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


ADMIN = ("admin", "admin-password-1")
USERS = {"ci": "ci-password-1", "mallory": "mallory-password-1"}


@pytest.fixture
def mlflow_server(database: str, tmp_path: Path) -> Iterator[str]:
    """`mlflow server --app-name basic-auth` on the fresh database; yields its URL once /health answers."""
    port = _free_port()
    log = (tmp_path / "mlflow-server.log").open("w")
    backend = schema_url(database, MLFLOW_SCHEMA)  # where demandops keeps MLflow in its database
    ensure_schema(backend)
    auth_config = tmp_path / "basic_auth.ini"
    auth_config.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{tmp_path / 'basic_auth.db'}\n"
        f"admin_username = {ADMIN[0]}\nadmin_password = {ADMIN[1]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # Without it the server hashes the password (scrypt) on every request: most of this test's time.
        "auth_cache_ttl_seconds = 300\n"
    )
    command = [
        str(Path(sys.executable).with_name("mlflow")), "server", "--app-name", "basic-auth",
        "--backend-store-uri", backend,
        "--artifacts-destination", str(tmp_path / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
    ]  # fmt: skip
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_config),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # as the README says: GenAI jobs demandops does not use
    }
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
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


def login(monkeypatch: pytest.MonkeyPatch, username: str, password: str) -> None:
    """MLflow's client (and demandops' commands) send these credentials with every request."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def test_concurrent_promotions_and_a_rollback_through_the_mlflow_server(
    mlflow_server: str, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(monkeypatch, *ADMIN)
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("concurrency")  # artifacts go through the server's proxy
    backend = schema_url(database, MLFLOW_SCHEMA)  # the audit log and the lock live beside the server's tables
    registry, versions = staged_versions(mlflow_server, backend, MODEL)
    winner = assert_exactly_one_production(registry, promote_all_at_once(registry, mlflow_server, backend, versions))

    # Two users: ci may edit the registered model, mallory only reads it (the server's default).
    admin = get_app_client("basic-auth", tracking_uri=mlflow_server)
    for username, password in USERS.items():
        admin.create_user(username, password)
    admin.grant_user_permission("ci", "registered_model", MODEL, "MANAGE")

    # CI's commands against the same server: promote a challenger scored beside the champion, roll back.
    for name, value in {
        "DEMANDOPS_PROFILE": "production",
        "DEMANDOPS_PRODUCTION__POSTGRES_URL": database,
        "DEMANDOPS_PRODUCTION__MLFLOW_SERVER_URL": mlflow_server,
        "DEMANDOPS_LIFECYCLE__PROMOTERS": '["ci", "mallory"]',  # the allow-list alone would let both through
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    challenger = next(v for v in versions if v != winner)
    metrics = {"champion_latest_window_wape": 0.50, "latest_window_wape_vs_champion": 0.49}
    registry.annotate(challenger, champion_tags(metrics, winner, unscorable=""))
    promote = ["promote", "--version", challenger, "--to", "production", "--json"]
    runner = CliRunner()
    try:
        _assert_what_is_refused(runner, monkeypatch, registry, promote, winner)
        login(monkeypatch, "ci", USERS["ci"])
        promoted = runner.invoke(lifecycle_app, promote)
        assert promoted.exit_code == 0, promoted.output
        assert registry.get(winner).state == State.ARCHIVED
        rolled_back = runner.invoke(lifecycle_app, ["rollback", "--reason", "drill", "--json"])
        assert rolled_back.exit_code == 0, rolled_back.output
        assert json.loads(rolled_back.stdout)["version"] == winner
    finally:
        get_settings.cache_clear()
    login(monkeypatch, *ADMIN)
    assert registry.by_alias("production").version == winner and registry.get(challenger).state == State.ARCHIVED
    history = registry.audit.history(MODEL)
    assert [e.reason for e in history[-2:]] == ["rollback: drill"] * 2
    applied = [e for e in history if e.outcome == "applied" and e.to_state == State.PRODUCTION]
    assert applied[-2].version == challenger and applied[-2].actor == "ci", "the authenticated user is audited"


def _assert_what_is_refused(runner, monkeypatch, registry, promote: list[str], champion: str) -> None:
    """A user without write permission, a typed --actor that is not the authenticated user, and a wrong
    password: each exits 5 and leaves the registry as it was."""
    login(monkeypatch, "mallory", USERS["mallory"])
    refused = runner.invoke(lifecycle_app, promote)
    assert refused.exit_code == EXIT_UNAUTHORIZED, refused.output
    assert "the MLflow server refused 'mallory' a write on model" in refused.output
    posing = runner.invoke(lifecycle_app, [*promote, "--actor", "ci"])
    assert posing.exit_code == EXIT_UNAUTHORIZED and "is not the user the MLflow server authenticated" in posing.output
    login(monkeypatch, "ci", "not-the-password")
    wrong = runner.invoke(lifecycle_app, promote)
    assert wrong.exit_code == EXIT_UNAUTHORIZED and "refused the credentials" in wrong.output
    login(monkeypatch, *ADMIN)  # the test's own registry reads as the admin
    assert registry.by_alias("production").version == champion, "nothing moved"
    last = registry.audit.history(MODEL)[-1]
    assert (last.actor, last.outcome) == ("mallory", "refused"), last
