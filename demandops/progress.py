"""How a long stage reports how far it is: a log line that starts with `[done/total]`.

A stage writes it with its run's logger (Dagster's context.log in the chain, the Pipes context in the
training job's own process), so it lands in the run's event log as any message does, and the terminal
view of `demandops run` (pipelines/terminal.py) draws it as a progress bar with an estimate.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_PROGRESS = re.compile(r"^\[(\d+)/(\d+)\] ")


def progress_line(done: int, total: int, message: str) -> str:
    """'[3/30] epoch 3: ...': `done` of `total` units of the stage's work, then what they are."""
    return f"[{done}/{total}] {message}"


def progress_reporter(log: Callable[[str], object], what: str) -> Callable[[int, int], None]:
    """A `progress(done, total)` callback that logs `[done/total] what` with `log` (e.g. context.log.info)."""

    def report(done: int, total: int) -> None:
        log(progress_line(done, total, what))

    return report


def parse_progress(message: str) -> tuple[int, int] | None:
    """(done, total) of a progress line, or None for any other message."""
    matched = _PROGRESS.match(message)
    if matched is None:
        return None
    done, total = int(matched.group(1)), int(matched.group(2))
    return (done, total) if 0 <= done <= total and total > 0 else None
