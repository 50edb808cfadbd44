"""The `demandops` command: run the chain, open the UIs, serve the model, manage data, lifecycle and API keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from demandops.errors import DemandopsError, SettingsError
from demandops.logs import use_json_logs
from demandops.settings import MAX_HORIZON, get_settings
from lifecycle.cli import AFTER_PRODUCTION_MOVES, open_registry
from lifecycle.cli import app as lifecycle_app
from lifecycle.evidence import bento_of
from lifecycle.registry import VersionInfo
from lifecycle.states import ALIASES, State
from pipelines.features_cli import app as features_app
from salesdata.cli import app as data_app
from serving.deploy import Deployment
from serving.keys_cli import app as keys_app
from serving.server import bento_env

app = typer.Typer(help="demandops: demand forecasting from raw sales to a served model.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(lifecycle_app, name="lifecycle")
app.add_typer(features_app, name="features")
app.add_typer(keys_app, name="keys")


def main() -> None:
    """The console entry point: a refusal is one message and an exit code, never a traceback."""
    try:
        app()
    except SettingsError as invalid:
        typer.echo(f"demandops: {invalid}", err=True)
        raise SystemExit(2) from None
    except DemandopsError as refused:
        typer.echo(f"demandops: {refused}", err=True)
        raise SystemExit(1) from None


def _tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@app.command()
def run(
    promote_first: Annotated[bool, typer.Option(help="Promote to Production when none is there yet.")] = True,
    training_config: Annotated[
        str | None, typer.Option(help='Training hyperparameters as JSON, e.g. \'{"epochs": 10, "seed": 3}\'.')
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Dagster's event log and every library's output on the terminal too.")
    ] = False,
) -> None:
    """Materialize the whole asset graph in-process on the configured data (what `make run` does)."""
    from pipelines.run import ChainFailed, run_chain, training_run_config  # heavy imports only for this command
    from pipelines.run_log import output_to, watching
    from pipelines.terminal import ChainView, failure_text, summary_text

    settings = get_settings()
    try:
        training = json.loads(training_config) if training_config else None
    except json.JSONDecodeError as bad:
        raise typer.BadParameter(f"not JSON ({bad})", param_hint="--training-config") from bad
    training_run_config(training)  # refused before anything runs or is written
    log_path = settings.state / "logs" / f"run-{time.strftime('%Y%m%dT%H%M%S')}.log"
    kept_log = None if verbose else log_path
    try:
        with ExitStack() as shown:
            terminal = None if verbose else shown.enter_context(output_to(log_path))
            view = shown.enter_context(ChainView(Console(file=terminal or sys.stdout)))
            shown.enter_context(watching(view))
            if not verbose:
                view.line(f"demandops run: Dagster's events and all other output go to {log_path} (--verbose: here)")
            summary = run_chain(settings, promote_first=promote_first, training=training)
    except ChainFailed as failed:
        typer.echo(failure_text(settings.ui, failed.step, failed.cause, kept_log, failed.run_id), err=True)
        raise typer.Exit(code=1) from None
    except DemandopsError as failed:
        typer.echo(failure_text(settings.ui, None, str(failed), kept_log, None), err=True)
        raise typer.Exit(code=1) from None
    typer.echo(summary_text(settings, summary, kept_log))


@app.command()
def loop() -> None:
    """One turn of the closed loop: gate and score the new periods, measure drift, then roll back, retrain
    or promote on live evidence (pipelines/loop.py). Run it after each sales delivery, e.g. from cron."""
    from pipelines.loop import run_loop  # heavy imports only for this command

    turn = run_loop(get_settings())
    typer.echo(turn.describe())


@lifecycle_app.command("reconcile")
def reconcile_command() -> None:
    """Close what killed runs left unfinished: runs marked failed, versions Failed or Rejected ("interrupted")."""
    from pipelines.reconcile import reconcile
    from pipelines.run import open_instance

    settings = get_settings()
    with open_instance(settings) as instance:
        done = reconcile(settings, instance, open_registry())
    typer.echo(done.describe())
    for line in done.versions:
        typer.echo(f"  {line}")


@app.command()
def reproduce(
    run_id: Annotated[str, typer.Argument(help="The MLflow run id of the training to reproduce.")],
    workdir: Annotated[Path, typer.Option(help="Empty folder for the worktree and the fresh state.")] = Path(
        "state/reproductions"
    ),
    tolerance: Annotated[float, typer.Option(help="Largest accepted relative difference in backtest WAPE.")] = 0.005,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Re-run a training from its MLflow params alone (commit, dataset version, config) and compare.

    Exit codes: 0 reproduced within the tolerance; 1 it differs or cannot be reproduced.
    """
    from pipelines.reproduce import reproduce as run_reproduction  # heavy imports only for this command

    settings = get_settings()
    try:
        result = run_reproduction(settings, run_id, (workdir / run_id).resolve())
    except DemandopsError as failed:
        typer.echo(f"demandops reproduce failed: {failed}", err=True)
        raise typer.Exit(code=1) from failed
    within = result.relative_difference <= tolerance
    report = {**asdict(result), "relative_difference": result.relative_difference, "within_tolerance": within}
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(
            f"run {run_id} at {result.git_commit[:12]} on data {result.dataset_version}: backtest WAPE "
            f"{result.original_wape:.5f}, reproduced {result.reproduced_wape:.5f} "
            f"({result.relative_difference:.3%} apart; tolerance {tolerance:.2%})"
        )
    if not within:
        raise typer.Exit(code=1)


@app.command()
def serve(port: Annotated[int, typer.Option(help="HTTP port.")] = 3000) -> None:
    """Serve the Production Bento, or the newest Staged one when nothing is in Production."""
    registry = open_registry()
    chosen = registry.by_alias(ALIASES[State.PRODUCTION])
    if chosen is None:
        staged = [v for v in registry.versions() if v.state == State.STAGED]
        chosen = staged[-1] if staged else None
    if chosen is None or not bento_of(chosen.tags):
        typer.echo("no Production or Staged version with a Bento; run `make run` first", err=True)
        raise typer.Exit(code=1)
    tag = bento_of(chosen.tags)
    typer.echo(f"serving {tag} (model v{chosen.version}, {chosen.state}) on http://127.0.0.1:{port}")
    os.execve(_tool("bentoml"), [_tool("bentoml"), "serve", tag, "--port", str(port)], bento_env(get_settings()))


@app.command()
def deploy(
    version: Annotated[
        str | None, typer.Option(help="Model version to serve; default: the one the production alias names.")
    ] = None,
    stop: Annotated[bool, typer.Option("--stop", help="Stop nginx and the Bento it serves.")] = False,
) -> None:
    """Serve a version's Bento behind nginx, in place of the one served, without a failed request."""
    deployment = Deployment(get_settings())
    if stop:
        deployment.stop()
        typer.echo("deployment stopped")
        return
    registry = open_registry()
    chosen = registry.get(version) if version else registry.by_alias(ALIASES[State.PRODUCTION])
    if chosen is None or not bento_of(chosen.tags):
        typer.echo(f"{f'version {version}' if version else 'no Production version'} has no Bento to serve", err=True)
        raise typer.Exit(code=1)
    _switch(deployment, chosen.version, bento_of(chosen.tags))


def _switch(deployment: Deployment, version: str, bento_tag: str) -> None:
    switched = deployment.switch(bento_tag, version)
    slot, old = switched.slot, switched.replaced
    replaced = f", in place of v{old.model_version}" if old else ""
    typer.echo(
        f"v{slot.model_version} ({slot.bento_tag}) serves at {deployment.url} through nginx{replaced}: ready "
        f"after {switched.ready_s:.1f} s, answering after {switched.answering_s:.1f} s, "
        f"{'the old Bento stopped' if old else 'done'} after {switched.done_s:.1f} s"
    )


def _switch_a_running_deployment(info: VersionInfo) -> None:
    """After a rollback or promotion: a running deployment serves the new Production version."""
    deployment = Deployment(get_settings())
    if deployment.active() is not None and bento_of(info.tags):
        _switch(deployment, info.version, bento_of(info.tags))


AFTER_PRODUCTION_MOVES.append(_switch_a_running_deployment)


@app.command()
def forecast(
    output: Annotated[Path, typer.Option(help="File to write: .parquet or .csv.")],
    horizon: Annotated[
        int | None, typer.Option(min=1, max=MAX_HORIZON, help="Periods per series (default: the model's horizon).")
    ] = None,
) -> None:
    """Forecast every series with the Production model, through the service's code path, into one file."""
    from serving.batch import score_all

    use_json_logs()  # as the service logs: a line of JSON each
    settings = get_settings()
    try:
        scored = score_all(settings, open_registry(), output, horizon=horizon)
    except DemandopsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(
        f"wrote {scored.rows} rows ({scored.series} series, model v{scored.model_version}) to {scored.path}"
        + (
            f"; {scored.degraded_series} series from last known features (online store failing)"
            if scored.degraded_series
            else ""
        )
    )
    if scored.unserved:
        missing = ", ".join(f"{s}/{k}" for s, k in scored.unserved)
        typer.echo(
            f"warning: {len(scored.unserved)} series have no online features and were not scored: {missing}", err=True
        )


@app.command()
def plan(
    output: Annotated[Path, typer.Option(help="File to write: .parquet or .csv.")],
    lead_time: Annotated[
        int, typer.Option(min=1, max=MAX_HORIZON, help="Periods from order to delivery (L), where --items gives none.")
    ] = 1,
    review_period: Annotated[
        int, typer.Option(min=1, max=MAX_HORIZON, help="Periods between orders (R); L + R <= the horizon.")
    ] = 1,
    service_level: Annotated[float, typer.Option(help="Cycle service level, within [0.5, 0.999].")] = 0.95,
    items: Annotated[
        Path | None,
        typer.Option(help="CSV: store_id, sku_id, any of lead_time, review_period, service_level, on_hand, on_order."),
    ] = None,
) -> None:
    """Reorder points, order-up-to levels and orders for every series, as POST /replenishment answers them."""
    from serving.nightly_plan import Policy, plan_all

    policy = Policy(lead_time=lead_time, review_period=review_period, service_level=service_level)
    try:
        planned = plan_all(get_settings(), open_registry(), output, policy, items)
    except DemandopsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"wrote {planned.series} series (model v{planned.model_version}) to {planned.path}")
    if planned.refitted_rows:
        typer.echo(f"lead-time tables refitted on {planned.refitted_rows} lead-time demands of logged forecasts")
    if planned.degraded_series:
        typer.echo(f"warning: {planned.degraded_series} series from last known features (store failing)", err=True)
    if planned.unserved:
        typer.echo(f"warning: {len(planned.unserved)} series have no online features and were not planned", err=True)


@app.command()
def ui(
    dagster_port: Annotated[int | None, typer.Option(help="Dagster UI port [default: ui.dagster_port, 3001].")] = None,
    mlflow_port: Annotated[int | None, typer.Option(help="MLflow UI port [default: ui.mlflow_port, 5000].")] = None,
) -> None:
    """The Dagster UI on workspace.yaml and the MLflow UI, until interrupted."""
    from salesdata.datasets import ensure_dataset

    settings = get_settings()
    ports = {"dagster_port": dagster_port, "mlflow_port": mlflow_port}
    # The code location gets these settings too, so that its MLflow links name this port.
    ui = settings.ui.model_copy(update={k: v for k, v in ports.items() if v is not None})
    settings = settings.model_copy(update={"ui": ui})
    settings.prepare_state()
    ensure_dataset(settings)  # the asset graph's partitions are the days found in data/
    # MLflow's GenAI job runner (seven huey consumers, each a full MLflow import) serves nothing demandops uses.
    env = {**settings.child_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    mlflow_command = ["ui", "--backend-store-uri", settings.mlflow_tracking_uri, "--host", ui.host]
    mlflow_ui = subprocess.Popen([_tool("mlflow"), *mlflow_command, "--port", str(ui.mlflow_port)], env=env)
    try:
        workspace = str(settings.project_dir / "workspace.yaml")
        dagster_command = ["dev", "-w", workspace, "-h", ui.host, "-p", str(ui.dagster_port)]
        subprocess.run([_tool("dagster"), *dagster_command], env=env, check=False)
    finally:
        mlflow_ui.terminate()
        mlflow_ui.wait()
