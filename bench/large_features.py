"""Training-set retrieval on the `large` preset (50 stores x 500 SKUs x 3 years), file vs DuckDB.

Features are computed a month at a time through the incremental path (a lookback slice plus the
first-seen table), which keeps memory bounded. The file store runs in a child process capped at
12 GB of address space and 10 minutes, so that running out does not end the benchmark.
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.stores import DAILY, make_store, retrieve, seconds
from demandops.contract import partition_dates, read_master, read_sales
from demandops.frequency import shift_period
from feature_repo.sources import write_period_features, write_static_features
from salesdata.datasets import generate
from training.dataset import entity_rows
from training.features import compute_features, first_seen
from training.static_features import sku_attributes, store_attributes

CHILD_MEMORY = 12 * 2**30
CHILD_SECONDS = 600


def chunked_features(data_dir: Path, source_dir: Path, chunk_days: int = 31) -> int:
    """Features of every day, a chunk at a time from a lookback slice; returns the feature rows written."""
    days = partition_dates(data_dir)
    seen, rows = None, 0
    for start in range(0, len(days), chunk_days):
        chunk = days[start : start + chunk_days]
        since = pd.Timestamp(chunk[0])
        first = shift_period(since, -DAILY.lookback, "D").date()
        sales = read_sales(data_dir, [d for d in days if first <= d <= chunk[-1]])
        features = compute_features(sales, DAILY, first_seen=seen, since=since)
        write_period_features(source_dir, features)
        rows += len(features)
        new = first_seen(sales)
        seen = new if seen is None else pd.concat([seen, new]).groupby(["store_id", "sku_id"], as_index=False).min()
    write_static_features(
        source_dir, store_attributes(read_master(data_dir, "stores")), sku_attributes(read_master(data_dir, "skus"))
    )
    return rows


def _file_store_child(root: str, entities_path: str, queue) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))

    try:
        store = make_store(Path(root), "offline_file", {"type": "sqlite", "path": f"{root}/offline_file.db"}, "file")
        entities = pd.read_parquet(entities_path)
        start = time.perf_counter()
        retrieve(store, entities)
        queue.put({"seconds": time.perf_counter() - start})
    except MemoryError:
        queue.put({"failed": f"ran out of the {CHILD_MEMORY / 2**30:.0f} GB cap"})


def file_store_seconds(root: Path, entities: pd.DataFrame, limit_s: int = CHILD_SECONDS) -> dict:
    """One retrieval through the file (dask) offline store in a capped child process."""
    path = root / "entities.parquet"
    entities.to_parquet(path, index=False)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_file_store_child, args=(str(root), str(path), queue))
    child.start()
    child.join(limit_s)
    if child.is_alive():
        child.kill()
        return {"failed": f"did not finish in {limit_s} s"}
    return queue.get() if not queue.empty() else {"failed": f"child exited with {child.exitcode} (killed for memory?)"}


def large_retrieval(repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        generate(root / "data", "large")
        print(f"large: generated in {time.perf_counter() - start:.0f}s")
        start = time.perf_counter()
        feature_rows = chunked_features(root / "data", root / "sources")
        compute_s = time.perf_counter() - start
        print(f"large: {feature_rows} feature rows computed a month at a time in {compute_s:.0f}s")
        sales = read_sales(root / "data", partition_dates(root / "data"))
        entities = entity_rows(sales, 14, DAILY)
        del sales
        duck = make_store(root, "large_duckdb", {"type": "sqlite", "path": str(root / "large.db")}, "duckdb")
        result: dict = {"feature_rows": feature_rows, "feature_compute_s": compute_s, "entity_rows": len(entities)}
        for size in (2000, 100_000, 1_000_000):
            sample = entities.sample(size, random_state=size)
            result[f"duckdb_{size}_median_s"] = statistics.median(
                seconds(retrieve, duck, sample) for _ in range(repeats)
            )
            print(f"large, {size} entity rows: duckdb {result[f'duckdb_{size}_median_s']:.2f}s")
        result["file_2000"] = file_store_seconds(root, entities.sample(2000, random_state=2000))
        print(f"large, 2000 entity rows: file {result['file_2000']}")
        return result
