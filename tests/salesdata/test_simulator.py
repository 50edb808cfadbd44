"""The simulator's properties show up in the data it writes, as configured."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from demandops.contract import partition_dates, read_sales
from demandops.errors import DataContractError
from salesdata.datasets import (
    ORACLE_FILE,
    append_days,
    generate,
    next_day,
    oracle_dir,
    read_manifest,
    read_oracle,
    resized,
)
from salesdata.simulator import PRESETS, DemandShift, SimulatedData, extended, simulate


@pytest.fixture(scope="module")
def default_data() -> SimulatedData:
    return simulate(PRESETS["default"])


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_preset_writes_identical_bytes(tmp_path: Path) -> None:
    generate(tmp_path / "a" / "data", "small")
    generate(tmp_path / "b" / "data", "small")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_rows_are_unique_non_negative_and_censored_by_stock(default_data: SimulatedData) -> None:
    sales = default_data.sales
    assert not sales.duplicated(["date", "store_id", "sku_id"]).any()
    assert (sales["units_sold"] >= 0).all()
    assert (sales["units_sold"] <= sales["stock_on_hand"]).all()


def test_stockouts_censor_sales_below_the_oracle(default_data: SimulatedData) -> None:
    merged = default_data.sales.merge(default_data.oracle, on=["date", "store_id", "sku_id"])
    sold_out = merged["stock_on_hand"] == 0
    assert 0.001 < sold_out.mean() < 0.1
    assert merged.loc[sold_out, "units_sold"].sum() == 0
    assert merged.loc[sold_out, "expected_units"].mean() > 0.1  # demand existed, sales were censored
    assert merged["units_sold"].sum() < merged["expected_units"].sum()


def test_slow_movers_are_intermittent(default_data: SimulatedData) -> None:
    zero_share = default_data.sales.groupby("sku_id")["units_sold"].apply(lambda u: (u == 0).mean())
    expected_slow = PRESETS["default"].slow_mover_share * PRESETS["default"].n_skus
    assert (zero_share >= 0.3).sum() >= expected_slow * 0.8


def test_promotions_lift_demand_and_leave_a_dip(default_data: SimulatedData) -> None:
    oracle = default_data.oracle.merge(default_data.sales[["date", "store_id", "sku_id", "on_promo"]])
    oracle = oracle.sort_values(["store_id", "sku_id", "date"])
    by_series = oracle.groupby(["store_id", "sku_id"])["on_promo"]
    just_after = ~oracle["on_promo"] & by_series.shift(1, fill_value=False)
    relative = oracle["expected_units"] / oracle.groupby(["store_id", "sku_id"])["expected_units"].transform("median")
    assert relative[oracle["on_promo"]].median() > 1.25
    assert relative[just_after].median() < 0.85


def test_weekly_and_annual_seasonality_by_category(default_data: SimulatedData) -> None:
    sales = default_data.sales.merge(default_data.skus[["sku_id", "category"]])
    by_day = sales.groupby(sales["date"].dt.dayofweek)["units_sold"].mean()
    assert by_day[5] > 1.15 * by_day[1]  # Saturday sells clearly more than Tuesday
    drinks = sales[sales["category"] == "beverages"]
    by_month = drinks.groupby(drinks["date"].dt.month)["units_sold"].mean()
    assert by_month[7] > 1.2 * by_month[1]  # summer drinks


def test_holidays_close_stores_or_lift_demand(default_data: SimulatedData) -> None:
    sales = default_data.sales
    assert not (sales["date"] == pd.Timestamp("2023-12-25")).any()
    daily = sales.groupby("date")["units_sold"].sum()
    assert daily[pd.Timestamp("2023-12-24")] > 1.3 * daily[pd.Timestamp("2023-12-17")]


def test_launches_discontinuations_and_store_closures(default_data: SimulatedData) -> None:
    sales, preset = default_data.sales, PRESETS["default"]
    first, last = sales.groupby("sku_id")["date"].min(), sales.groupby("sku_id")["date"].max()
    assert (first > pd.Timestamp(preset.start) + pd.Timedelta(days=30)).any()
    assert (last < sales["date"].max() - pd.Timedelta(days=30)).any()
    rows_per_store_day = sales.groupby(["date", "store_id"]).size().unstack(fill_value=0)
    holidays = rows_per_store_day.index.strftime("%m-%d").isin(["12-25", "01-01"])
    assert (rows_per_store_day[~holidays] == 0).to_numpy().sum() > 0  # a store closed on an ordinary day


def test_oracle_sits_beside_the_data_not_inside(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    generate(data_dir, "small")
    assert (oracle_dir(data_dir) / ORACLE_FILE).is_file()
    assert not list(data_dir.rglob("*oracle*")) and not list(data_dir.rglob("expected_demand*"))


def test_every_day_with_sales_has_a_partition(
    tmp_path: Path,
) -> None:
    generate(tmp_path / "data", "small")
    days = partition_dates(tmp_path / "data")
    sold = sorted(simulate(PRESETS["small"]).sales["date"].dt.date.unique())
    assert days == sold and date(2023, 1, 1) not in days  # New Year: every store closed, no partition


def test_append_emits_exactly_the_next_days_and_keeps_the_old_ones(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    generate(data_dir, "small")
    before = _digest(data_dir / "sales")
    new_days = append_days(data_dir, 4)
    assert new_days[0] == date(2023, 5, 31) and len(new_days) == 4
    after = _digest(data_dir / "sales")
    assert {k: after[k] for k in before} == before and len(after) == len(before) + 4
    longer = simulate(extended(PRESETS["small"], 4)).sales
    pd.testing.assert_frame_equal(read_sales(data_dir, partition_dates(data_dir)), longer)


def test_append_refuses_data_that_was_not_simulated(tmp_path: Path) -> None:
    (tmp_path / "data" / "sales").mkdir(parents=True)
    with pytest.raises(DataContractError, match="simulation.json"):
        append_days(tmp_path / "data", 2)


def test_a_custom_size_writes_that_catalogue_and_appends_like_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    generate(data_dir, "small", stores=2, skus=4, days=120)
    sales = read_sales(data_dir, partition_dates(data_dir))
    assert sales["store_id"].nunique() == 2 and sales["sku_id"].nunique() == 4  # every late launch is in by day 110
    assert sales["date"].max() < pd.Timestamp(date(2023, 5, 1))
    append_days(data_dir, 2)  # the manifest records the custom size, so the next days match it
    resized_preset = resized(PRESETS["small"], stores=2, skus=4, days=122)
    pd.testing.assert_frame_equal(read_sales(data_dir, partition_dates(data_dir)), simulate(resized_preset).sales)


def test_a_size_below_one_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="--skus must be at least 1, got 0"):
        resized(PRESETS["small"], stores=None, skus=0, days=None)


def test_the_oracle_is_read_from_a_day_on(tmp_path) -> None:
    generate(tmp_path, "small")
    every = read_oracle(tmp_path)
    since = pd.Timestamp(sorted(every["date"].unique())[-10], tz="UTC")  # a backtest's origins are in UTC
    recent = read_oracle(tmp_path, since=since)
    expected = every[every["date"] >= since.tz_convert(None)].reset_index(drop=True)
    assert 0 < len(recent) < len(every)
    pd.testing.assert_frame_equal(recent.reset_index(drop=True), expected)


def test_a_demand_shift_changes_only_the_days_from_its_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, "small")
    before = read_oracle(data)
    start = next_day(data)
    append_days(data, 10, DemandShift("level", start, 1.8, category="beverages"))
    after = read_oracle(data)
    kept = after[after["date"] < pd.Timestamp(start)].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before.reset_index(drop=True), check_like=True)

    plain = tmp_path / "plain"
    generate(plain, "small")
    append_days(plain, 10)
    skus = pd.read_parquet(data / "skus.parquet").set_index("sku_id")["category"]
    shifted, unshifted = (o[o["date"] >= pd.Timestamp(start)] for o in (read_oracle(data), read_oracle(plain)))
    ratio = shifted["expected_units"].to_numpy() / unshifted["expected_units"].to_numpy()
    beverages = shifted["sku_id"].map(skus).eq("beverages").to_numpy()
    assert ratio[beverages] == pytest.approx(1.8) and ratio[~beverages] == pytest.approx(1.0)
    assert beverages.any() and (~beverages).any()
    with pytest.raises(DataContractError, match="not yet written"):
        append_days(data, 1, DemandShift("trend", start, 1.2))
    assert read_manifest(data).shifts == (DemandShift("level", start, 1.8, "beverages"),), "kept for later appends"


def test_a_demand_shift_refuses_what_it_cannot_mean() -> None:
    with pytest.raises(ValueError, match="unknown demand shift 'jump'"):
        DemandShift("jump", date(2024, 1, 1), 1.5)
    with pytest.raises(ValueError, match="positive"):
        DemandShift("level", date(2024, 1, 1), 0.0)
    with pytest.raises(ValueError, match="unknown category 'toys'"):
        DemandShift("level", date(2024, 1, 1), 1.5, category="toys")
