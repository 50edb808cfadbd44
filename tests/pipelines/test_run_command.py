"""`demandops run` failing in a stage, as a user meets it off a terminal: one short block naming the
stage and the stage's own message, the log file's path and the run's page; no traceback, exit 1."""

from pathlib import Path

import pandas as pd

from demandops.settings import Settings
from tests.e2e.terminal_checks import assert_a_plain_failed_run, run_the_command


def test_a_failed_stage_is_one_block_naming_the_stage_and_its_cause(project_with_data: Settings) -> None:
    settings = project_with_data
    # A SKU master file that lost its key column: readable Parquet, so nothing notices it before the gate.
    skus = settings.data / "skus.parquet"
    pd.read_parquet(skus).drop(columns=["sku_id"]).to_parquet(skus)
    failed = run_the_command(settings)
    assert_a_plain_failed_run(failed, "raw_sales", f"master file {skus} lacks the column 'sku_id'")
    log = Path(failed.stderr.strip().splitlines()[-2].removeprefix("full log: "))
    assert "STEP_FAILURE" in log.read_text(), "the log file holds Dagster's account of the failure"
