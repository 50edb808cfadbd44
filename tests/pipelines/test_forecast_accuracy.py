"""forecast_accuracy: the forecasts logged for a gated period scored against its sales, in a rolling window."""

from __future__ import annotations

import json
from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pytest

from demandops.contract import partition_dates, read_sales
from demandops.settings import Settings
from monitoring.decision_log import decision_log_dir
from monitoring.lead_time_evidence import evidence_path
from monitoring.live_summary import read_summary
from monitoring.prediction_log import PredictionLog, log_dir
from pipelines.assets.monitoring import forecast_accuracy
from pipelines.lake import RAW_SALES, Lake
from pipelines.live_accuracy import FORECAST_ACCURACY, LEAD_TIME_SERVICE
from pipelines.partitions import SALES_PERIODS
from pipelines.resources import DemandopsResource

SERIES = [("S000", "P0001"), ("S001", "P0002"), ("S002", "P0003")]


def served(origin: date, p50: float, horizon: int = 3) -> bytes:
    """An answer of /forecast from `origin`, flat at `p50`, as the service sends it."""
    return json.dumps(
        [
            {
                "store_id": store,
                "sku_id": sku,
                "origin_date": origin.isoformat(),
                "model_version": "1",
                "degraded": False,
                "forecast": [
                    {"date": (origin + timedelta(days=h)).isoformat(), "p10": 0.0, "p50": p50, "p90": 2 * p50}
                    for h in range(1, horizon + 1)
                ],
            }
            for store, sku in SERIES
        ]
    ).encode()


def decided(origin: date, lead_time: int, reorder_points: list[int]) -> bytes:
    """An answer of /replenishment from `origin` for SERIES, as the service sends it."""
    items = [
        {
            "store_id": store,
            "sku_id": sku,
            "origin_date": origin.isoformat(),
            "model_version": "1",
            "degraded": False,
            "lead_time": lead_time,
            "review_period": 1,
            "service_level": 0.95,
            "expected_demand": 1.0,
            "reorder_point": point,
            "order_up_to": point,
            "safety_stock": 0.0,
            "suggested_order": None,
            "stockout_probability": None,
        }  # fmt: skip
        for (store, sku), point in zip(SERIES, reorder_points, strict=True)
    ]
    return json.dumps(items).encode()


@pytest.mark.slow
def test_each_gated_period_scores_the_forecasts_logged_for_it(project_with_data: Settings) -> None:
    settings = project_with_data
    days = partition_dates(settings.data)[-40:]
    lake = Lake(settings.lake_dir)
    lake.write_partitions([RAW_SALES], {d.isoformat(): read_sales(settings.data, [d]) for d in days})
    origin = days[-3]
    log = PredictionLog(log_dir(settings), capacity_bytes=1_000_000, flush_interval_s=60)
    log.record("r1", served(origin, p50=4.0, horizon=settings.cadence("D").horizon))  # whole: lead-time evidence
    log.close()
    sales = read_sales(settings.data, days[-2:]).set_index(["store_id", "sku_id", "date"])["units_sold"]
    over_two = [sum(sales[(s, k, pd.Timestamp(d))] for d in days[-2:]) for s, k in SERIES]
    # Reorder points over two days: the first series' demand exactly (kept), the others' a unit short.
    decisions = PredictionLog(decision_log_dir(settings), capacity_bytes=1_000_000, flush_interval_s=60)
    decisions.record("d1", decided(origin, 2, [int(over_two[0]), int(over_two[1]) - 1, int(over_two[2]) - 1]))
    decisions.record("d2", decided(origin, 3, [0, 0, 0]))  # its third period is not gated yet
    decisions.close()

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(SALES_PERIODS.name, [d.isoformat() for d in days])
    resources = {"demandops": DemandopsResource.from_settings(settings)}
    for day in days[-2:]:
        result = dg.materialize(
            [forecast_accuracy], partition_key=day.isoformat(), instance=instance, resources=resources
        )
        assert result.success

    actual = [sales[(s, k, pd.Timestamp(d))] for d in days[-2:] for s, k in SERIES]
    summary = read_summary(settings.lake_dir)
    live = summary["versions"]["1"]
    assert (summary["period"], summary["periods"], live["rows"]) == (days[-1].isoformat(), 2, 6)
    assert live["wape"] == pytest.approx(sum(abs(a - 4.0) for a in actual) / sum(actual))
    assert set(live["wape_per_step"]) == {"1", "2"}, "origin + 1 and + 2 were gated; + 3 not yet"
    assert sorted(p.stem for p in lake.asset_dir([FORECAST_ACCURACY]).glob("*.parquet")) == [
        d.isoformat() for d in days[-2:]
    ]
    metadata = result.asset_materializations_for_node("forecast_accuracy")[0].metadata
    assert metadata["scored_forecasts"].value == 3 and metadata["window_periods"].value == 2
    # The reorder points of two days were scored in the second day, when their lead time ended.
    assert summary["service"] == {
        "1": [{"lead_time": 2, "service_level": 0.95, "decisions": 3, "achieved": pytest.approx(1 / 3)}]
    }
    assert [p.stem for p in lake.asset_dir(LEAD_TIME_SERVICE).glob("*.parquet")] == [days[-1].isoformat()]
    assert metadata["scored_decisions"].value == 3 and "0.3333" in metadata["lead_time_service"].value
    assert "data:image/png;base64," in metadata["live_vs_backtest_plot"].value
    # The forecast's lead times of one and two days have ended: evidence to refit reorder points on.
    evidence = pd.read_parquet(evidence_path(settings.lake_dir)).dropna(subset=["demand"])
    assert metadata["lead_time_evidence"].value == 6 == len(evidence)
    assert sorted(evidence.loc[evidence["step"] == 2, "demand"]) == sorted(over_two)


@pytest.mark.slow
def test_a_period_nobody_was_forecast_for_scores_nothing(project_with_data: Settings) -> None:
    settings = project_with_data
    day = partition_dates(settings.data)[-1]
    Lake(settings.lake_dir).write_partitions([RAW_SALES], {day.isoformat(): read_sales(settings.data, [day])})
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(SALES_PERIODS.name, [day.isoformat()])
    resources = {"demandops": DemandopsResource.from_settings(settings)}
    result = dg.materialize([forecast_accuracy], partition_key=day.isoformat(), instance=instance, resources=resources)
    assert result.success
    assert read_summary(settings.lake_dir) == {"period": day.isoformat(), "periods": 0, "versions": {}, "service": {}}
