"""Real catalogues at the gate: series launch in many different months and are not bad data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from demandops.contract import partition_dates, partition_path
from demandops.settings import GateSettings
from salesdata.competitions import monthly_competition
from salesdata.datasets import import_sales
from salesdata.gate import GateLedger, gate_periods


def _imported(tmp_path: Path, sales: pd.DataFrame) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "sales.csv"
    sales.assign(date=pd.to_datetime(sales["date"]).dt.strftime("%Y-%m-%d")).to_csv(source, index=False)
    import_sales(tmp_path, tmp_path / "data", source, frequency="M", limits=GateSettings())
    return tmp_path / "data"


def _launching_catalogue() -> pd.DataFrame:
    """8 series from 2018, 24 launched together in 2021-06, and one launched in the last month with 1,500 units."""
    months = pd.date_range("2018-01-01", "2023-12-01", freq="MS")
    rng = np.random.default_rng(3)
    frames = []
    for i in range(32):
        dates = months[months >= (months[0] if i < 8 else pd.Timestamp("2021-06-01"))]
        units = rng.poisson(30.0, len(dates)).astype(float)
        frames.append(pd.DataFrame({"date": dates, "store_id": "S1", "sku_id": f"P{i}", "units_sold": units}))
    frames.append(pd.DataFrame({"date": months[-1:], "store_id": "S1", "sku_id": "NEW", "units_sold": [1500.0]}))
    return pd.concat(frames, ignore_index=True)


def test_a_month_of_launches_is_accepted_and_a_partial_export_is_still_quarantined(tmp_path: Path) -> None:
    data_dir = _imported(tmp_path, _launching_catalogue())
    ledger = GateLedger(tmp_path / "gate")
    days = partition_dates(data_dir)
    result = gate_periods(data_dir, days, ledger, GateSettings())
    # Four times the trailing rows in 2021-06; a first value 1,500 times the smallest reference.
    assert result.quarantined == []
    ledger.record_result(result, dataset_version="v1", run_id="r1")

    late = days[-3]  # a month whose export lost most of its series' rows
    frame = pd.read_parquet(partition_path(data_dir, late))
    frame.head(6).to_parquet(partition_path(data_dir, late), index=False)
    regated = gate_periods(data_dir, [late], ledger, GateSettings())
    assert regated.quarantined == [late.isoformat()]
    [failure] = regated.verdicts[late.isoformat()].failures
    assert failure["column"] == "rows_ratio"


def test_every_tourism_and_m1_month_passes_the_gate(tmp_path: Path) -> None:
    """The competition data is real: no month of it may look like bad data (unequal starts included)."""
    for name in ("tourism", "m1"):
        data = monthly_competition(name)
        data_dir = _imported(tmp_path / name, data.history)
        result = gate_periods(data_dir, partition_dates(data_dir), GateLedger(tmp_path / name / "gate"), GateSettings())
        assert result.quarantined == [], f"{name}: {result.quarantined[:5]}"
