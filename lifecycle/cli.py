"""`demandops lifecycle ...`: the model lifecycle for people and CI.

Exit codes: 0 success; 3 a guard refused; 4 illegal transition (or nothing to roll back to);
5 actor not authorized (not on the allow-list, not authenticated, or refused by the MLflow server);
6 model or version not found.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated

import typer

from demandops.errors import (
    GuardRefusedError,
    IllegalTransitionError,
    ModelNotFoundError,
    UnauthorizedActorError,
)
from demandops.settings import get_settings
from lifecycle.evidence import bento_of, dataset_version_of
from lifecycle.identity import acting_identity
from lifecycle.registry import ModelRegistry, VersionInfo
from lifecycle.states import State

EXIT_GUARD_REFUSED = 3
EXIT_ILLEGAL_TRANSITION = 4
EXIT_UNAUTHORIZED = 5
EXIT_NOT_FOUND = 6
EXIT_CODES = {
    GuardRefusedError: EXIT_GUARD_REFUSED,
    IllegalTransitionError: EXIT_ILLEGAL_TRANSITION,
    UnauthorizedActorError: EXIT_UNAUTHORIZED,
    ModelNotFoundError: EXIT_NOT_FOUND,
}

app = typer.Typer(help=__doc__, no_args_is_help=True)
# What runs after a promotion or rollback moved the production alias; the root command adds the
# deployment's switch (pipelines/cli.py), which this package may not import.
AFTER_PRODUCTION_MOVES: list[Callable[[VersionInfo], None]] = []
ACTOR_HELP = (
    "Who acts, checked against the promoters' allow-list. Locally, required. In the production profile, "
    "the user the MLflow server authenticates (MLFLOW_TRACKING_USERNAME/PASSWORD); leave it out."
)


def open_registry() -> ModelRegistry:
    settings = get_settings()
    settings.prepare_state()  # in production, the database and its schemas exist before MLflow connects
    return ModelRegistry.from_settings(settings)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Every version of the model with its lifecycle state and aliases."""
    versions = open_registry().versions()
    rows = [
        {
            "version": v.version,
            "state": str(v.state),
            "aliases": v.aliases,
            "dataset_version": dataset_version_of(v.tags),
            "bento_tag": bento_of(v.tags),
        }
        for v in versions
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no versions registered yet; run `make run`")
    for row in rows:
        aliases = ",".join(row["aliases"]) or "-"
        typer.echo(f"v{row['version']:<4} {row['state']:<11} aliases={aliases:<20} bento={row['bento_tag'] or '-'}")


@app.command()
def history(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The audit log: every applied and refused transition, oldest first."""
    registry = open_registry()
    entries = registry.audit.history(registry.model_name)
    if as_json:
        typer.echo(json.dumps([asdict(e) for e in entries], indent=2, default=str))
        return
    for e in entries:
        typer.echo(
            f"{e.at:%Y-%m-%d %H:%M:%S} v{e.version} {e.from_state} -> {e.to_state} "
            f"[{e.outcome}] by {e.actor}: {e.reason}"
        )


@app.command()
def promote(
    version: Annotated[str, typer.Option(help="Model version to move.")],
    to: Annotated[str, typer.Option(help="Target state, e.g. production.")],
    actor: Annotated[str | None, typer.Option(help=ACTOR_HELP)] = None,
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "promoted from the CLI",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Move a version to another state through its guards; exits non-zero with the reason if refused."""
    try:
        target = State(to.capitalize())
    except ValueError:
        typer.echo(f"unknown state {to!r}; expected one of {', '.join(s.value.lower() for s in State)}", err=True)
        raise typer.Exit(code=EXIT_ILLEGAL_TRANSITION) from None
    _report(
        lambda: open_registry().transition(
            version, target, actor=acting_identity(get_settings(), actor), reason=reason, evidence={}
        ),
        as_json,
    )


@app.command()
def rollback(
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")],
    actor: Annotated[str | None, typer.Option(help=ACTOR_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Make the previous Production version Production again; the current one is Archived.

    A running service keeps the model it loaded: restart `make serve` to serve the restored one.
    """
    _report(lambda: open_registry().rollback(actor=acting_identity(get_settings(), actor), reason=reason), as_json)


def _report(change: Callable[[], VersionInfo], as_json: bool) -> None:
    """Run one registry change; a refusal exits with its documented code and says why. A version that
    became Production is handed to AFTER_PRODUCTION_MOVES (e.g. a running deployment's switch)."""
    try:
        info = change()
    except tuple(EXIT_CODES) as refused:
        typer.echo(f"refused: {refused}", err=True)
        raise typer.Exit(code=EXIT_CODES[type(refused)]) from refused
    if info.state == State.PRODUCTION:
        for follow in AFTER_PRODUCTION_MOVES:
            follow(info)
    if as_json:
        typer.echo(json.dumps({"version": info.version, "state": str(info.state), "aliases": info.aliases}))
    else:
        typer.echo(f"version {info.version} is now {info.state} (aliases: {', '.join(info.aliases) or '-'})")
