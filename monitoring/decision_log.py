"""The decision log: every reorder point served by /replenishment, one row per answered item.

The prediction log (monitoring/prediction_log.py) keeps the forecasts, scored per target period. A
replenishment answer holds no per-period forecast, only a promise over a lead time: demand over the
L periods after its origin stays at or below `reorder_point` with probability `service_level`. That
promise is scored once all L periods are gated (monitoring/service_level.py), so that the loop sees
the cycle service level consumers actually get, not only the backtest's.

It is the prediction log's machinery with its own folder (`<lake>/decision_log/origin=YYYY-MM-DD/`)
and its own rows: the service hands over the answer's bytes, a background thread spools them, and
the first reader compacts the spool into Parquet.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from demandops.settings import Settings
from monitoring.prediction_log import ITEM_FIELDS, SCHEMA, compact_spool, origin_of

DECISION_FOLDER = "decision_log"
INTEGERS = ("lead_time", "review_period", "reorder_point", "order_up_to")
# What every answer of either log holds (the prediction log's item fields), then the promise.
DECISION_SCHEMA = pa.schema(
    [
        *(SCHEMA.field(name) for name in ("request_id", "logged_at", *ITEM_FIELDS)),
        *((name, pa.int32()) for name in INTEGERS),
        ("service_level", pa.float32()),
    ]
)
ANSWER_FIELDS = tuple(name for name in DECISION_SCHEMA.names if name not in ("request_id", "logged_at"))
# One promise per (model version, series, origin, lead time, level), however often it was asked for.
DECISION_KEYS = ["model_version", "store_id", "sku_id", "origin_date", "lead_time", "service_level"]


def decision_log_dir(settings: Settings) -> Path:
    """Beside the prediction log: the lake's decision_log/, or the configured log folder's sibling."""
    configured = settings.monitoring.prediction_log_dir
    return configured.parent / DECISION_FOLDER if configured is not None else settings.lake_dir / DECISION_FOLDER


def decisions_table(spooled: bytes) -> pa.Table:
    """Log rows of a spool file of /replenishment answers (the JSON lists the clients got)."""
    columns: dict[str, list] = {name: [] for name in DECISION_SCHEMA.names}
    for line in spooled.splitlines():
        entry = orjson.loads(line)
        for item in entry["answer"]:
            columns["request_id"].append(entry["request_id"])
            columns["logged_at"].append(entry["logged_at_ms"])
            for name in ANSWER_FIELDS:
                columns[name].append(item[name])
    columns["origin_date"] = pa.array(columns["origin_date"], pa.string()).cast(pa.date32())
    columns["logged_at"] = pa.array(columns["logged_at"], pa.timestamp("ms", tz="UTC"))
    return pa.table(columns, schema=DECISION_SCHEMA)


def frame_decisions(request_id: str, plan: pd.DataFrame) -> pa.Table:
    """Log rows of a nightly plan (serving/nightly_plan.py: one row per series, the endpoint's fields)."""
    rows = plan[list(ANSWER_FIELDS)].assign(
        request_id=request_id,
        logged_at=pd.Timestamp(datetime.now(UTC)).floor("ms"),  # the log keeps milliseconds
        origin_date=pd.to_datetime(plan["origin_date"]).dt.date,
    )
    return pa.Table.from_pandas(rows[DECISION_SCHEMA.names], schema=DECISION_SCHEMA, preserve_index=False)


def read_decisions(directory: Path, *, first_origin: date, last_origin: date) -> pd.DataFrame:
    """The decisions of origins from `first_origin` to `last_origin`, one per `DECISION_KEYS` (the first
    logged), after compacting the spool."""
    compact_spool(directory, decisions_table)
    folders = [f for f in sorted(directory.glob("origin=*")) if first_origin <= origin_of(f) <= last_origin]
    files = [str(f) for folder in folders for f in sorted(folder.glob("*.parquet"))]
    if not files:
        return DECISION_SCHEMA.empty_table().to_pandas().assign(origin_date=pd.Series(dtype="datetime64[ns]"))
    rows = ds.dataset(files, schema=DECISION_SCHEMA, format="parquet").to_table().to_pandas()
    rows["origin_date"] = pd.to_datetime(rows["origin_date"])
    rows["service_level"] = rows["service_level"].astype("float64").round(4)  # float32 in the file
    first = rows.sort_values("logged_at", kind="stable").drop_duplicates(DECISION_KEYS, keep="first")
    return first.reset_index(drop=True)
