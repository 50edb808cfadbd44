"""Feast benchmark: online lookups (SQLite vs Redis), training-set retrieval (file vs DuckDB), and
incremental vs full materialization. Variants run side by side, alternating; medians and ratios are
printed and written to bench/results/features.json.

    .venv/bin/python -m bench.features [--lookups 300]     # online, default retrieval, materialization
    .venv/bin/python -m bench.features --large              # then the large preset (about 20 minutes)

Online lookups go through serving.online.OnlineFeatureReader.read, the read the Bento makes per batch (the provider's
online_read, decoded here), beside the same reader taking its per-period views from Feast's get_online_features(...)
.to_dict(), as it did before. Redis is the server on localhost (db 12, flushed before and after); it is skipped, and
said so, if unreachable.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import redis

from bench.large_features import file_store_seconds, large_retrieval
from bench.stores import DAILY, make_store, retrieve, seconds
from demandops.frequency import shift_period
from feature_repo.definitions import FEATURE_SERVICE_NAME
from feature_repo.freshness import consistent_stamps, stamp_column
from feature_repo.sources import write_period_features, write_static_features
from feature_repo.store import materialize_span
from salesdata.simulator import PRESETS, Preset, simulate
from serving.online import OnlineFeatureReader
from training.dataset import entity_rows
from training.features import compute_features, first_seen
from training.static_features import sku_attributes, store_attributes

RESULT = Path(__file__).parent / "results" / "features.json"
REDIS_DB = "127.0.0.1:6379,db=12"
# 16 stores x 25 SKUs: 400 series, so a lookup of 256 distinct entities exists.
LOOKUP_PRESET = Preset(n_stores=16, n_skus=25, n_days=120)


def write_sources(root: Path, data) -> pd.DataFrame:
    features = compute_features(data.sales, DAILY)
    write_period_features(root / "sources", features)
    write_static_features(root / "sources", store_attributes(data.stores), sku_attributes(data.skus))
    return features


class FeastResponseReader(OnlineFeatureReader):
    """The reader as it was before the provider's online_read: Feast's whole response path, then to_dict."""

    def _series_columns(self, pairs):
        refs = [f"{view.name}:{name}" for view, names in self.views for name in names]
        response = self.store.get_online_features(
            features=refs, entity_rows=[{"store_id": s, "sku_id": k} for s, k in pairs]
        ).to_dict(include_event_timestamps=True)
        return response, consistent_stamps(response, [stamp_column(names[0]) for _, names in self.views])


READERS = {"provider": OnlineFeatureReader, "get_online_features": FeastResponseReader}


def lookup(reader: OnlineFeatureReader, pairs: list[tuple[str, str]]) -> pd.DataFrame:
    return reader.read(pairs)[0]


def single_lookups(reader: OnlineFeatureReader, pairs: list[tuple[str, str]]) -> None:
    for pair in pairs:
        reader.read([pair])


def redis_reachable() -> bool:
    try:
        return bool(redis.Redis(db=12, socket_connect_timeout=2).ping())
    except redis.ConnectionError:
        return False


def online_lookups(root: Path, lookups: int) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    data = simulate(LOOKUP_PRESET)
    features = write_sources(root, data)
    latest = features["event_timestamp"].max().to_pydatetime()
    stores = {"sqlite": make_store(root, "sqlite", {"type": "sqlite", "path": str(root / "online.db")})}
    if redis_reachable():
        redis.Redis(db=12).flushdb()
        stores["redis"] = make_store(root, "redis", {"type": "redis", "connection_string": REDIS_DB})
    pairs = list(features[["store_id", "sku_id"]].drop_duplicates().itertuples(index=False, name=None))
    readers = {}
    for name, store in stores.items():
        materialize_span(store, latest, latest)
        # The reader the Bento keeps: service resolved once, every series read at start-up.
        for kind, reader_class in READERS.items():
            readers[f"{name}_{kind}"] = reader_class(store, FEATURE_SERVICE_NAME, DAILY)
            readers[f"{name}_{kind}"].read(pairs)
    gc.collect()
    gc.freeze()  # as the service does once it has started
    rng = np.random.default_rng(0)
    result = {"redis": "measured" if "redis" in stores else "unreachable, skipped", "sizes": {}}
    for size in (1, 64, 256):
        times = {name: [] for name in readers}
        for _ in range(lookups):
            sample = [pairs[i] for i in rng.choice(len(pairs), size, replace=False)]
            for name, reader in readers.items():
                times[name].append(seconds(lookup, reader, sample))
        result["sizes"][size] = {
            name: {"p50_ms": 1e3 * np.percentile(t, 50), "p99_ms": 1e3 * np.percentile(t, 99)}
            for name, t in times.items()
        }
        print(
            f"online lookup of {size:>3}: "
            + "  ".join(
                f"{n} p50 {v['p50_ms']:.2f} ms p99 {v['p99_ms']:.2f} ms" for n, v in result["sizes"][size].items()
            )
        )
    batched = {}
    for name, reader in readers.items():
        sample = pairs[:256]
        one_batch = statistics.median(seconds(lookup, reader, sample) for _ in range(20))
        singles = statistics.median(seconds(single_lookups, reader, sample) for _ in range(3))
        batched[name] = {
            "batched_per_entity_ms": 1e3 * one_batch / 256,
            "single_per_entity_ms": 1e3 * singles / 256,
            "single_over_batched": singles / one_batch,
        }
        print(f"{name}: 256 single lookups cost {singles / one_batch:.1f}x one batched lookup of 256")
    result["batched_vs_single_256"] = batched
    result["before_over_after_p50"] = {
        f"{store}_{size}": result["sizes"][size][f"{store}_get_online_features"]["p50_ms"]
        / result["sizes"][size][f"{store}_provider"]["p50_ms"]
        for store in stores
        for size in result["sizes"]
    }
    print("get_online_features over provider read, p50:", _rounded(result["before_over_after_p50"]))
    if "redis" in stores:
        redis.Redis(db=12).flushdb()
    return result


def _rounded(ratios: dict) -> dict:
    return {key: round(value, 2) for key, value in ratios.items()}


def retrieval(root: Path, repeats: int) -> dict:
    """DuckDB on samples and on the whole default training set; the file store (dask) once, capped."""
    data = simulate(PRESETS["default"])
    write_sources(root, data)
    entities = entity_rows(data.sales, 14, DAILY)
    duck = make_store(root, "offline_duckdb", {"type": "sqlite", "path": str(root / "duckdb.db")}, "duckdb")
    result: dict = {"entity_rows_all": len(entities)}
    for size in (2000, 8000, len(entities)):
        sample = entities.sample(size, random_state=size)
        result[f"duckdb_{size}_median_s"] = statistics.median(seconds(retrieve, duck, sample) for _ in range(repeats))
        print(f"default, {size} entity rows: duckdb {result[f'duckdb_{size}_median_s']:.2f}s")
    result["file_2000"] = file_store_seconds(root, entities.sample(2000, random_state=2000), limit_s=300)
    print(f"default, 2000 entity rows: file {result['file_2000']}")
    return result


def materialization(root: Path, repeats: int) -> dict:
    """One new day against the whole history: feature computation, then the online store."""
    data = simulate(PRESETS["default"])
    features = write_sources(root, data)
    store = make_store(root, "materialize", {"type": "sqlite", "path": str(root / "materialize.db")})
    days = sorted(features["event_timestamp"].unique())
    first, last = days[0].to_pydatetime(), days[-1].to_pydatetime()
    newest = pd.Timestamp(last).tz_localize(None)
    lookback_start = shift_period(newest, -DAILY.lookback, "D")
    window = data.sales[data.sales["date"] >= lookback_start]
    seen = first_seen(data.sales[data.sales["date"] < newest])
    one_day = partial(compute_features, window, DAILY, first_seen=seen, since=newest)
    timings = {
        "compute_full_s": [seconds(compute_features, data.sales, DAILY) for _ in range(repeats)],
        "compute_one_day_s": [seconds(one_day) for _ in range(repeats)],
        "materialize_full_s": [seconds(materialize_span, store, first, last) for _ in range(repeats)],
        "materialize_one_day_s": [seconds(materialize_span, store, last, last) for _ in range(repeats)],
    }
    medians = {name: statistics.median(t) for name, t in timings.items()}
    for stage in ("compute", "materialize"):
        full, one = medians[f"{stage}_full_s"], medians[f"{stage}_one_day_s"]
        print(f"{stage}: full history ({len(days)} days) {full:.3f}s, one new day {one:.3f}s ({full / one:.1f}x)")
        medians[f"{stage}_full_over_one_day"] = full / one
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lookups", type=int, default=300, help="Lookups per size and store.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--online-only", action="store_true", help="Only the online lookups, replacing those recorded.")
    parser.add_argument(
        "--large", action="store_true", help="Only the large-preset retrieval (long), added to the recorded results."
    )
    args = parser.parse_args()
    if args.large:
        results = json.loads(RESULT.read_text())
        results["training_set_retrieval"]["large"] = large_retrieval(args.repeats)
    elif args.online_only:
        results = json.loads(RESULT.read_text())
        with tempfile.TemporaryDirectory() as tmp:
            results["online_lookup"] = online_lookups(Path(tmp) / "online", args.lookups)
    else:
        results = {"machine": f"{platform.machine()}, {platform.python_version()}"}
        with tempfile.TemporaryDirectory() as tmp:
            results["online_lookup"] = online_lookups(Path(tmp) / "online", args.lookups)
        with tempfile.TemporaryDirectory() as tmp:
            results["training_set_retrieval"] = {"default": retrieval(Path(tmp), args.repeats)}
        with tempfile.TemporaryDirectory() as tmp:
            results["materialization"] = materialization(Path(tmp), args.repeats)
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
