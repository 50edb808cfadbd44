"""The live evidence lead-time tables are refitted on (monitoring/lead_time_evidence.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitoring.lead_time_evidence import (
    build_evidence,
    evidence_path,
    live_calibration,
    refitted_rows,
    served_calibration,
    served_path,
    write_evidence,
    write_served,
)
from monitoring.live_summary import summary_path
from serving import metrics
from serving.live_gauges import LiveGauges
from training.lead_time import SERVICE_LEVELS, calibrated_quantiles, calibration
from training.recalibration import served_calibrations

H = 3
DAY0 = pd.Timestamp("2025-03-01")


def _logged(series: list[str], origins: list[int], p50: float, horizon: int = H, version: str = "1") -> pd.DataFrame:
    """read_log's rows: one per forecast and target, flat at `p50` with a p10–p90 of p50 ± 2."""
    rows = [
        {
            "model_version": version,
            "store_id": "S0",
            "sku_id": sku,
            "origin_date": DAY0 + pd.Timedelta(days=o),
            "date": DAY0 + pd.Timedelta(days=o + step),
            "step": step,
            "p10": p50 - 2,
            "p50": p50,
            "p90": p50 + 2,
        }  # fmt: skip
        for sku in series
        for o in origins
        for step in range(1, horizon + 1)
    ]
    return pd.DataFrame(rows)


def _sales(series: list[str], days: range, units) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"store_id": "S0", "sku_id": s, "date": DAY0 + pd.Timedelta(days=d), "units_sold": units}
            for s in series
            for d in days
        ]
    )


def test_evidence_holds_each_lead_time_demand_that_ended_in_the_window_with_every_period_sold() -> None:
    logged = pd.concat([_logged(["A", "B"], [0, 1], p50=5.0), _logged(["C"], [0], p50=5.0, horizon=2)])
    sales = _sales(["A", "B", "C"], range(1, 5), 4.0)
    sales = sales[~((sales["sku_id"] == "B") & (sales["date"] == DAY0 + pd.Timedelta(days=2)))]  # no row for B, day 2
    evidence = build_evidence(logged, sales, period=(DAY0 + pd.Timedelta(days=3)).date().isoformat(), frequency="D",
                              horizon=H, window=2)  # fmt: skip
    assert "C" not in set(evidence["sku_id"]), "a forecast without the whole horizon gives no volume stratum"
    demand = evidence.set_index(["sku_id", evidence["origin_date"].dt.day - 1, "step"])["demand"]
    # Window: lead times ending on days 2 or 3. A from 0: L = 2, 3 (days 2, 3); A from 1: L = 1, 2.
    assert demand["A", 0].tolist() == pytest.approx([np.nan, 8.0, 12.0], nan_ok=True)
    assert demand["A", 1].tolist() == pytest.approx([4.0, 8.0, np.nan], nan_ok=True)
    # B has no row on day 2: no lead time through it counts.
    assert demand["B", 0].isna().all() and demand["B", 1].isna().all()


def _stratified_world(rows: int, seed: int, demand_over_forecast: float) -> tuple[np.ndarray, np.ndarray]:
    """Forecasts (rows, H, 3) at three volumes, and Poisson actuals `demand_over_forecast` times the p50."""
    rng = np.random.default_rng(seed)
    level = np.repeat([1.0, 5.0, 25.0], rows // 3)
    median = np.repeat(level[:, None], H, axis=1)
    sd = np.sqrt(median)
    forecast = np.stack([np.maximum(median - 1.28 * sd, 0), median, median + 1.28 * sd], axis=-1)
    return forecast, rng.poisson(median * demand_over_forecast).astype("float64")


def _evidence(forecast: np.ndarray, actual: np.ndarray, version: str) -> pd.DataFrame:
    """Evidence rows of one origin, one series per row of `forecast`, every lead-time demand known."""
    rows, horizon = forecast.shape[:2]
    return pd.DataFrame(
        {
            "model_version": version,
            "store_id": "S0",
            "sku_id": np.repeat(np.arange(rows).astype(str), horizon),
            "origin_date": DAY0,
            "step": np.tile(np.arange(1, horizon + 1), rows),
            "p10": forecast[..., 0].ravel(),
            "p50": forecast[..., 1].ravel(),
            "p90": forecast[..., 2].ravel(),
            "units": actual.ravel(),
            "demand": np.cumsum(actual, axis=1).ravel(),
            "origin_period": 0,
            "scored_period": horizon,  # every step known, and within the window
            "window": horizon,
        }  # fmt: skip
    )


def test_a_version_is_refitted_on_its_own_evidence_and_its_reorder_points_follow_demand(tmp_path: Path) -> None:
    kept = calibration(*_stratified_world(3_000, 0, 1.0))
    forecast, actual = _stratified_world(3_000, 1, 1.4)  # demand now 40% above the forecast
    evidence = _evidence(forecast, actual, version="2")
    assert served_calibration(evidence, "1", kept, H) is None, "version 1 has no evidence of its own"
    refitted = served_calibration(evidence, "2", kept, H)
    assert refitted_rows(refitted) == 3 * len(forecast)
    column = SERVICE_LEVELS.index(0.95)
    before, after = calibrated_quantiles(forecast, kept), calibrated_quantiles(forecast, refitted)
    covered = [(np.cumsum(actual, 1)[:, -1] <= np.floor(q[:, -1, column])).mean() for q in (before, after)]
    assert covered[0] < 0.8 and covered[1] > 0.93, covered
    # What the loop writes is what the service and the plan read; nothing written, nothing read.
    assert live_calibration(tmp_path, "2", H) is None
    write_served(tmp_path, "2", refitted, H)
    assert live_calibration(tmp_path, "2", H) == refitted and live_calibration(tmp_path, "1", H) is None
    assert live_calibration(tmp_path, "2", H + 4) is None, "computed over 3 steps, served over 7"
    write_served(tmp_path, "2", None, H)  # no evidence any more: the bundle's tables again
    assert live_calibration(tmp_path, "2", H) is None


def test_the_served_calibration_is_read_from_the_evidence_as_the_backtest_reads_it(tmp_path: Path) -> None:
    """Forecasts logged over 12 days for 600 series, demand outgrowing them: the file the loop writes
    gives the calibration the backtest measures (served_calibrations at the scored day), raised on
    the record above the refit alone."""
    rng = np.random.default_rng(3)
    series = [f"P{n}" for n in range(600)]
    level = pd.Series(rng.gamma(2.0, 4.0, len(series)), index=series)
    logged = _logged(series, list(range(12)), p50=0.0).assign(p50=lambda d: d["sku_id"].map(level))
    logged = logged.assign(p10=np.maximum(logged["p50"] - 1.28 * np.sqrt(logged["p50"]), 0),
                           p90=logged["p50"] + 1.28 * np.sqrt(logged["p50"]))  # fmt: skip
    sales = _sales(series, range(1, 13), 0.0)
    growth = 1.0 + 0.05 * (sales["date"] - DAY0).dt.days  # demand outgrows the forecast: refits lag behind
    sales["units_sold"] = rng.poisson(growth * sales["sku_id"].map(level)).astype("float64")
    day = (DAY0 + pd.Timedelta(days=12)).date().isoformat()
    evidence = build_evidence(logged, sales, period=day, frequency="D", horizon=H, window=4)
    write_evidence(tmp_path, evidence)
    val_forecast = np.repeat(level.to_numpy()[:, None], H, axis=1)
    val_forecast = np.stack([np.maximum(val_forecast - 1.28 * np.sqrt(val_forecast), 0), val_forecast,
                             val_forecast + 1.28 * np.sqrt(val_forecast)], axis=-1)  # fmt: skip
    kept = calibration(val_forecast, rng.poisson(val_forecast[..., 1]).astype("float64"))
    served = served_calibration(pd.read_parquet(evidence_path(tmp_path)), "1", kept, H)  # as the loop reads it
    rows = evidence.sort_values(["sku_id", "origin_date", "step"])  # any order of rows: one per forecast and step
    forecast = rows[["p10", "p50", "p90"]].to_numpy().reshape(-1, H, 3)
    actual, origins = rows["units"].to_numpy().reshape(-1, H), rows["origin_period"].to_numpy()[::H]
    assert np.isnan(actual[origins == origins.max()][:, 1:]).all(), "the last origin's later days are not known yet"
    _, expected = next(served_calibrations(forecast, actual, origins, kept, 4, [int(rows["scored_period"].iloc[0])]))
    np.testing.assert_allclose(served["tables"], expected["tables"])
    refit_only = next(served_calibrations(forecast, actual, origins, kept, 4, [origins.max() + 1], read_record=False))
    raised = np.subtract(served["tables"], refit_only[1]["tables"])
    assert (raised >= -1e-9).all() and raised.mean() > 0.1, raised.mean()


def test_the_service_refits_its_tables_each_time_the_loop_scores_a_period(tmp_path: Path) -> None:
    path = summary_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"period": "2025-03-01", "periods": 1, "versions": {}, "service": {}}))
    calls: list[Path] = []
    gauges = LiveGauges(tmp_path, recalibrate=lambda lake: calls.append(lake) or 1234)
    assert gauges.refresh() and calls == [tmp_path]
    assert metrics.LEAD_TIME_REFITTED._value.get() == 1234
    assert not gauges.refresh() and calls == [tmp_path], "an unchanged summary refits nothing"


def test_unreadable_or_foreign_evidence_leaves_the_tables_as_they_were(tmp_path: Path, caplog) -> None:
    kept = calibration(*_stratified_world(3_000, 0, 1.0))
    forecast, actual = _stratified_world(30, 1, 1.0)
    evidence = _evidence(forecast, actual, version="1")
    assert served_calibration(evidence, "1", kept, H + 4) is None, "logged over 3 steps, the bundle's 7"
    write_served(tmp_path, "1", served_calibration(evidence, "1", kept, H), H)
    served_path(tmp_path, "1").write_text('{"model_version": "1", "horizon": 3, "calibra')  # cut short
    with pytest.raises(ValueError):
        live_calibration(tmp_path, "1", H)
    # The service's refresh says so and keeps answering with the tables it has.
    path = summary_path(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"period": "2025-03-01", "periods": 1, "versions": {}, "service": {}}))
    gauges = LiveGauges(tmp_path, recalibrate=lambda lake: live_calibration(lake, "1", H) and 1)
    assert gauges.refresh()
    assert "lead-time tables not refitted" in caplog.text and "served" in caplog.text
