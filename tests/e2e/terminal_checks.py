"""What `demandops run` prints off a terminal (CI, a file): a line per stage with its figure, no
Dagster events, the summary last with a log file that holds them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from demandops.settings import Settings

DEMANDOPS = str(Path(sys.executable).with_name("demandops"))
MOST_LINES = 60  # issue 21: a successful run prints fewer


def run_the_command(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    """`demandops run` as a user runs it, its output piped (plain mode)."""
    return subprocess.run(
        [DEMANDOPS, "run", *args], env=settings.child_env(), cwd=settings.project_dir,
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip


def assert_a_plain_successful_run(done: subprocess.CompletedProcess, stages: dict[str, str]) -> Path:
    """`stages`: a stage that ran, and a piece of the figure its end line must show. The run's log file."""
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout + done.stderr
    lines = printed.splitlines()
    assert len(lines) < MOST_LINES, printed
    assert "DEBUG" not in printed and "STEP_START" not in printed, "Dagster's events stay in the log file"
    assert all(char.isprintable() for char in printed.replace("\n", "")), "no control characters off a terminal"
    for stage, figure in stages.items():
        assert re.search(rf"^\d\d:\d\d:\d\d  {stage} +started$", done.stdout, re.M), f"{stage} start:\n{printed}"
        [ended] = re.findall(rf"^\d\d:\d\d:\d\d  {stage} +done in .*$", done.stdout, re.M)
        assert figure in ended, ended
    last_stage_line = max(i for i, line in enumerate(lines) if re.match(r"^\d\d:\d\d:\d\d  ", line))
    finished = next(i for i, line in enumerate(lines) if re.match(r"^demandops run \S+ finished\.$", line))
    assert finished > last_stage_line, "the summary comes last"
    log_line = lines[-1]
    assert log_line.startswith("  full log "), lines[-3:]
    log = Path(log_line.split(maxsplit=2)[2])
    assert "STEP_START" in log.read_text(), "the log file holds Dagster's events"
    return log


def assert_a_plain_failed_run(done: subprocess.CompletedProcess, stage: str, cause: str) -> None:
    """One block on stderr naming the stage and its own message, with a log file that exists."""
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr and "DEBUG" not in done.stdout + done.stderr
    block = done.stderr.strip().splitlines()
    assert block[0] == f"demandops run failed at stage {stage}:", done.stderr
    assert cause in "\n".join(block[1:-2]), done.stderr
    assert block[-2].startswith("full log: ") and Path(block[-2].removeprefix("full log: ")).is_file()
    assert block[-1].startswith("the run:  http://"), block[-1]
    assert re.match(rf"^\d\d:\d\d:\d\d  {stage} +FAILED after ", done.stdout.splitlines()[-1]), done.stdout
