"""`data import`: a user's file becomes versioned partitions, or a clear refusal that changes nothing."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from demandops.contract import partition_dates, read_master, read_sales_partition, recorded_frequency
from demandops.errors import DataContractError
from demandops.settings import GateSettings
from salesdata import dvc_versions
from salesdata.datasets import LOCAL_REMOTE_DIRNAME, import_sales

HEADER = "date,store_id,sku_id,units_sold\n"


def monthly_csv(path: Path, months: int = 4) -> Path:
    rows = [
        f"2024-{m:02d}-01,{store},{sku},{10 * m + len(sku)}"
        for m in range(1, months + 1)
        for store in ("S1", "S2")
        for sku in ("A", "BB")
    ]
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


def do_import(project: Path, source: Path, **options):
    return import_sales(project, project / "data", source, **{"frequency": "M", "limits": GateSettings(), **options})


def test_monthly_file_with_required_columns_only_becomes_versioned_partitions(tmp_path: Path) -> None:
    summary = do_import(tmp_path, monthly_csv(tmp_path / "sales.csv"))
    data = tmp_path / "data"
    assert partition_dates(data) == [date(2024, m, 1) for m in range(1, 5)]
    assert recorded_frequency(data) == "M" and summary.periods == 4 and summary.rows == 16
    march = read_sales_partition(data, date(2024, 3, 1))
    assert list(march.columns) == ["date", "store_id", "sku_id", "units_sold"]
    assert march["units_sold"].dtype == "float64" and sorted(march["units_sold"]) == [31.0, 31.0, 32.0, 32.0]
    assert list(read_master(data, "skus")["category"]) == ["uncategorized"] * 2, "masters derived from the sales"
    assert summary.version == dvc_versions.dataset_version(tmp_path, data)
    assert (tmp_path / LOCAL_REMOTE_DIRNAME).is_dir(), "the version is pushed to the local DVC remote"


def test_weekly_rows_dated_any_day_are_stored_under_their_monday(tmp_path: Path) -> None:
    source = tmp_path / "weekly.csv"
    source.write_text(HEADER + "2024-03-10,S1,A,5\n2024-03-17,S1,A,6\n")  # two Sundays: week-ending dates
    do_import(tmp_path, source, frequency="W")
    assert partition_dates(tmp_path / "data") == [date(2024, 3, 4), date(2024, 3, 11)]


BAD_FILES = {
    "stray header row": (HEADER + "2024-01-01,S1,A,1\ndate,store_id,sku_id,units_sold\n2024-02-01,S1,A,2\n", "line 3"),
    "mixed date formats": (HEADER + "2024-01-01,S1,A,1\n01/02/2024,S1,A,2\n2024-03-01,S1,A,3\n", "line 3"),
    "missing column": ("date,store_id,units_sold\n2024-01-01,S1,1\n", "['sku_id']"),
    "wrong dtype": (HEADER + "2024-01-01,S1,A,1\n2024-02-01,S1,A,twelve\n", "'twelve'"),
    "negative units": (HEADER + "2024-01-01,S1,A,-4\n", "units_sold must be >= 0, found '-4' on line 2"),
    "duplicated rows": (HEADER + "2024-01-01,S1,A,1\n2024-01-15,S1,A,2\n", "one row per store, SKU and month"),
    "future date": (HEADER + "2099-01-01,S1,A,1\n", "dates in the future on line 2: 2099-01-01"),
    "infinite units": (HEADER + "2024-01-01,S1,A,inf\n", "units_sold is not a finite number on line 2: 'inf'"),
    "absurd units": (HEADER + "2024-01-01,S1,A,1e300\n", "units_sold above 1e+09 on line 2: '1e300'"),
    "one absurd spike": (
        HEADER + "".join(f"2024-0{m}-01,S1,A,{u}\n" for m, u in [(1, 5), (2, 7), (3, 50000), (4, 6)]),
        "units_sold over 1000 times every other value of its series on line 4: '50000'",
    ),
    "a repeated column": (
        "date,store_id,sku_id,units_sold,units_sold\n2024-01-01,S1,A,1,2\n",
        "more than one column named ['units_sold']",
    ),
    "a row dated 1900": (
        HEADER + "2024-01-01,S1,A,1\n2024-02-01,S1,A,2\n1900-01-01,S1,A,3\n",
        "dates over 10 years from any other period on line 4: 1900-01-01",
    ),
    "semicolons": ("date;store_id;sku_id;units_sold\n2024-01-01;S1;A;1\n", "separated by semicolons, not commas"),
    "tabs": ("date\tstore_id\tsku_id\tunits_sold\n2024-01-01\tS1\tA\t1\n", "pass --delimiter '\\t'"),
    "empty file": ("", "is empty"),
    "header only": (HEADER, "no rows"),
    "bad id": (HEADER + "2024-01-01,S 1,A,1\n", "store_id is empty or not an id"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_refused_naming_the_problem_and_the_stored_dataset_survives(tmp_path: Path, case: str) -> None:
    do_import(tmp_path, monthly_csv(tmp_path / "good.csv"))
    before = dvc_versions.dataset_version(tmp_path, tmp_path / "data")
    content, named = BAD_FILES[case]
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    with pytest.raises(DataContractError, match="bad.csv") as refused:
        do_import(tmp_path, bad, mode="replace")
    assert named in str(refused.value)
    assert dvc_versions.dataset_version(tmp_path, tmp_path / "data") == before, "nothing stored changed"


def test_corrupt_parquet_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "sales.parquet"
    pd.DataFrame({"date": ["2024-01-01"], "store_id": ["S1"], "sku_id": ["A"], "units_sold": [1.0]}).to_parquet(source)
    source.write_bytes(source.read_bytes()[:-40])
    with pytest.raises(DataContractError, match="sales.parquet could not be parsed"):
        do_import(tmp_path, source)
    assert not (tmp_path / "data").exists()


def test_master_files_must_cover_the_sales_ids(tmp_path: Path) -> None:
    skus = tmp_path / "skus.csv"
    skus.write_text("sku_id,category\nA,food\n")
    with pytest.raises(DataContractError, match=r"lacks 1 sku_id\(s\) the sales use, e.g. \['BB'\]"):
        do_import(tmp_path, monthly_csv(tmp_path / "sales.csv"), skus=skus)
    skus.write_text("sku_id,category\nA,food\nBB,drinks\n")
    do_import(tmp_path, monthly_csv(tmp_path / "sales.csv"), skus=skus)
    assert list(read_master(tmp_path / "data", "skus")["category"]) == ["food", "drinks"]


def test_append_adds_only_new_periods_and_replace_keeps_the_old_version_restorable(tmp_path: Path) -> None:
    do_import(tmp_path, monthly_csv(tmp_path / "first.csv", months=2))
    with pytest.raises(DataContractError, match="already holds a dataset"):
        do_import(tmp_path, monthly_csv(tmp_path / "again.csv"))
    with pytest.raises(DataContractError, match="periods the dataset already has"):
        do_import(tmp_path, monthly_csv(tmp_path / "overlap.csv", months=3), mode="append")

    later = tmp_path / "later.csv"
    later.write_text(HEADER + "2024-03-01,S1,A,7\n2024-03-01,S3,C,1\n")
    appended = do_import(tmp_path, later, mode="append")
    assert partition_dates(tmp_path / "data")[-1] == date(2024, 3, 1)
    assert "S3" in set(read_master(tmp_path / "data", "stores")["store_id"]), "derived masters grow with the data"
    manifest = json.loads((tmp_path / "data" / "dataset.json").read_text())
    assert [i["file"] for i in manifest["imports"]] == ["first.csv", "later.csv"]

    replaced = do_import(tmp_path, monthly_csv(tmp_path / "new.csv", months=1), mode="replace")
    assert replaced.replaced_version == appended.version
    remote_object = tmp_path / LOCAL_REMOTE_DIRNAME / "files" / "md5" / appended.version[:2]
    assert (remote_object / f"{appended.version[2:]}.dir").is_file(), "the replaced version is in the DVC remote"


def test_a_file_that_is_not_utf8_is_refused_naming_the_line(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes((HEADER + "2024-01-01,S1,A,1\n2024-02-01,Caf\u00e9,A,2\n").encode("latin-1"))
    with pytest.raises(DataContractError, match="latin1.csv is not UTF-8 text: line 3, column 15 holds the byte 0xe9"):
        do_import(tmp_path, latin1)
    assert not (tmp_path / "data").exists(), "nothing was written"


def test_a_semicolon_file_imports_with_its_delimiter_and_a_byte_order_mark_is_no_column(tmp_path: Path) -> None:
    source = tmp_path / "excel.csv"
    source.write_text("\ufeffdate;store_id;sku_id;units_sold\n2024-01-01;S1;A;1\n2024-02-01;S1;A;2\n")
    assert do_import(tmp_path, source, delimiter=";").rows == 2


def test_appending_a_period_years_before_the_dataset_is_refused(tmp_path: Path) -> None:
    do_import(tmp_path, monthly_csv(tmp_path / "good.csv"))
    typo = tmp_path / "typo.csv"
    typo.write_text(HEADER + "2004-05-01,S1,A,3\n")  # 2024 mistyped
    with pytest.raises(DataContractError, match="2004-05-01 \\(a typo in the year"):
        do_import(tmp_path, typo, mode="append")
