"""`demandops features ...`: how the online store stands against the offline features, and its refill."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Annotated

import typer

from demandops.errors import DemandopsError
from demandops.settings import get_settings

REFILL_NICENESS = 10

app = typer.Typer(help=__doc__, no_args_is_help=True)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Whether the online store holds every series of the newest feature period, complete. Exit 1 if not."""
    from feature_repo.freshness import online_lag
    from feature_repo.store import open_store

    settings = get_settings()
    lag = online_lag(open_store(settings), settings.feast_dir)
    if as_json:
        typer.echo(json.dumps({**asdict(lag), "current": lag.current}))
    else:
        typer.echo(lag.describe())
    if not lag.current:
        raise typer.Exit(code=1)


@app.command()
def refill() -> None:
    """Materialize the online store again when it lags (emptied by a restart, or half-written); else nothing."""
    from pipelines.run import refill_online_store  # heavy imports only for this command

    # A refill runs beside the service it refills, on the same cores: it yields them, so that the
    # service keeps answering within its deadline while the refill takes a little longer.
    os.nice(REFILL_NICENESS)
    try:
        summary = refill_online_store(get_settings())
    except DemandopsError as failed:
        typer.echo(f"demandops features refill failed: {failed}", err=True)
        raise typer.Exit(code=1) from failed
    if summary.run_id is None:
        typer.echo(f"nothing to refill: {summary.before}")
        return
    typer.echo(f"before: {summary.before}\nrun {summary.run_id} refilled it\nafter:  {summary.after}")
