from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from demandops.contract import partition_dates, partition_path, read_master, read_sales
from demandops.errors import DataContractError
from demandops.settings import Settings


def test_reads_back_the_requested_days(project_with_data: Settings) -> None:
    days = partition_dates(project_with_data.data)[:3]
    frame = read_sales(project_with_data.data, days)
    assert sorted(frame["date"].dt.date.unique()) == days


def test_corrupt_file_is_named(project_with_data: Settings) -> None:
    day = partition_dates(project_with_data.data)[0]
    path = partition_path(project_with_data.data, day)
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataContractError, match=str(path)):
        read_sales(project_with_data.data, [day])


def test_missing_required_column_is_named(project_with_data: Settings) -> None:
    day = partition_dates(project_with_data.data)[0]
    path = partition_path(project_with_data.data, day)
    pd.read_parquet(path).drop(columns=["units_sold"]).to_parquet(path)
    with pytest.raises(DataContractError, match="units_sold"):
        read_sales(project_with_data.data, [day])


def test_missing_partition_is_named(project_with_data: Settings) -> None:
    with pytest.raises(DataContractError, match="date=1999-01-01"):
        read_sales(project_with_data.data, [date(1999, 1, 1)])


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:40]), "unreadable master file"),
        (lambda p: pd.read_parquet(p).rename(columns={"sku_id": "sku"}).to_parquet(p), "lacks the column 'sku_id'"),
    ],
)
def test_a_damaged_master_file_is_named(project_with_data: Settings, damage, named: str) -> None:
    path = project_with_data.data / "skus.parquet"
    damage(path)
    with pytest.raises(DataContractError, match=f"{named}.*|{path}") as refused:
        read_master(project_with_data.data, "skus")
    assert named in str(refused.value) and str(path) in str(refused.value)
