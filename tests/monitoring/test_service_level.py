"""The decision log and the live cycle service: reorder points served by /replenishment, logged as the
forecasts are, scored against the demand of their lead time once every period of it is gated."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from monitoring.decision_log import frame_decisions, read_decisions
from monitoring.decisions import ServiceRule, service_reason
from monitoring.prediction_log import SPOOL, PredictionLog, write_rows
from monitoring.service_level import score_decisions, service_table, window_end_ordinals

ORIGIN = date(2024, 3, 31)


def decision(store: str, sku: str, *, lead_time: int, reorder_point: int, level: float = 0.95, version: str = "3"):
    """One item of a /replenishment answer as the service sends it (serving/schemas.py, ReplenishmentResult)."""
    return {
        "store_id": store,
        "sku_id": sku,
        "origin_date": ORIGIN.isoformat(),
        "model_version": version,
        "degraded": False,
        "lead_time": lead_time,
        "review_period": 1,
        "service_level": level,
        "expected_demand": 10.0,
        "reorder_point": reorder_point,
        "order_up_to": reorder_point + 5,
        "safety_stock": reorder_point - 10.0,
        "suggested_order": None,
        "stockout_probability": None,
    }


def logged(tmp_path: Path, *answers: list[dict]) -> pd.DataFrame:
    log = PredictionLog(tmp_path, capacity_bytes=1_000_000, flush_interval_s=60)
    for n, items in enumerate(answers):
        assert log.record(f"r{n}", json.dumps(items).encode())
    log.close()
    return read_decisions(tmp_path, first_origin=ORIGIN, last_origin=ORIGIN)


def sales(units: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """Daily sales rows from the day after ORIGIN, one per series and day given."""
    rows = [
        {"store_id": s, "sku_id": k, "date": pd.Timestamp(ORIGIN + timedelta(days=d + 1)), "units_sold": u}
        for (s, k), values in units.items()
        for d, u in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_answers_are_logged_once_per_promise_and_read_back(tmp_path: Path) -> None:
    first = [decision("S1", "P1", lead_time=2, reorder_point=7), decision("S1", "P2", lead_time=2, reorder_point=9)]
    retried = [decision("S1", "P1", lead_time=2, reorder_point=8)]  # asked again later: the first one counts
    other_level = [decision("S1", "P1", lead_time=2, reorder_point=12, level=0.99)]
    rows = logged(tmp_path, first, retried, other_level)
    assert len(rows) == 3 and not list((tmp_path / SPOOL).glob("*.jsonl")), "compacted, one row per promise"
    kept = rows.set_index(["sku_id", "service_level"])["reorder_point"]
    assert (kept[("P1", 0.95)], kept[("P2", 0.95)], kept[("P1", 0.99)]) == (7, 9, 12)
    assert rows["origin_date"].dt.date.eq(ORIGIN).all() and rows["lead_time"].eq(2).all()
    later = ORIGIN + timedelta(days=1)
    assert read_decisions(tmp_path, first_origin=later, last_origin=later + timedelta(days=9)).empty


def test_a_nightly_plan_is_logged_as_the_endpoint_answers_are(tmp_path: Path) -> None:
    plan = pd.DataFrame(
        [decision("S1", "P1", lead_time=3, reorder_point=4), decision("S2", "P1", lead_time=1, reorder_point=0)]
    )
    plan["origin_date"] = pd.to_datetime(plan["origin_date"])  # as serving/nightly_plan.py holds it
    assert write_rows(tmp_path, frame_decisions("plan-1", plan), "plan-1") == 2
    rows = read_decisions(tmp_path, first_origin=ORIGIN, last_origin=ORIGIN)
    assert rows[["store_id", "lead_time", "reorder_point"]].values.tolist() == [["S1", 3, 4], ["S2", 1, 0]]
    assert set(rows["request_id"]) == {"plan-1"} and rows["logged_at"].notna().all()


def test_a_spool_file_of_something_else_is_set_aside(tmp_path: Path) -> None:
    forecast = [{"store_id": "S1", "sku_id": "P1", "origin_date": ORIGIN.isoformat(), "forecast": []}]
    assert logged(tmp_path, forecast).empty
    assert len(list((tmp_path / SPOOL).glob("*.corrupt"))) == 1, "named in the log and kept for a person to look at"


def test_a_decision_is_scored_on_the_demand_of_its_whole_lead_time(tmp_path: Path) -> None:
    rows = logged(
        tmp_path,
        [
            decision("S1", "P1", lead_time=2, reorder_point=7),  # demand 3 + 4 = 7: covered (at or below)
            decision("S1", "P2", lead_time=2, reorder_point=6),  # 3 + 4: not covered
            decision("S1", "P3", lead_time=2, reorder_point=50),  # a day without a row: not scored
            decision("S1", "P4", lead_time=3, reorder_point=1),  # its third day is not in these sales yet
        ],
    )
    sold = sales({("S1", "P1"): [3, 4], ("S1", "P2"): [3, 4], ("S1", "P3"): [1], ("S1", "P4"): [0, 0]})
    scored = score_decisions(rows, sold, "D")
    assert scored.set_index("sku_id")[["demand", "covered"]].to_dict("index") == {
        "P1": {"demand": 7.0, "covered": True},
        "P2": {"demand": 7.0, "covered": False},
    }
    ends = window_end_ordinals(rows, "D")
    assert list(ends - ends.min()) == [0, 0, 0, 1], "a lead time of 2 ends a period before one of 3"


def test_weekly_lead_times_add_up_whole_weeks() -> None:
    monday = pd.Timestamp("2024-04-01")
    decisions = pd.DataFrame(
        {
            "model_version": ["1"],
            "store_id": ["S1"],
            "sku_id": ["P1"],
            "origin_date": [monday],
            "lead_time": [2],
            "service_level": [0.9],
            "reorder_point": [30],
        }
    )
    weeks = pd.DataFrame(
        {
            "store_id": "S1",
            "sku_id": "P1",
            "date": [monday + pd.Timedelta(weeks=w) for w in (1, 2, 3)],
            "units_sold": [10.0, 25.0, 1000.0],
        }
    )
    [row] = score_decisions(decisions, weeks, "W").itertuples()
    assert (row.demand, row.covered) == (35.0, False), "the two weeks after the origin's, not the third"


def test_the_service_table_and_the_retraining_reason() -> None:
    scored = pd.DataFrame(
        {
            "model_version": ["3"] * 10 + ["4"] * 4,
            "lead_time": [7] * 10 + [7] * 4,
            "service_level": [0.95] * 14,
            "covered": [True] * 8 + [False] * 2 + [True] * 4,
        }
    )
    table = service_table(scored).set_index("model_version")
    assert table.loc["3", "decisions"] == 10 and table.loc["3", "achieved"] == pytest.approx(0.8)
    assert table.loc["3", "shortfall"] == pytest.approx(0.15) and table.loc["4", "shortfall"] == pytest.approx(-0.05)

    rows = [{"lead_time": 7, "service_level": 0.95, "decisions": 600, "achieved": 0.91}]
    reason = service_reason("3", rows, ServiceRule(shortfall=0.03, decisions=500))
    assert reason is not None and "version 3" in reason and "L=7 at 0.95: 0.910 over 600 decisions" in reason
    assert service_reason("3", rows, ServiceRule(shortfall=0.05, decisions=500)) is None, "within the shortfall"
    assert service_reason("3", rows, ServiceRule(shortfall=0.03, decisions=1000)) is None, "too few decisions"
    assert service_reason("3", [], ServiceRule(shortfall=0.03, decisions=1)) is None, "nothing scored yet"
