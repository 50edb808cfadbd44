"""What the end-to-end test asks of POST /replenishment, its typed client and `demandops plan`, on the
served Bento of the small preset."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import date
from pathlib import Path

import httpx
import pandas as pd
import pytest
from pydantic import ValidationError

from demandops.settings import Settings
from monitoring.decision_log import decision_log_dir, read_decisions
from serving.client import ForecastClient, ForecastRequestError
from tests.e2e.serving_checks import ERROR_KEYS, _metric, _refused

ITEM = {"store_id": "S000", "sku_id": "P0001", "lead_time": 7}


def assert_replenishment_answers_as_the_forecast_does(url: str, horizon: int) -> dict:
    """Decisions per item in order, in whole units, consistent with each other and with /forecast's
    p50s; a higher service level never asks for less stock. Returns the answer to ITEM."""
    items = [
        {**ITEM, "service_level": 0.9, "on_hand": 0},
        {**ITEM, "service_level": 0.98, "on_hand": 0, "on_order": 3},
        {"store_id": "S002", "sku_id": "P0004", "lead_time": 1, "review_period": 6, "on_hand": 10_000},
        ITEM,
    ]
    reply = httpx.post(f"{url}/v1/replenishment", json={"items": items}, timeout=60)
    assert reply.status_code == 200, reply.text
    low, high, stocked, plain = reply.json()
    assert [(a["store_id"], a["lead_time"], a["review_period"]) for a in reply.json()] == [
        ("S000", 7, 1), ("S000", 7, 1), ("S002", 1, 6), ("S000", 7, 1),
    ]  # fmt: skip
    for answer in (low, high, stocked, plain):
        assert answer["degraded"] is False and isinstance(answer["reorder_point"], int)
        assert 0 <= answer["reorder_point"] <= answer["order_up_to"]
        assert answer["safety_stock"] == pytest.approx(answer["reorder_point"] - answer["expected_demand"], abs=2e-3)
    assert low["reorder_point"] <= plain["reorder_point"] <= high["reorder_point"] and plain["service_level"] == 0.95
    assert high["suggested_order"] == max(0, high["order_up_to"] - 3)
    assert stocked["suggested_order"] == 0 and stocked["stockout_probability"] < 1e-3, "10,000 units cover a day"
    # Nothing on hand, below a reorder point of a unit or more: more likely than the level allows.
    assert low["reorder_point"] == 0 or 1 - 0.9 < low["stockout_probability"] <= 1
    assert plain["suggested_order"] is None and plain["stockout_probability"] is None, "no position, no order"

    same_series = {"store_id": ITEM["store_id"], "sku_id": ITEM["sku_id"], "horizon": horizon}
    [series] = httpx.post(f"{url}/v1/forecast", json={"items": [same_series]}, timeout=60).json()
    assert series["origin_date"] == plain["origin_date"] and series["model_version"] == plain["model_version"]
    seven_days = sum(step["p50"] for step in series["forecast"][:7])
    assert plain["expected_demand"] == pytest.approx(seven_days, abs=2e-3), "the same p50s as /forecast"
    return plain


def assert_served_decisions_are_logged(settings: Settings, planned: dict) -> None:
    """Every reorder point answered is in the decision log once the service has stopped, one per promise
    (series, origin, lead time and level), as it was sent; refusals are not."""
    origin = date.fromisoformat(planned["origin_date"])
    logged = read_decisions(decision_log_dir(settings), first_origin=origin, last_origin=origin)
    promises = {(r.store_id, r.sku_id, r.lead_time, r.service_level) for r in logged.itertuples()}
    assert {("S000", "P0001", 7, 0.9), ("S000", "P0001", 7, 0.95), ("S000", "P0001", 7, 0.98)} <= promises
    assert ("S002", "P0004", 1, 0.95) in promises and len(promises) == len(logged)
    mine = logged[(logged["sku_id"] == "P0001") & (logged["service_level"] == 0.95) & (logged["lead_time"] == 7)]
    assert mine["reorder_point"].tolist() == [planned["reorder_point"]]
    assert mine["model_version"].tolist() == [planned["model_version"]]
    assert "NOPE" not in set(logged["sku_id"]) and logged["lead_time"].max() <= planned["lead_time"], "no refusal"


def assert_every_replenishment_refusal_names_its_field(url: str, horizon: int) -> None:
    post = httpx.Client(base_url=url, timeout=60).post
    beyond = _refused(
        post("/v1/replenishment", json={"items": [{**ITEM, "lead_time": horizon}]}), 422, "invalid_request"
    )
    assert beyond["details"][0]["field"] == "items[0].lead_time" and f"horizon of {horizon}" in beyond["message"]
    for bad, field in [
        ({**ITEM, "service_level": 0.4}, "items[1].service_level"),
        ({**ITEM, "service_level": 0.9995}, "items[1].service_level"),
        ({**ITEM, "on_hand": -1}, "items[1].on_hand"),
        ({**ITEM, "on_hand": 2, "on_order": -5}, "items[1].on_order"),
        ({**ITEM, "on_hand": 2.5}, "items[1].on_hand"),
        ({**ITEM, "lead_time": 0}, "items[1].lead_time"),
        ({**ITEM, "review_period": 0}, "items[1].review_period"),
        ({**ITEM, "planned_promo": [True]}, "items[1]"),
        ({"store_id": "S000", "sku_id": "P0001"}, "items[1].lead_time"),
    ]:
        error = _refused(post("/v1/replenishment", json={"items": [ITEM, bad]}), 422, "invalid_request")
        assert any(d["field"] == field for d in error["details"]), (bad, error)
    unknown = _refused(post("/v1/replenishment", json={"items": [{**ITEM, "sku_id": "NOPE"}]}), 404, "unknown_series")
    assert unknown["details"] == [{"id": "sku NOPE"}]
    not_json = post("/v1/replenishment", content=b'{"items": [', headers={"content-type": "application/json"})
    _refused(not_json, 400, "malformed_json")
    _refused(post("/v1/replenishment", json={"items": [ITEM] * 1001}), 413, "too_large")
    not_allowed = _refused(httpx.get(f"{url}/v1/replenishment"), 405, "method_not_allowed")
    assert set(not_allowed) == ERROR_KEYS
    for code in ("invalid_request", "unknown_series", "malformed_json", "too_large"):
        assert _metric(url, f'demandops_replenishment_refusals_total{{code="{code}"}}') > 0, code
    assert "/v1/replenishment" in httpx.get(f"{url}/docs.json").json()["paths"], "in the service's contract"


def assert_the_typed_client_plans(url: str, version: str) -> None:
    with ForecastClient(url) as client:
        [planned] = client.replenishment([{**ITEM, "on_hand": 4, "on_order": 1}])
        assert planned.model_version == version and planned.suggested_order == max(0, planned.order_up_to - 5)
        with pytest.raises(ForecastRequestError) as refused:
            client.replenishment([{**ITEM, "lead_time": 90}])
        assert refused.value.status_code == 422 and refused.value.details[0]["field"] == "items[0].lead_time"
        with pytest.raises(ValidationError, match="service_level"):  # checked before anything is sent
            client.replenishment([{**ITEM, "service_level": 1.0}])


def assert_the_nightly_plan_covers_every_series(
    settings: Settings, tmp_path: Path, served: dict, model_series: set[tuple[str, str]]
) -> None:
    """`demandops plan` answers every series as the endpoint does; an items file sets series' own values;
    what it cannot plan is refused naming it, with nothing written."""
    items = tmp_path / "items.csv"
    pd.DataFrame(
        {"store_id": ["S000", "S001"], "sku_id": ["P0001", "P0002"], "lead_time": [7, 3], "on_hand": [None, 5]}
    ).to_csv(items, index=False)
    output = tmp_path / "plan.csv"
    done = _plan(settings, "--output", str(output), "--lead-time", "2", "--items", str(items))
    assert done.returncode == 0, done.stderr[-3000:]
    plan = pd.read_csv(output)
    assert set(zip(plan["store_id"], plan["sku_id"], strict=True)) == model_series and len(plan) == len(model_series)
    by_series = plan.set_index(["store_id", "sku_id"])
    assert (plan["lead_time"].value_counts().to_dict()) == {2: len(plan) - 2, 7: 1, 3: 1}
    one = by_series.loc[(ITEM["store_id"], ITEM["sku_id"])]
    for column in ("reorder_point", "order_up_to", "expected_demand", "safety_stock"):
        assert one[column] == pytest.approx(served[column], abs=2e-3), column  # the endpoint's answer
    positioned = by_series.loc[("S001", "P0002")]
    assert positioned["suggested_order"] == max(0, positioned["order_up_to"] - 5)
    assert (positioned["on_hand"], positioned["on_order"]) == (5, 0), "the file shows the position it planned from"
    assert math.isnan(one["on_hand"]) and one["on_order"] == 0
    assert not math.isnan(positioned["stockout_probability"]) and math.isnan(one["stockout_probability"])
    origin = date.fromisoformat(served["origin_date"])
    logged = read_decisions(decision_log_dir(settings), first_origin=origin, last_origin=origin)
    nightly = logged[logged["request_id"].str.startswith("plan-")]
    # Each promise counts once: the endpoint made the file's one for ITEM (7 periods at 0.95) before it.
    assert nightly["lead_time"].value_counts().to_dict() == {2: len(plan) - 2, 3: 1}

    too_long = _plan(settings, "--output", str(tmp_path / "never.csv"), "--lead-time", "14")
    assert too_long.returncode == 1 and "lead_time + review_period 15 exceeds" in too_long.stderr, too_long.stderr
    items.write_text("store_id,sku_id,lead_time\nS000,P0001,-2\n")
    bad_row = _plan(settings, "--output", str(tmp_path / "never.csv"), "--items", str(items))
    assert bad_row.returncode == 1 and "row 2 of the items file" in bad_row.stderr and "lead_time" in bad_row.stderr
    assert "Traceback" not in too_long.stderr + bad_row.stderr and not (tmp_path / "never.csv").exists()


def _plan(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("demandops")), "plan", *args]
    return subprocess.run(command, env=settings.child_env(), capture_output=True, text=True, timeout=600)
