"""The nightly replenishment file: reorder points and orders for every series, as POST /replenishment answers them.

    demandops plan --output plan.csv --lead-time 2 --service-level 0.95 [--items items.csv]

Each series gets the command's lead time, review period and service level unless the items file
gives its own. The items file is a CSV with the columns store_id, sku_id and any of lead_time,
review_period, service_level, on_hand, on_order (an empty cell takes the command's value, or no
position for on_hand). The items go through Predictor.replenish, the service's own path, so the
file holds what the endpoint would have answered.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from demandops.errors import DataContractError, DemandopsError
from demandops.settings import Settings
from lifecycle.registry import ModelRegistry
from monitoring.decision_log import decision_log_dir, frame_decisions
from monitoring.lead_time_evidence import served_path
from monitoring.prediction_log import write_rows
from serving.batch import champion_predictor, check_output, write_frame
from serving.errors import RequestRefused, field_path
from serving.predictor import Predictor
from serving.schemas import ReplenishmentItem, ReplenishmentRequest, ReplenishmentResult

ITEM_COLUMNS = ("lead_time", "review_period", "service_level", "on_hand", "on_order")
INTEGER_COLUMNS = ("lead_time", "review_period", "on_hand", "on_order")
PLAN_COLUMNS = [
    "store_id", "sku_id", "origin_date", "lead_time", "review_period", "service_level", "expected_demand",
    "reorder_point", "order_up_to", "safety_stock", "on_hand", "on_order", "suggested_order",
    "stockout_probability", "model_version", "degraded",
]  # fmt: skip


@dataclass(frozen=True)
class Policy:
    """The command's values, for every series the items file does not set."""

    lead_time: int = 1
    review_period: int = 1
    service_level: float = 0.95


@dataclass(frozen=True)
class NightlyPlan:
    path: Path
    model_version: str
    series: int
    degraded_series: int
    unserved: list[tuple[str, str]]
    refitted_rows: int = 0  # lead-time demands the tables were refitted on (0: the bundle's tables)


def plan_all(
    settings: Settings, registry: ModelRegistry, output: Path, policy: Policy, items_file: Path | None = None
) -> NightlyPlan:
    """Plan every series the Production model serves and write `output` (.parquet or .csv); nothing
    is written when a setting or a row of the items file is refused."""
    check_output(output)
    given = read_items(items_file) if items_file is not None else pd.DataFrame(columns=["store_id", "sku_id"])
    version, predictor = champion_predictor(settings, registry)
    refitted = _recalibrate(predictor, settings) if settings.serving.recalibrate_lead_time else 0
    unknown = set(zip(given["store_id"], given["sku_id"], strict=True)) - set(predictor.all_pairs)
    if unknown:
        named = ", ".join(f"{s}/{k}" for s, k in sorted(unknown)[:10])
        raise DataContractError(f"{items_file}: {len(unknown)} series the Production model does not know: {named}")
    unserved = set(predictor.unserved)
    pairs = [pair for pair in predictor.all_pairs if pair not in unserved]
    items = _items(pairs, given, policy)
    results: list[ReplenishmentResult] = []
    chunk = settings.serving.max_items_per_request
    for start in range(0, len(items), chunk):
        part = items[start : start + chunk]
        try:
            predictor.admit(ReplenishmentRequest(items=part))
        except RequestRefused as refused:  # what the endpoint answers 4xx to, said for the whole file
            raise DemandopsError(_whole_file_message(refused, part)) from None
        results += predictor.replenish(part)
    frame = pd.DataFrame([r.model_dump() for r in results], columns=PLAN_COLUMNS)
    frame["origin_date"] = pd.to_datetime(frame["origin_date"])
    # The position each order was computed from (an answer of the endpoint does not repeat it):
    # a planner reading the file sees what it assumed. Results come in the items' order.
    frame["on_hand"] = pd.array([item.on_hand for item in items], dtype="Int64")
    frame["on_order"] = pd.array([item.on_order for item in items], dtype="Int64")
    frame["suggested_order"] = frame["suggested_order"].astype("Int64")  # whole units, empty without on_hand
    write_frame(frame, output)
    if settings.serving.prediction_log:  # the nightly file's promises are scored like the endpoint's
        request_id = f"plan-{uuid.uuid4().hex}"
        write_rows(decision_log_dir(settings), frame_decisions(request_id, frame), request_id)
    return NightlyPlan(output, version, len(results), int(frame["degraded"].sum()), predictor.unserved, refitted)


def _recalibrate(predictor: Predictor, settings: Settings) -> int:
    """The lead-time tables the service would answer with now (serving/predictor.py)."""
    if not predictor.bundle.meta.lead_time:
        return 0
    try:
        return predictor.recalibrate(settings.lake_dir)
    except (OSError, ValueError) as exc:
        raise DemandopsError(
            f"cannot read the lead-time tables from {served_path(settings.lake_dir, predictor.model_version)}: {exc}; "
            "DEMANDOPS_SERVING__RECALIBRATE_LEAD_TIME=false plans with the tables as trained"
        ) from None


def read_items(path: Path) -> pd.DataFrame:
    """The items file, one row per series; refused naming the row and the column when malformed."""
    try:
        frame = pd.read_csv(path, dtype={"store_id": str, "sku_id": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataContractError(f"cannot read the items file {path}: {exc}") from None
    extra = set(frame.columns) - {"store_id", "sku_id", *ITEM_COLUMNS}
    missing = {"store_id", "sku_id"} - set(frame.columns)
    if missing or extra:
        raise DataContractError(
            f"{path}: columns must be store_id, sku_id and any of {', '.join(ITEM_COLUMNS)}; "
            + (f"missing {', '.join(sorted(missing))}" if missing else f"unexpected {', '.join(sorted(extra))}")
        )
    duplicated = frame.duplicated(["store_id", "sku_id"])
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise DataContractError(f"{path}: series {row['store_id']}/{row['sku_id']} is listed more than once")
    return frame


def _items(pairs: list[tuple[str, str]], given: pd.DataFrame, policy: Policy) -> list[ReplenishmentItem]:
    """One validated item per series: the file's values where it has them, the policy's elsewhere."""
    rows = {(r["store_id"], r["sku_id"]): (n, r) for n, r in enumerate(given.to_dict("records"))}
    items = []
    for store_id, sku_id in pairs:
        line, row = rows.get((store_id, sku_id), (None, {}))
        values = {"store_id": store_id, "sku_id": sku_id, **policy.__dict__}
        values |= {k: _cell(k, v) for k, v in row.items() if k in ITEM_COLUMNS and not pd.isna(v)}
        try:
            items.append(ReplenishmentItem.model_validate(values, strict=False))
        except ValidationError as exc:
            where = f"row {line + 2} of the items file" if line is not None else "the command's options"
            fields = ", ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in exc.errors())
            raise DataContractError(f"series {store_id}/{sku_id}, {where}: {fields}") from None
    return items


def _cell(column: str, value):
    """A CSV cell as the schema's type: whole numbers stay whole (3.0 -> 3), others are left to refuse."""
    if column in INTEGER_COLUMNS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _whole_file_message(refused: RequestRefused, part: list[ReplenishmentItem]) -> str:
    """A refusal of a chunk of items, said with the series at fault rather than its place in the chunk."""
    named = []
    for detail in refused.details[:10]:
        field = detail.get("field", "")
        if field.startswith("items["):
            n = int(field[len("items[") : field.index("]")])
            named.append(f"{part[n].store_id}/{part[n].sku_id} ({detail['message']})")
    return refused.message + (": " + ", ".join(named) if named else "")
