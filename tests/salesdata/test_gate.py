"""Bad input at the gate: each case is quarantined with a report naming what was wrong; other days pass."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from demandops.contract import partition_dates, partition_path
from demandops.settings import GateSettings
from salesdata.datasets import _write
from salesdata.gate import UNREADABLE, GateLedger, gate_periods
from salesdata.simulator import Preset, simulate

# Enough rows per category and day for the profile bounds to mean something.
PRESET = Preset(
    n_stores=6, n_skus=12, n_days=50, slow_mover_share=0.0, launch_share=0.0, discontinue_share=0.0, closure_rate=0.0
)
GATE = GateSettings(min_category_rows=10)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    _write(simulate(PRESET), tmp_path / "data", PRESET)
    return tmp_path / "data"


def gate(data_dir: Path, ledger: GateLedger | None = None):
    ledger = ledger or GateLedger(data_dir.parent / "gate")
    return gate_periods(data_dir, partition_dates(data_dir), ledger, GATE)


def rewrite(data_dir: Path, day: date, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    path = partition_path(data_dir, day)
    change(pd.read_parquet(path)).to_parquet(path, index=False)


def test_clean_data_passes_every_day(data_dir: Path) -> None:
    result = gate(data_dir)
    assert result.quarantined == [] and len(result.accepted) == len(partition_dates(data_dir))


def _negative(f: pd.DataFrame) -> pd.DataFrame:
    return f.assign(units_sold=f["units_sold"].where(f.index != 3, -2.0))


def _unknown_sku(f: pd.DataFrame) -> pd.DataFrame:
    return f.assign(sku_id=f["sku_id"].where(f.index != 0, "P9999"))


def _other_day(f: pd.DataFrame) -> pd.DataFrame:
    return f.assign(date=f["date"].where(f.index != 0, pd.Timestamp("2031-06-01")))


CASES = {
    "wrong dtype": (
        lambda f: f.assign(units_sold=f["units_sold"].astype(str)),
        "expect_column_values_to_be_in_type_list",
    ),
    "negative units": (_negative, "expect_column_values_to_be_between"),
    "duplicated rows": (lambda f: pd.concat([f, f.head(2)], ignore_index=True), "expect_compound_columns_to_be_unique"),
    "unknown sku": (_unknown_sku, "expect_column_values_to_be_in_set"),
    "a row from a future day": (_other_day, "expect_column_pair_values_to_be_equal"),
    "price not positive": (lambda f: f.assign(price=0.0), "expect_column_values_to_be_between"),
    "truncated file": (lambda f: f.head(len(f) // 3), "expect_column_values_to_be_between"),
    "units changed to dozens": (
        lambda f: f.assign(units_sold=f["units_sold"] * 12),
        "expect_column_values_to_be_between",
    ),
    "empty file with a valid schema": (lambda f: f.head(0), "expect_column_values_to_be_between"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_day_is_quarantined_and_named(data_dir: Path, case: str) -> None:
    change, expectation = CASES[case]
    bad = partition_dates(data_dir)[30]
    rewrite(data_dir, bad, change)
    result = gate(data_dir)
    assert result.quarantined == [bad.isoformat()]
    assert expectation in [f["expectation"] for f in result.verdicts[bad.isoformat()].failures]
    assert len(result.accepted) == len(partition_dates(data_dir)) - 1


@pytest.mark.parametrize(
    ("case", "damage", "named"),
    [
        ("missing column", lambda p: pd.read_parquet(p).drop(columns=["store_id"]).to_parquet(p), "store_id"),
        ("zero-byte file", lambda p: p.write_bytes(b""), "unreadable"),
        ("corrupt parquet", lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "unreadable"),
        (
            "mixed date formats",
            lambda p: (
                pd.read_parquet(p)
                .assign(
                    date=lambda f: [d.strftime("%d/%m/%Y") if i % 2 else d.isoformat() for i, d in enumerate(f["date"])]
                )
                .to_parquet(p)
            ),
            "not ISO dates",
        ),
    ],
)
def test_unreadable_day_is_quarantined_with_the_reason(data_dir: Path, case: str, damage, named: str) -> None:
    bad = partition_dates(data_dir)[20]
    damage(partition_path(data_dir, bad))
    result = gate(data_dir)
    assert result.quarantined == [bad.isoformat()]
    [failure] = result.verdicts[bad.isoformat()].failures
    assert failure["expectation"] == UNREADABLE
    assert named in failure["sample"][0] and str(partition_path(data_dir, bad)) in failure["sample"][0]


def test_ledger_keeps_the_last_accepted_version_and_releases_a_fixed_day(data_dir: Path) -> None:
    ledger = GateLedger(data_dir.parent / "gate")
    days = partition_dates(data_dir)
    for verdict in gate(data_dir, ledger).verdicts.values():
        ledger.record(verdict, dataset_version="v1", run_id="r1")
    bad = days[25]
    original = partition_path(data_dir, bad).read_bytes()
    rewrite(data_dir, bad, _negative)
    assert ledger.needs_gate(data_dir, days) == [bad]  # only the changed day is gated again
    for verdict in gate_periods(data_dir, [bad], ledger, GATE).verdicts.values():
        ledger.record(verdict, dataset_version="v2", run_id="r2")
    entry = ledger.read(bad.isoformat())
    assert entry["status"] == "quarantined" and entry["accepted"]["dataset_version"] == "v1"

    partition_path(data_dir, bad).write_bytes(original)  # the fix
    for verdict in gate_periods(data_dir, [bad], ledger, GATE).verdicts.values():
        ledger.record(verdict, dataset_version="v3", run_id="r3")
    assert ledger.read(bad.isoformat())["status"] == "accepted"


def test_batching_does_not_change_any_verdict(data_dir: Path) -> None:
    bad = partition_dates(data_dir)[35]
    rewrite(data_dir, bad, lambda f: f.head(len(f) // 3))
    one_pass = gate_periods(
        data_dir,
        partition_dates(data_dir),
        GateLedger(data_dir.parent / "a"),
        GATE.model_copy(update={"batch_partitions": 1000}),
    )
    weekly = gate_periods(
        data_dir,
        partition_dates(data_dir),
        GateLedger(data_dir.parent / "b"),
        GATE.model_copy(update={"batch_partitions": 7}),
    )
    assert weekly.quarantined == one_pass.quarantined == [bad.isoformat()]
    assert {k: v.failures for k, v in weekly.verdicts.items()} == {k: v.failures for k, v in one_pass.verdicts.items()}
