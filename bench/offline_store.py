"""Feast point-in-time training-set retrieval: the `file` (dask) vs the `duckdb` offline store.

Both stores answer the same entity rows of the default preset against the same feature source,
alternating, several times; the script prints medians and the file/duckdb ratio, and writes
bench/results/offline_store.json.

    .venv/bin/python -m bench.offline_store [--sizes 2000 8000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from feast import FeatureStore, RepoConfig

from bench.stores import DAILY, DAILY_TTL, retrieve
from feature_repo.definitions import feature_objects
from feature_repo.sources import write_period_features, write_static_features
from salesdata.simulator import PRESETS, simulate
from training.dataset import entity_rows
from training.features import compute_features
from training.static_features import sku_attributes, store_attributes

RESULT = Path(__file__).parent / "results" / "offline_store.json"


def make_store(root: Path, offline: str, source_dir: Path) -> FeatureStore:
    config = RepoConfig(
        project="bench",
        provider="local",
        registry=str(root / f"{offline}_registry.db"),
        online_store={"type": "sqlite", "path": str(root / f"{offline}_online.db")},
        offline_store={"type": offline},
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config)
    store.apply(feature_objects(source_dir, DAILY, DAILY_TTL))
    return store


def retrieve_seconds(store: FeatureStore, entities: pd.DataFrame) -> float:
    start = time.perf_counter()
    retrieve(store, entities)  # checks the row count
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = simulate(PRESETS["default"])
    sales = data.sales
    all_entities = entity_rows(sales, 14, DAILY)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "sources"
        write_period_features(source, compute_features(sales, DAILY))
        write_static_features(source, store_attributes(data.stores), sku_attributes(data.skus))
        stores = {name: make_store(root, name, source) for name in ("file", "duckdb")}
        rows = []
        for size in args.sizes:
            entities = all_entities.sample(size, random_state=size)
            times: dict[str, list[float]] = {name: [] for name in stores}
            for _ in range(args.repeats):
                for name, store in stores.items():  # alternate so drift hits both alike
                    times[name].append(retrieve_seconds(store, entities))
            medians = {name: statistics.median(t) for name, t in times.items()}
            rows.append(
                {
                    "entity_rows": size,
                    "median_s": medians,
                    "runs_s": times,
                    "file_over_duckdb": medians["file"] / medians["duckdb"],
                }
            )
            print(
                f"{size:>7} rows  file {medians['file']:.2f}s  duckdb {medians['duckdb']:.3f}s  "
                f"ratio file/duckdb {rows[-1]['file_over_duckdb']:.1f}x"
            )
        full = retrieve_seconds(stores["duckdb"], all_entities)
        print(
            f"{len(all_entities):>7} rows  duckdb {full:.2f}s (the whole default training set; "
            "the file store ran out of 24 GB on it)"
        )
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {platform.python_version()}",
                "repeats": args.repeats,
                "sizes": rows,
                "duckdb_full_default": {"entity_rows": len(all_entities), "seconds": full},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
