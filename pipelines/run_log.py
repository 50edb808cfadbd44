"""Where the events of an in-process run go: Dagster's own lines to a log file, and every event to the
terminal view of `demandops run` (pipelines/terminal.py) when one watches.

The view hears the run through a Dagster logger (`terminal`), declared with the code location's
definitions so that a run launched with it can be re-executed from the UI, where it does nothing.
Everything else a run writes, Dagster's console logger included, and the output of the processes it
starts (the training job, DVC, Feast, MLflow's progress bars, `bentoml build`), goes to the file:
the process's stdout and stderr are pointed at it for the run's length (`output_to`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import dagster as dg

TERMINAL_LOGGER = "terminal"
# Dagster's console logger (into the log file, or the terminal with --verbose) and the view's.
RUN_LOGGERS = {"console": {"config": {"log_level": "DEBUG"}}, TERMINAL_LOGGER: {}}

Watcher = Callable[[logging.LogRecord], object]
_watchers: list[Watcher] = []


class _ToWatchers(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        for watcher in list(_watchers):
            watcher(record)


@dg.logger(description="Hands each event to the terminal view of `demandops run` in this process, if any.")
def terminal_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger(f"demandops.terminal.{init_context.run_id}", logging.DEBUG)
    logger.addHandler(_ToWatchers())
    return logger


LOGGERS = {"console": dg.colored_console_logger, TERMINAL_LOGGER: terminal_logger}


@contextmanager
def watching(watcher: Watcher) -> Iterator[None]:
    """`watcher` hears every event of the runs this process executes meanwhile."""
    _watchers.append(watcher)
    try:
        yield
    finally:
        _watchers.remove(watcher)


@contextmanager
def output_to(log_path: Path) -> Iterator[TextIO]:
    """Point this process's stdout and stderr, and so those of the processes it starts, at `log_path`
    (appended); yields a stream to the terminal they pointed at before."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved[0]), "w", buffering=1, encoding="utf-8", errors="replace")
    with log_path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield terminal
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        terminal.flush()
        for fd, original in zip((1, 2), saved, strict=True):
            os.dup2(original, fd)
            os.close(original)
        terminal.close()
