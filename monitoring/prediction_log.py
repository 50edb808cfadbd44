"""The prediction log: every forecast served, one row per answered item, as a Parquet dataset in the lake.

Where: `<lake>/prediction_log/origin=YYYY-MM-DD/<writer>-<n>.parquet`, one file per flush of one
writer (a Bento worker, a `demandops forecast` run) and forecast origin, so that writers never share
a file and need no lock, and scoring a period reads only the origins whose horizon reaches it.
Parquet in the lake rather than a table of the MLflow database because its readers are columnar
joins of tens of thousands of series with the actuals (pyarrow reads them, and DuckDB, the offline
store's engine, can), because serving then depends on no database server to log, and because the
lake is where the actuals already are. Beyond one machine the lake folder is a shared volume.

Writing never slows or fails a request: the service hands over the answer's bytes, already built
for the client, to a bounded buffer, as one JSON Lines entry (request id, time in ms, the answer,
unparsed: about 2 µs); a background thread writes the buffer to a spool file
(`<log>/spool/<writer>-<n>.jsonl`) every `flush_interval_s`. Whoever reads the log first turns the
spool into the Parquet files (`compact_spool`), so the serving process never parses an answer or
builds a table, only writes bytes. A full buffer drops the newest answers and counts them; a crash
loses at most the buffer (one flush interval of answers). Logged against unlogged, /forecast at 64
clients measures 0.89-1.06 over six runs of bench/serve.py, the spread of the bench itself (an
A/A run of two logging servers gave 0.97): the log's own work is 0.2% of a request's CPU.

Repeated identical requests are all logged (a consumer's retries are part of the record) and
scored once: `scored_forecasts` keeps one forecast per (model version, series, origin, target).
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from demandops.settings import Settings

log = logging.getLogger(__name__)

LOG_FOLDER = "prediction_log"
SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("logged_at", pa.timestamp("ms", tz="UTC")),
        ("model_version", pa.string()),
        ("store_id", pa.string()),
        ("sku_id", pa.string()),
        ("origin_date", pa.date32()),
        ("degraded", pa.bool_()),
        ("dates", pa.list_(pa.date32())),
        ("p10", pa.list_(pa.float32())),
        ("p50", pa.list_(pa.float32())),
        ("p90", pa.list_(pa.float32())),
    ]
)
KEYS = ["model_version", "store_id", "sku_id", "origin_date", "date"]
READ_COLUMNS = {
    "model_version": "object",
    "store_id": "object",
    "sku_id": "object",
    "origin_date": "datetime64[ns]",
    "date": "datetime64[ns]",
    "step": "int64",
    "p10": "float64",
    "p50": "float64",
    "p90": "float64",
    "degraded": "bool",
    "request_id": "object",
    "logged_at": "datetime64[ns, UTC]",
}


def log_dir(settings: Settings) -> Path:
    """The log's folder: configured, or the lake's prediction_log/."""
    return settings.monitoring.prediction_log_dir or settings.lake_dir / LOG_FOLDER


ITEM_FIELDS = ("model_version", "store_id", "sku_id", "origin_date", "degraded")


SPOOL = "spool"


def spool_line(request_id: str, logged_at_ms: int, answer: bytes) -> bytes:
    """One JSON Lines entry of the spool (request id, time in ms since the epoch, the JSON list /forecast
    sent): the answer goes in as the bytes the client got, never parsed here."""
    return b'{"request_id":%s,"logged_at_ms":%d,"answer":%s}\n' % (orjson.dumps(request_id), logged_at_ms, answer)


def answers_table(spooled: bytes) -> pa.Table:
    """Log rows of a spool file's answers. orjson, flat lists and Arrow's casts: json.loads and a row of
    Python objects per item cost 2.3 times as much."""
    items: dict[str, list] = {name: [] for name in ("request_id", "logged_at", *ITEM_FIELDS)}
    periods: dict[str, list] = {name: [] for name in ("date", "p10", "p50", "p90")}
    lengths = []
    for line in spooled.splitlines():
        entry = orjson.loads(line)
        for item in entry["answer"]:
            items["request_id"].append(entry["request_id"])
            items["logged_at"].append(entry["logged_at_ms"])
            for name in ITEM_FIELDS:
                items[name].append(item[name])
            lengths.append(len(item["forecast"]))
            for period in item["forecast"]:
                for name, values in periods.items():
                    values.append(period[name])
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths, dtype="int32")]), pa.int32())
    columns = {
        **items,
        "logged_at": pa.array(items["logged_at"], pa.timestamp("ms", tz="UTC")),
        "origin_date": pa.array(items["origin_date"], pa.string()).cast(pa.date32()),
        "dates": pa.ListArray.from_arrays(offsets, pa.array(periods["date"], pa.string()).cast(pa.date32())),
        **{q: pa.ListArray.from_arrays(offsets, pa.array(periods[q], pa.float32())) for q in ("p10", "p50", "p90")},
    }
    return pa.table(columns, schema=SCHEMA)


def compact_spool(directory: Path, table_of: Callable[[bytes], pa.Table] | None = None) -> int:
    """Turn every complete spool file into the log's Parquet files, named after it, and delete it; the
    number of spool files found. `table_of` reads a spool file's answers: the forecasts' `answers_table`
    unless another log says otherwise (monitoring/decision_log.py). Safe to repeat and to run twice at
    once: a file compacted again is rewritten under the same names, whole (write_rows), so no answer is
    ever counted twice. A spool file that does not parse is set aside as `<name>.corrupt`, named in the
    error log, and the rest go on."""
    files = sorted((directory / SPOOL).glob("*.jsonl"))
    for spooled in files:
        try:
            table = (table_of or answers_table)(spooled.read_bytes())
        except FileNotFoundError:  # compacted meanwhile by another reader
            continue
        except (orjson.JSONDecodeError, KeyError, TypeError, pa.ArrowInvalid) as exc:
            log.error("prediction log: %s is not a spool file of answers (%s); set aside as .corrupt", spooled, exc)
            spooled.replace(spooled.with_suffix(".corrupt"))
            continue
        write_rows(directory, table, spooled.stem)
        spooled.unlink(missing_ok=True)
    return len(files)


class PredictionLog:
    """A bounded buffer of served answers, already in the spool's format, written by a background thread.

    An answer is one line appended to a bytearray, so no object per answer outlives its request and
    a flush only writes bytes (2.2 µs per answer in all, against 2.7-4.8 µs for a queue of tuples
    formatted at flush time).
    """

    def __init__(
        self,
        directory: Path,
        *,
        capacity_bytes: int,
        flush_interval_s: float,
        writer: str | None = None,
        on_written: Callable[[int], object] = lambda answers: None,
        on_dropped: Callable[[int], object] = lambda answers: None,
    ):
        self.directory = directory
        self.capacity_bytes = capacity_bytes
        self.flush_interval_s = flush_interval_s
        self.writer = writer or f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
        self.dropped = 0  # answers not logged: the buffer was full, or their flush failed
        self.written = 0  # answers written to the spool
        self._on_written, self._on_dropped = on_written, on_dropped  # e.g. Prometheus counters
        self._buffer = bytearray()
        self._buffered = 0  # answers in the buffer
        self._lock = threading.Lock()
        self._files = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PredictionLog:
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        return self

    def record(self, request_id: str, answer: bytes) -> bool:
        """Buffer one answer (the JSON list /forecast sent); False, and counted, when the buffer is full."""
        line = spool_line(request_id, time.time_ns() // 1_000_000, answer)
        with self._lock:
            if len(self._buffer) + len(line) > self.capacity_bytes:
                self.dropped += 1
                self._on_dropped(1)
                return False
            self._buffer += line
            self._buffered += 1
        return True

    def flush(self) -> int:
        """Write what is buffered now to a new spool file; the number of answers written."""
        with self._lock:
            taken, answers = self._buffer, self._buffered
            self._buffer, self._buffered = bytearray(), 0
        if not answers:
            return 0
        try:
            write_spool(self.directory, taken, f"{self.writer}-{next(self._files)}")
        except OSError as exc:  # a full or unwritable disk loses these answers, never a request
            self.dropped += answers
            self._on_dropped(answers)
            log.error("prediction log: %d answers not written to %s: %s", answers, self.directory, exc)
            return 0
        self.written += answers
        self._on_written(answers)
        return answers

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()


def write_spool(directory: Path, lines: bytes | bytearray, name: str) -> None:
    """One spool file, appearing whole: compaction never reads a file still being written."""
    folder = directory / SPOOL
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{name}.jsonl.partial"
    partial.write_bytes(lines)
    partial.rename(folder / f"{name}.jsonl")


def write_rows(directory: Path, table: pa.Table, name: str) -> int:
    """Write log rows as one file per forecast origin; the number of rows. Each file appears whole,
    and two writers of the same name (two readers compacting one spool file) never share a partial file."""
    origins = table["origin_date"]
    for origin in sorted(set(origins.to_pylist())):
        folder = directory / f"origin={origin.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{name}.{os.getpid()}-{threading.get_ident()}.parquet.partial"
        pq.write_table(table.filter(pc.equal(origins, pa.scalar(origin, pa.date32()))), partial)
        partial.replace(folder / f"{name}.parquet")
    return table.num_rows


def frame_rows(request_id: str, forecasts: pd.DataFrame) -> pa.Table:
    """Log rows of a batch-scoring frame (one row per series and target period; serving/batch.py)."""
    logged_at = datetime.now(UTC)
    keys = ["model_version", "store_id", "sku_id", "origin_date", "degraded"]
    grouped = forecasts.sort_values([*keys, "date"]).groupby(keys, sort=False)
    columns: dict[str, list] = {name: [] for name in SCHEMA.names}
    for (version, store_id, sku_id, origin, degraded), rows in grouped:
        for name, value in zip(keys, (version, store_id, sku_id, origin.date(), degraded), strict=True):
            columns[name].append(value)
        columns["dates"].append([d.date() for d in rows["date"]])
        for quantile in ("p10", "p50", "p90"):
            columns[quantile].append(rows[quantile].tolist())
    columns["request_id"] = [request_id] * len(columns["store_id"])
    columns["logged_at"] = [logged_at] * len(columns["store_id"])
    return pa.table(columns, schema=SCHEMA)


def read_log(directory: Path, *, targets: Sequence[date], earliest_origin: date) -> pd.DataFrame:
    """Logged forecasts of the target dates given, one row per item and target: `KEYS`, `step` (1 is
    the first period after the origin), p10/p50/p90, request_id, logged_at, degraded. Reads only the
    files of origins from `earliest_origin` (a horizon before the first target) to the last target,
    after compacting the spool."""
    compact_spool(directory)
    last = max(targets)
    folders = [f for f in sorted(directory.glob("origin=*")) if earliest_origin <= origin_of(f) < last]
    files = [str(f) for folder in folders for f in sorted(folder.glob("*.parquet"))]
    if not files:
        return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in READ_COLUMNS.items()})
    table = ds.dataset(files, schema=SCHEMA, format="parquet").to_table()
    lengths = pc.list_value_length(table["dates"]).to_numpy(zero_copy_only=False)
    parents = pc.list_parent_indices(table["dates"]).to_numpy()
    starts = np.cumsum(lengths) - lengths
    flat = {
        "date": pd.to_datetime(pc.list_flatten(table["dates"]).to_numpy(zero_copy_only=False)),
        "step": np.arange(len(parents)) - starts[parents] + 1,
        **{q: pc.list_flatten(table[q]).to_numpy().astype("float64") for q in ("p10", "p50", "p90")},
    }
    items = table.select(["request_id", "logged_at", "model_version", "store_id", "sku_id", "origin_date", "degraded"])
    rows = items.take(pa.array(parents)).to_pandas()
    rows["origin_date"] = pd.to_datetime(rows["origin_date"])
    rows = rows.assign(**flat)
    return rows[rows["date"].isin(pd.to_datetime(list(targets)))].reset_index(drop=True)[list(READ_COLUMNS)]


def origin_of(folder: Path) -> date:
    """The origin of a log folder `origin=YYYY-MM-DD` (written by write_rows)."""
    return date.fromisoformat(folder.name.removeprefix("origin="))


def scored_forecasts(logged: pd.DataFrame) -> pd.DataFrame:
    """One forecast per (model version, series, origin, target): the first one logged."""
    return logged.sort_values("logged_at", kind="stable").drop_duplicates(KEYS, keep="first")
