"""API keys in the profile's database (serving/api_keys.py) and `demandops keys` (serving/keys_cli.py):
on SQLite and on a real PostgreSQL, only digests stored, names unique, revocations kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from serving.api_keys import KEY_PREFIX, ApiKeyError, KeyStore, digest_of, keys_table
from serving.keys_cli import app as keys_app


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'keys.db'}"
    return request.getfixturevalue("database")


def test_a_key_is_shown_once_and_stored_as_a_digest(database_url: str) -> None:
    store = KeyStore(database_url)
    key, plaintext = store.create("planner-eu", rate_per_s=20, daily_quota=50_000)
    assert plaintext.startswith(KEY_PREFIX) and len(plaintext) >= len(KEY_PREFIX) + 43
    assert key.shown == plaintext[:12] + "..." and key.rate_per_s == 20 and key.daily_quota == 50_000
    with create_engine(database_url).connect() as conn:
        stored = [str(value) for row in conn.execute(select(keys_table)) for value in row]
    assert not any(plaintext in value for value in stored), "the plaintext is nowhere in the table"
    assert digest_of(plaintext) in stored
    assert store.by_digest()[digest_of(plaintext)].name == "planner-eu"
    other, second = store.create("forecasts-us")
    assert second != plaintext and [k.name for k in store.list()] == ["planner-eu", "forecasts-us"]
    assert other.rate_per_s is None and other.daily_quota is None


def test_names_are_unique_and_a_revocation_is_kept(database_url: str) -> None:
    store = KeyStore(database_url)
    _, plaintext = store.create("planner")
    with pytest.raises(ApiKeyError, match="a key named 'planner' exists already"):
        store.create("planner")
    revoked = store.revoke("planner")
    assert revoked.revoked and store.by_digest()[digest_of(plaintext)].revoked, "kept, to answer it 403"
    with pytest.raises(ApiKeyError, match="revoked already"):
        store.revoke("planner")
    with pytest.raises(ApiKeyError, match="no key is named 'nobody'"):
        store.revoke("nobody")
    with pytest.raises(ApiKeyError, match="exists already"):
        store.create("planner")
    with pytest.raises(ApiKeyError, match="needs a name"):
        store.create("  ")


def test_the_command_creates_lists_and_revokes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DEMANDOPS_STATE_DIR", str(tmp_path / "state"))
    runner = CliRunner()
    created = runner.invoke(keys_app, ["create", "--name", "planner", "--rate", "20/s", "--daily-quota", "1000"])
    assert created.exit_code == 0, created.output
    plaintext = created.stdout.strip()
    assert plaintext.startswith(KEY_PREFIX) and "not shown again" in created.stderr
    listed = runner.invoke(keys_app, ["list"])
    assert "planner" in listed.stdout and "20/s, 1000/day" in listed.stdout and plaintext not in listed.stdout
    assert runner.invoke(keys_app, ["revoke", "planner"]).exit_code == 0
    assert "revoked" in runner.invoke(keys_app, ["list"]).stdout
    bad_rate = runner.invoke(keys_app, ["create", "--name", "x", "--rate", "20"])
    message = " ".join(bad_rate.output.replace("│", " ").split())  # typer draws the error in a wrapped box
    assert bad_rate.exit_code == 2 and "expected whole requests per second, e.g. 20/s" in message
    assert runner.invoke(keys_app, ["create", "--name", "y", "--daily-quota", "0"]).exit_code == 2
