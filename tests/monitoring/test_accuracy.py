"""Live accuracy: logged forecasts beside their actuals, scored per version, horizon step and mover class."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from monitoring.accuracy import accuracy_table, mover_classes, score_forecasts
from monitoring.live_summary import build_summary
from training.metrics import bias, coverage, pinball, wape


def logged(rows: list[tuple]) -> pd.DataFrame:
    columns = ["model_version", "store_id", "sku_id", "step", "p10", "p50", "p90"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["origin_date"] = pd.Timestamp("2024-01-01")
    frame["date"] = frame["origin_date"] + pd.to_timedelta(frame["step"], unit="D")
    return frame


def test_metrics_per_version_step_and_mover_match_the_backtest_s_definitions() -> None:
    forecasts = logged(
        [
            ("1", "S1", "P1", 1, 5.0, 10.0, 15.0),
            ("1", "S1", "P2", 1, 0.0, 1.0, 2.0),
            ("1", "S1", "P1", 2, 5.0, 12.0, 15.0),
            ("2", "S1", "P1", 1, 8.0, 9.0, 10.0),
            ("2", "S9", "P9", 1, 0.0, 4.0, 6.0),  # a series with no trailing history: 'new'
        ]
    )
    sales = pd.DataFrame(
        {
            "store_id": ["S1", "S1", "S1", "S9"],
            "sku_id": ["P1", "P2", "P1", "P9"],
            "date": pd.to_datetime(["2024-01-02", "2024-01-02", "2024-01-03", "2024-01-02"]),
            "units_sold": [11, 0, 20, 5],
        }
    )
    history = pd.DataFrame({"store_id": ["S1"] * 4, "sku_id": ["P1", "P1", "P2", "P2"], "units_sold": [3, 4, 0, 0]})
    scored = score_forecasts(forecasts, sales, mover_classes(history))
    assert dict(zip(scored["sku_id"], scored["mover"], strict=False)) == {
        "P1": "fast",
        "P2": "intermittent",
        "P9": "new",
    }

    table = accuracy_table(scored).set_index(["model_version", "segment_kind", "segment"])
    one = scored[scored["model_version"] == "1"]
    actual, q = one["actual"].to_numpy(), one[["p10", "p50", "p90"]].to_numpy()
    expected = {
        "wape": wape(actual, q[:, 1]),
        "bias": bias(actual, q[:, 1]),
        "coverage": coverage(actual, q[:, 0], q[:, 2]),
        "pinball": np.mean([pinball(actual, q[:, n], level) for n, level in enumerate((0.1, 0.5, 0.9))]),
    }
    for metric, value in expected.items():
        assert math.isclose(table.loc[("1", "all", "all"), metric], value), metric
    assert table.loc[("1", "all", "all"), "rows"] == 3
    step_two = table.loc[("1", "step", "2")]
    assert (step_two["rows"], step_two["wape"]) == (1, abs(20 - 12) / 20)
    assert math.isnan(table.loc[("1", "mover", "intermittent"), "wape"]), "every actual zero: WAPE undefined"
    assert table.loc[("2", "mover", "new"), "rows"] == 1

    summary = build_summary("2024-01-03", accuracy_table(scored), scored)
    assert summary["versions"]["1"]["wape_per_step"] == {"1": abs(11 - 10) / 11 + abs(0 - 1) / 11, "2": 0.4}
    assert summary["versions"]["1"]["wape_per_period"] == {"2024-01-02": 2 / 11, "2024-01-03": 0.4}
    assert summary["periods"] == 2


def test_a_forecast_whose_series_sold_no_row_is_not_scored() -> None:
    forecasts = logged([("1", "S1", "P1", 1, 1.0, 2.0, 3.0)])
    sales = pd.DataFrame(
        {"store_id": ["S2"], "sku_id": ["P1"], "date": pd.to_datetime(["2024-01-02"]), "units_sold": [4]}
    )
    assert score_forecasts(forecasts, sales, mover_classes(sales)).empty
