"""The terminal view of `demandops run` on a real in-process Dagster run: stage lines with their
figures, progress at each quarter, warnings, and the failed stage with its own error."""

import io
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from rich.console import Console

from demandops.errors import DataContractError
from demandops.progress import parse_progress, progress_line
from pipelines.run import ChainFailed, _raise_on_failure
from pipelines.run_log import LOGGERS, TERMINAL_LOGGER, output_to, watching
from pipelines.terminal import ChainView


@dg.asset
def raw_sales(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    for done in range(1, 9):
        context.log.info(progress_line(done, 8, "periods gated"))
    for day in range(1, 6):
        context.log.warning(f"quarantined 2024-01-0{day}: expect_column_values_to_not_be_null(units_sold)")
    return dg.MaterializeResult(metadata={"days": 8, "accepted_days": 3, "quarantined_days": ["2024-01-01"] * 5})


@dg.asset(deps=[raw_sales])
def training_set() -> None:
    raise DataContractError("sales of 3 periods; training needs at least 28 (the horizon and its lags)")


def _run_watched() -> tuple[str, dg.ExecuteInProcessResult]:
    job = dg.Definitions(assets=[raw_sales, training_set], loggers=LOGGERS).resolve_implicit_global_asset_job_def()
    shown = io.StringIO()
    with ChainView(Console(file=shown, width=200)) as view, watching(view):
        result = job.execute_in_process(
            raise_on_error=False,
            # Dagster's own lines are not what is tested here; in `demandops run` they go to the log file.
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}, TERMINAL_LOGGER: {}}},
        )
    return shown.getvalue(), result


def test_the_view_prints_stages_progress_warnings_and_the_failed_stage_in_plain_lines() -> None:
    shown, result = _run_watched()
    lines = [line.split("  ", 1)[1].strip() for line in shown.splitlines()]  # without the clock
    assert lines[0] == "raw_sales                                started"
    assert [line.split()[1] for line in lines[1:4]] == ["2/8", "4/8", "6/8"], "a line per quarter, not per step"
    warnings = [line for line in lines if "warning: quarantined" in line]
    assert len(warnings) == 3, "at most three warnings per stage on the terminal"
    [gated] = [line for line in lines if line.startswith("raw_sales") and " done in " in line]
    assert gated.endswith(": 8 period(s) gated: 3 accepted, 5 quarantined (2 more warnings in the log)")
    assert lines[-2] == "training_set                             started"
    assert lines[-1].startswith("training_set                             FAILED after ")
    assert all(char.isprintable() for char in shown.replace("\n", "")), "no control characters off a terminal"

    with pytest.raises(ChainFailed) as failed:
        _raise_on_failure(result)
    assert failed.value.step == "training_set"
    assert failed.value.cause == "sales of 3 periods; training needs at least 28 (the horizon and its lags)"


def test_the_log_file_takes_what_the_process_and_its_children_write(tmp_path: Path, capfd) -> None:
    log = tmp_path / "logs" / "run.log"
    with output_to(log) as terminal:
        os.write(1, b"from this process\n")  # fd 1 itself: pytest has replaced sys.stdout
        subprocess.run([sys.executable, "-c", "import sys; print('from a child', file=sys.stderr)"], check=True)
        terminal.write("to the terminal\n")
    print("after", flush=True)
    assert log.read_text().splitlines() == ["from this process", "from a child"]
    assert capfd.readouterr().out == "to the terminal\nafter\n"


def test_progress_lines_are_told_from_other_messages() -> None:
    assert parse_progress(progress_line(3, 30, "epoch 3: val_pinball 0.1")) == (3, 30)
    assert parse_progress("[2024/05] not progress") is None
    assert parse_progress("[5/3] more done than there is") is None
    assert parse_progress("epoch 3: val_pinball 0.1") is None
