"""`demandops lifecycle` as CI calls it: exit codes, the refused guard named with its evidence, --json."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from demandops.settings import Settings, get_settings
from lifecycle.cli import EXIT_GUARD_REFUSED, EXIT_ILLEGAL_TRANSITION, EXIT_NOT_FOUND, EXIT_UNAUTHORIZED, app
from lifecycle.registry import ModelRegistry
from lifecycle.states import State
from tests.lifecycle.test_registry import new_version, scored_beside
from tests.lifecycle.versions import to_staged
from training.tracking import use_experiment

runner = CliRunner()


@pytest.fixture
def registry(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelRegistry]:
    """The registry the CLI opens: the test's state folder, through the environment."""
    monkeypatch.setenv("DEMANDOPS_PROJECT_DIR", str(settings.project_dir))
    monkeypatch.setenv("DEMANDOPS_STATE_DIR", str(settings.state))
    monkeypatch.setenv("DEMANDOPS_LIFECYCLE__PROMOTERS", '["ci"]')
    get_settings.cache_clear()
    settings.prepare_state()
    use_experiment(settings.mlflow_tracking_uri, settings.mlflow_artifact_root, "cli-test")
    from lifecycle.cli import open_registry

    yield open_registry()
    get_settings.cache_clear()


def lifecycle(*args: str):
    return runner.invoke(app, list(args))


def test_exit_codes_name_what_was_refused(registry: ModelRegistry) -> None:
    v1, v2 = new_version(registry), new_version(registry)
    missing = lifecycle("promote", "--version", "99", "--to", "production", "--actor", "ci")
    assert missing.exit_code == EXIT_NOT_FOUND and "no version 99" in missing.output

    illegal = lifecycle("promote", "--version", v1, "--to", "production", "--actor", "ci")
    assert illegal.exit_code == EXIT_ILLEGAL_TRANSITION and "illegal transition Trained -> Production" in illegal.output

    to_staged(registry, v1)
    unauthorized = lifecycle("promote", "--version", v1, "--to", "production", "--actor", "mallory")
    assert unauthorized.exit_code == EXIT_UNAUTHORIZED and "actor 'mallory'" in unauthorized.output

    shipped = lifecycle("promote", "--version", v1, "--to", "production", "--actor", "ci", "--json")
    assert shipped.exit_code == 0, shipped.output
    assert json.loads(shipped.stdout) == {"version": v1, "state": "Production", "aliases": ["production"]}

    to_staged(registry, v2)
    scored_beside(registry, v2, champion=v1, challenger_wape=0.52, champion_wape=0.48)
    worse = lifecycle("promote", "--version", v2, "--to", "production", "--actor", "ci")
    assert worse.exit_code == EXIT_GUARD_REFUSED
    assert "beats_champion: latest-window WAPE 0.5200 must be <= 0.4800" in worse.output
    assert registry.get(v2).state == State.STAGED


def test_rollback_from_the_command_line(registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    moved: list[str] = []  # what a running deployment would be switched to (pipelines/cli.py adds that)
    monkeypatch.setattr("lifecycle.cli.AFTER_PRODUCTION_MOVES", [lambda info: moved.append(info.version)])
    nothing = lifecycle("rollback", "--actor", "ci", "--reason", "empty registry")
    assert nothing.exit_code == EXIT_ILLEGAL_TRANSITION and "no version is in Production" in nothing.output
    v1, v2 = new_version(registry), new_version(registry)
    to_staged(registry, v1)
    registry.transition(v1, State.PRODUCTION, actor="ci", reason="first", evidence={})
    to_staged(registry, v2)
    scored_beside(registry, v2, champion=v1, challenger_wape=0.40, champion_wape=0.41)
    registry.transition(v2, State.PRODUCTION, actor="ci", reason="second", evidence={})

    refused = lifecycle("rollback", "--actor", "mallory", "--reason", "t")
    assert refused.exit_code == EXIT_UNAUTHORIZED
    done = lifecycle("rollback", "--actor", "ci", "--reason", "bad promo forecasts", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"version": v1, "state": "Production", "aliases": ["production"]}
    assert moved == [v1], "only the applied rollback moves a deployment"
    history = json.loads(lifecycle("history", "--json").stdout)
    assert [h["reason"] for h in history[-2:]] == ["rollback: bad promo forecasts"] * 2
    assert [h["outcome"] for h in history if h["actor"] == "mallory"] == ["refused"]
