"""Bad input at the gate: each case is quarantined with a report naming what was wrong; other days pass."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from demandops.contract import partition_dates, partition_path
from demandops.settings import GateSettings
from salesdata.datasets import _write
from salesdata.gate import ISOLATED, UNREADABLE, GateLedger, gate_periods
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
    ledger.record_result(gate(data_dir, ledger), dataset_version="v1", run_id="r1")
    bad = days[25]
    original = partition_path(data_dir, bad).read_bytes()
    rewrite(data_dir, bad, _negative)
    assert ledger.needs_gate(data_dir, days) == [bad]  # only the changed day is gated again
    ledger.record_result(gate_periods(data_dir, [bad], ledger, GATE), dataset_version="v2", run_id="r2")
    entry = ledger.read(bad.isoformat())
    assert entry["status"] == "quarantined" and entry["accepted"]["dataset_version"] == "v1"

    partition_path(data_dir, bad).write_bytes(original)  # the fix
    ledger.record_result(gate_periods(data_dir, [bad], ledger, GATE), dataset_version="v3", run_id="r3")
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
    # Handed on batch by batch instead of collected, the accepted days are the same frames, each once.
    handed: list[dict[str, pd.DataFrame]] = []
    streamed = gate_periods(
        data_dir,
        partition_dates(data_dir),
        GateLedger(data_dir.parent / "c"),
        GATE.model_copy(update={"batch_partitions": 7}),
        keep=handed.append,
    )
    assert streamed.accepted == {} and len(handed) == -(-len(partition_dates(data_dir)) // 7)
    assert all(len(batch) <= 7 for batch in handed)
    kept = {day: frame for batch in handed for day, frame in batch.items()}
    assert sum(len(batch) for batch in handed) == len(kept) == len(one_pass.accepted)
    for day, frame in one_pass.accepted.items():
        pd.testing.assert_frame_equal(kept[day], frame)
    assert streamed.series_max.equals(one_pass.series_max)


def test_an_unreadable_first_day_is_quarantined_and_the_others_continue(data_dir: Path) -> None:
    first = partition_dates(data_dir)[0]
    path = partition_path(data_dir, first)
    path.write_bytes(path.read_bytes()[:100])  # "Parquet magic bytes not found in footer"
    result = gate(data_dir)
    assert result.quarantined == [first.isoformat()]
    assert len(result.accepted) == len(partition_dates(data_dir)) - 1
    [failure] = result.verdicts[first.isoformat()].failures
    assert failure["expectation"] == UNREADABLE and str(path) in failure["sample"][0]


def _one_row(units: float) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda f: f.assign(units_sold=f["units_sold"].where(f.index != 5, units))


@pytest.mark.parametrize(
    ("units", "column"),
    [(float("inf"), "units_sold"), (1e300, "units_sold"), (float("nan"), "units_sold"), (5e5, "_units_vs_history")],
)
def test_garbage_units_are_quarantined_naming_the_column(data_dir: Path, units: float, column: str) -> None:
    bad = partition_dates(data_dir)[30]
    rewrite(data_dir, bad, _one_row(units))
    result = gate(data_dir)
    assert result.quarantined == [bad.isoformat()]
    assert column in [f["column"] for f in result.verdicts[bad.isoformat()].failures]
    assert all(np.isfinite(f["units_sold"]).all() for f in result.accepted.values()), "only finite numbers stored"


def test_a_real_spike_passes_and_a_series_history_judges_a_day_gated_alone(data_dir: Path) -> None:
    days = partition_dates(data_dir)
    ledger = GateLedger(data_dir.parent / "gate")
    rows_only = GATE.model_copy(update={"min_category_rows": 10_000})  # the category profile is another test's
    ledger.record_result(gate_periods(data_dir, days[:-2], ledger, rows_only), dataset_version="v1", run_id="r1")
    series = pd.read_parquet(partition_path(data_dir, days[-1])).loc[5, ["store_id", "sku_id"]]
    best = ledger.series_max()[tuple(series)]
    rewrite(data_dir, days[-2], _one_row(max(best, 1) * 40))  # a promotion forty times the best day: real
    rewrite(data_dir, days[-1], _one_row(max(best, 1) * 5000))  # five thousand times: a unit error
    alone = [gate_periods(data_dir, [day], ledger, rows_only) for day in days[-2:]]
    assert [r.quarantined for r in alone] == [[], [days[-1].isoformat()]]
    [failure] = alone[1].verdicts[days[-1].isoformat()].failures
    assert failure["column"] == "_units_vs_history" and failure["unexpected_count"] == 1


def test_a_period_far_from_the_rest_of_the_data_is_quarantined(data_dir: Path) -> None:
    sample = pd.read_parquet(partition_path(data_dir, partition_dates(data_dir)[0])).head(3)
    typo = date(1900, 1, 1)
    path = partition_path(data_dir, typo)
    path.parent.mkdir(parents=True)
    sample.assign(date=pd.Timestamp(typo)).to_parquet(path, index=False)
    result = gate(data_dir)
    assert result.quarantined == [typo.isoformat()]
    [failure] = result.verdicts[typo.isoformat()].failures
    assert failure["expectation"] == ISOLATED and "10 years" in failure["sample"][0]


def test_a_file_with_a_repeated_column_is_quarantined_naming_it(data_dir: Path) -> None:
    bad = partition_dates(data_dir)[10]
    path = partition_path(data_dir, bad)
    table = pq.read_table(path)
    pq.write_table(table.append_column("units_sold", table.column("units_sold")), path)
    result = gate(data_dir)
    assert result.quarantined == [bad.isoformat()]
    [failure] = result.verdicts[bad.isoformat()].failures
    assert "more than one column named ['units_sold']" in failure["sample"][0]


@pytest.mark.parametrize("column", ["price", "stock_on_hand"])
def test_an_infinite_price_or_stock_is_quarantined(data_dir: Path, column: str) -> None:
    bad = partition_dates(data_dir)[30]
    rewrite(data_dir, bad, lambda f: f.assign(**{column: f[column].where(f.index != 2, float("inf"))}))
    result = gate(data_dir)
    assert result.quarantined == [bad.isoformat()]
    assert column in [f["column"] for f in result.verdicts[bad.isoformat()].failures]
