"""What `demandops run` shows while the chain runs: a line per stage as it starts and as it ends (its
time and headline figure), and a progress bar with an estimate for the stages that report progress
(demandops/progress.py). On a terminal the bars are drawn by rich; anywhere else (CI, a file) the same
lines are plain text, and progress is a line at each quarter of a stage's work.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import DagsterEventType
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from demandops.progress import parse_progress
from demandops.settings import Settings, UiSettings
from pipelines.headlines import check_headline, headline
from serving.routes import FORECAST

if TYPE_CHECKING:  # the chain's module, imported by the command only when it runs
    from pipelines.run import ChainSummary

WARNINGS_SHOWN = 3  # per stage; the rest are counted, and all are in the log


class ChainView:
    """Hears a run's log records (pipelines/run_log.py) and draws them on `console`."""

    def __init__(self, console: Console, *, clock: Callable[[], float] = time.monotonic):
        self.console = console
        self.clock = clock
        self.started: dict[str, float] = {}
        self.headlines: dict[str, str] = {}
        self.warnings: dict[str, int] = {}
        self.quarters: dict[str, int] = {}  # plain mode: the last quarter of progress printed
        self.failed_step: str | None = None
        self.bars: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        if console.is_terminal:
            self.bars = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                _DoneAndLeft(),
                console=console,
                transient=True,
                # Leave sys.stdout and sys.stderr alone: they go to the run's log file, and rich would
                # otherwise print what is written to them (Dagster's events) above the bars.
                redirect_stdout=False,
                redirect_stderr=False,
            )

    def __enter__(self) -> ChainView:
        if self.bars is not None:
            self.bars.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.bars is not None:
            self.bars.stop()

    def __call__(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None)
        if not meta or not meta.get("step_key"):
            return
        step, event = meta["step_key"], meta.get("dagster_event")
        if event is None:
            self._message(step, meta.get("orig_message", ""), record.levelno)
            return
        kind = event.event_type
        if kind == DagsterEventType.STEP_START:
            self._start(step)
        elif kind == DagsterEventType.STEP_SUCCESS:
            self._finish(step, f"done in {self._elapsed(step)}", self.headlines.get(step, ""))
        elif kind == DagsterEventType.STEP_FAILURE:
            self.failed_step = step
            self._finish(step, f"FAILED after {self._elapsed(step)}", "")
        elif kind == DagsterEventType.ASSET_MATERIALIZATION and step not in self.headlines:
            materialization = event.event_specific_data.materialization
            self.headlines[step] = headline(materialization.asset_key.path[-1], materialization.metadata)
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            self.headlines[step] = check_headline(event.event_specific_data)

    def line(self, text: str) -> None:
        """One plain line above the bars: never read as rich markup (a stage's figures hold brackets)."""
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _start(self, step: str) -> None:
        self.started[step] = self.clock()
        self.line(f"{_now()}  {step:<40} started")
        if self.bars is not None:
            self.tasks[step] = self.bars.add_task(step, total=None)

    def _finish(self, step: str, outcome: str, figure: str) -> None:
        if self.bars is not None and step in self.tasks:
            self.bars.remove_task(self.tasks.pop(step))
        shown = self.warnings.get(step, 0)
        more = f" ({shown - WARNINGS_SHOWN} more warnings in the log)" if shown > WARNINGS_SHOWN else ""
        self.line(f"{_now()}  {step:<40} {outcome}{': ' + figure if figure else ''}{more}")

    def _message(self, step: str, message: str, level: int) -> None:
        if self.failed_step is not None:  # what follows is Dagster skipping the stages downstream
            return
        progress = parse_progress(message)
        if progress is not None:
            self._progress(step, *progress)
        elif level >= logging.WARNING:
            self.warnings[step] = self.warnings.get(step, 0) + 1
            if self.warnings[step] <= WARNINGS_SHOWN:
                self.line(f"{_now()}  {step:<40} warning: {message}")

    def _progress(self, step: str, done: int, total: int) -> None:
        if self.bars is not None:
            if step in self.tasks:
                self.bars.update(self.tasks[step], completed=done, total=total)
            return
        quarter = 4 * done // total
        if 0 < quarter < 4 and quarter > self.quarters.get(step, 0):
            self.quarters[step] = quarter
            self.line(f"{_now()}  {step:<40} {done}/{total} after {self._elapsed(step)}")

    def _elapsed(self, step: str) -> str:
        return _duration(self.clock() - self.started.get(step, self.clock()))


class _DoneAndLeft(ProgressColumn):
    """'8/30, 1 min 05 s left' once a stage has reported progress; nothing before."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        left = task.time_remaining
        return Text(f"{task.completed:.0f}/{task.total:.0f}" + (f", {_duration(left)} left" if left else ""))


def summary_text(settings: Settings, summary: ChainSummary, log_path: Path | None) -> str:
    """What `demandops run` prints last: what the run made, and where to look at it."""
    ui = settings.ui
    reconciled = f"\n  closed first      {summary.reconciled} (left by interrupted work)" if summary.reconciled else ""
    return f"""
demandops run {summary.run_id} finished.
  dataset version   {summary.dataset_version}  (data.dvc)
  gate              {summary.gate}
  new model         {settings.model.name} v{summary.model_version}: {summary.state} ({summary.frequency} data)
  its Bento         {summary.bento_tag}
  in Production     v{summary.production_version}{reconciled}
Where to look:
  make ui           Dagster UI at http://{ui.host}:{ui.dagster_port} (assets, checks), MLflow UI at {ui.mlflow_url}
  this run          http://{ui.host}:{ui.dagster_port}/runs/{summary.run_id} (with `make ui`)
  make serve        serves the Production Bento at http://127.0.0.1:3000 (Swagger at /)
  curl -s -X POST localhost:3000{FORECAST} -H 'content-type: application/json' \\
       -d '{json.dumps({"items": [summary.example_item]})}'
  demandops lifecycle status | history
  runtime state     {settings.state}""" + (f"\n  full log          {log_path}" if log_path else "")


def failure_text(ui: UiSettings, step: str | None, cause: str, log_path: Path | None, run_id: str | None) -> str:
    """The one short block a failed run ends with: the stage, its own message, and where the rest is."""
    lines = [f"demandops run failed{f' at stage {step}' if step else ''}:"]
    lines += [f"  {line}" for line in cause.strip().splitlines()[:12]]
    if log_path is not None:
        lines.append(f"full log: {log_path}")
    if run_id is not None:
        lines.append(f"the run:  http://{ui.host}:{ui.dagster_port}/runs/{run_id} (open the UI with `make ui`)")
    return "\n".join(lines)


def _now() -> str:
    return time.strftime("%H:%M:%S")


def _duration(seconds: float) -> str:
    """'4.2 s', '3 min 05 s'."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"
