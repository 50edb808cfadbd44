"""The raw-data contract: what a sales partition looks like on disk and how it is read.

Layout under the data folder (tracked by DVC as one directory):
    sales/date=YYYY-MM-DD/part-0.parquet   one file per period (day, week or month, named by its
                                           first day): date, store_id, sku_id, units_sold,
                                           optional price, on_promo, stock_on_hand
    stores.parquet                         store_id, optional region, size
    skus.parquet                           sku_id, optional category
    dataset.json                           optional: frequency (D, W or M) and provenance;
                                           absent means daily data
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from demandops.errors import DataContractError
from demandops.frequency import Frequency, check_frequency

REQUIRED_SALES_COLUMNS = ("date", "store_id", "sku_id", "units_sold")
OPTIONAL_SALES_COLUMNS = ("price", "on_promo", "stock_on_hand")
SERIES_KEYS = ("store_id", "sku_id")
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"  # store and SKU ids, as the serving API accepts them
# The service levels a reorder point is given for (training/replenishment.py); here, not there, so that
# the API's schemas do not import SciPy into BentoML's supervisor (serving/service.py).
MIN_SERVICE_LEVEL, MAX_SERVICE_LEVEL = 0.5, 0.999
MASTER_KEYS = {"stores": "store_id", "skus": "sku_id"}
SALES_DIRNAME = "sales"
PARTITION_PREFIX = "date="
DATASET_MANIFEST = "dataset.json"


def recorded_frequency(data_dir: Path) -> Frequency:
    """The frequency the data folder declares in dataset.json; daily when it declares none."""
    path = data_dir / DATASET_MANIFEST
    if not path.is_file():
        return "D"
    try:
        return check_frequency(json.loads(path.read_text()).get("frequency", "D"))
    except (ValueError, AttributeError) as exc:
        raise DataContractError(f"{path}: {exc}; expected a JSON object with frequency D, W or M") from exc


def partition_path(data_dir: Path, day: date) -> Path:
    """Where the sales of one day live."""
    return data_dir / SALES_DIRNAME / f"{PARTITION_PREFIX}{day.isoformat()}" / "part-0.parquet"


def partition_dates(data_dir: Path) -> list[date]:
    """The days for which a sales partition exists, sorted."""
    sales_dir = data_dir / SALES_DIRNAME
    if not sales_dir.is_dir():
        raise DataContractError(f"no sales folder at {sales_dir}: expected {SALES_DIRNAME}/date=YYYY-MM-DD/")
    days = []
    for child in sales_dir.iterdir():
        if child.is_dir() and child.name.startswith(PARTITION_PREFIX):
            try:
                days.append(date.fromisoformat(child.name.removeprefix(PARTITION_PREFIX)))
            except ValueError as exc:
                raise DataContractError(f"bad partition folder name {child}: expected date=YYYY-MM-DD") from exc
    return sorted(days)


def read_sales_partition(data_dir: Path, day: date) -> pd.DataFrame:
    """One day of sales, with the required columns checked."""
    path = partition_path(data_dir, day)
    try:
        table = read_parquet_file(path)
    except FileNotFoundError as exc:
        raise DataContractError(f"missing sales partition {path}") from exc
    except (pa.ArrowException, OSError) as exc:
        raise DataContractError(f"unreadable sales partition {path}: {exc}") from exc
    repeated = repeated_names(table.column_names)
    if repeated:
        raise DataContractError(f"{path} has more than one column named {repeated}; expected each column once")
    frame = table.to_pandas()
    missing = [c for c in REQUIRED_SALES_COLUMNS if c not in frame.columns]
    if missing:
        raise DataContractError(
            f"{path} lacks required column(s) {missing}; expected at least {list(REQUIRED_SALES_COLUMNS)}"
        )
    try:
        frame["date"] = pd.to_datetime(frame["date"], format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise DataContractError(f"{path}: column date holds values that are not ISO dates ({exc})") from exc
    return frame


def read_parquet_file(path: Path) -> pa.Table:
    """One Parquet file as written, repeated column names included: pq.read_table goes through the
    dataset layer, which fails on them with an unhelpful "Multiple matches for FieldRef"."""
    with pq.ParquetFile(path) as parquet:
        return parquet.read()


def repeated_names(names: Iterable[str]) -> list[str]:
    """Column names that occur more than once (pandas would keep one of them and drop the rest)."""
    seen: set[str] = set()
    return sorted({name for name in names if name in seen or seen.add(name)})


def read_sales(data_dir: Path, days: Iterable[date]) -> pd.DataFrame:
    """Sales of several days as one frame."""
    frames = [read_sales_partition(data_dir, day) for day in days]
    if not frames:
        raise DataContractError(f"no sales partitions requested from {data_dir}")
    return pd.concat(frames, ignore_index=True)


def write_sales(data_dir: Path, sales: pd.DataFrame) -> list[Path]:
    """Write sales as one Parquet file per day that has rows (deterministic bytes for the same input)."""
    written = []
    for day, frame in sales.groupby(sales["date"].dt.date, sort=True):
        path = partition_path(data_dir, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False), path)
        written.append(path)
    return written


def read_master(data_dir: Path, name: str) -> pd.DataFrame:
    """A master file (`stores` or `skus`)."""
    path = data_dir / f"{name}.parquet"
    key = MASTER_KEYS[name]
    try:
        frame = pq.read_table(path).to_pandas()
    except FileNotFoundError as exc:
        raise DataContractError(f"missing master file {path}") from exc
    except (pa.ArrowException, OSError) as exc:
        raise DataContractError(f"unreadable master file {path}: {exc}; restore it (dvc checkout data)") from exc
    if key not in frame.columns:
        raise DataContractError(f"master file {path} lacks the column {key!r}; found {list(frame.columns)}")
    return frame
