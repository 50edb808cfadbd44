"""Forty real Tourism series through the whole chain as a user runs it: the CLI, defaults but the horizon."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from mlflow import MlflowClient

from bench.real import run_dataset

SERIES = 40


# The chain is four network trainings (served, refit, two window starts): 5.5 minutes alone here, and
# past the default 600 s beside another end-to-end test on CI's 2 cores.
@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_forty_tourism_series_reach_a_decision_with_every_backtest_model_fresh(tmp_path: Path) -> None:
    # The two anchors the test compares with: AutoTheta and DOTM would add their fits and nothing asserted.
    result = run_dataset("tourism", SERIES, keep=tmp_path, names=("SeasonalNaive", "AutoETS"))
    outcome = result["timings"]["outcome"]
    assert outcome == "served" or "Trained -> Validated of version 1 refused by" in outcome, outcome
    assert "Traceback" not in outcome

    # 24 months ahead hide more than a tenth of these series: the served network is refit on every
    # row, and each later backtest window is forecast by a network refit on the rows before it.
    client = MlflowClient(f"sqlite:///{tmp_path / 'tourism' / 'state' / 'mlflow' / 'mlflow.db'}")
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    [run] = client.search_runs(experiments)
    assert run.data.params["refit_on_every_row"] == "True" and run.data.params["backtest_window_models"] == "2"
    assert run.data.metrics["backtest_choice_in_sample"] == 0, "the choice is judged on windows it was not made on"
    assert run.data.params["served_per_group"], "the backtest's choice per group is recorded"
    for metric in ("backtest_window_starts_wape", "backtest_window_starts_network_wape", "backtest_AutoETS_wape"):
        assert math.isfinite(run.data.metrics[metric]), metric

    scores = result["scores"]
    assert scores["AutoETS"]["series_missing"] == 0 and scores["AutoETS"]["mase"] < scores["SeasonalNaive"]["mase"]
    if outcome == "served":  # every series forecast 24 months, and no worse than seasonal naive on the holdout
        assert scores["demandops"]["series_missing"] == 0
        assert scores["demandops"]["mase"] <= scores["SeasonalNaive"]["mase"]
    else:  # refused: the reason names the numbers a person needs
        assert "on the window starts must be <=" in outcome and scores["demandops"]["series_missing"] == SERIES
