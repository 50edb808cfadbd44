"""Batch scoring: every series forecast by the Production model, written as one Parquet or CSV file.

For planning systems that read a nightly file instead of calling the endpoint. The items go
through Predictor, the service's own path (admission, one online-feature read per chunk, the
bundle, the same result rows), so the file holds what the endpoint would have answered.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from demandops.errors import DemandopsError, ModelNotFoundError
from demandops.files import write_atomically
from demandops.settings import Settings
from feature_repo.store import open_store
from lifecycle.registry import ModelRegistry
from lifecycle.states import ALIASES, State
from monitoring.prediction_log import frame_rows, log_dir, write_rows
from serving.errors import RequestRefused
from serving.predictor import Predictor
from serving.schemas import ForecastItem, ForecastRequest, ForecastResult
from training.tracking import download_bundle

FORMATS = {".parquet": "parquet", ".csv": "csv"}


@dataclass(frozen=True)
class BatchScore:
    path: Path
    model_version: str
    series: int
    rows: int
    degraded_series: int
    unserved: list[tuple[str, str]]  # series the model knows but the online store holds nothing for


def score_all(settings: Settings, registry: ModelRegistry, output: Path, *, horizon: int | None = None) -> BatchScore:
    """Forecast every series the Production model knows and write `output` (.parquet or .csv)."""
    check_output(output)
    version, predictor = champion_predictor(settings, registry)
    bundle = predictor.bundle
    horizon = horizon or bundle.meta.horizon
    unserved = set(predictor.unserved)
    pairs = [pair for pair in predictor.all_pairs if pair not in unserved]
    results: list[ForecastResult] = []
    chunk = settings.serving.max_items_per_request
    for start in range(0, len(pairs), chunk):
        items = [ForecastItem(store_id=s, sku_id=k, horizon=horizon) for s, k in pairs[start : start + chunk]]
        try:
            predictor.admit(ForecastRequest(items=items))
        except RequestRefused as refused:  # what the endpoint answers 4xx to, e.g. a horizon beyond the model's
            raise DemandopsError(refused.message) from None
        results += predictor.forecast(items)
    frame = forecast_rows(results)
    write_frame(frame, output)
    if settings.serving.prediction_log:  # the nightly file is served forecasts too: scored like the endpoint's
        request_id = f"batch-{uuid.uuid4().hex}"
        write_rows(log_dir(settings), frame_rows(request_id, frame), request_id)
    return BatchScore(
        path=output,
        model_version=version,
        series=len(results),
        rows=len(frame),
        degraded_series=sum(r.degraded for r in results),
        unserved=predictor.unserved,
    )


def check_output(output: Path) -> None:
    if output.suffix.lower() not in FORMATS:
        raise DemandopsError(f"cannot write {output.name}: the output must end in .parquet or .csv")


def champion_predictor(settings: Settings, registry: ModelRegistry) -> tuple[str, Predictor]:
    """The Production version and a Predictor over its bundle and the online store, features loaded."""
    champion = registry.by_alias(ALIASES[State.PRODUCTION])
    if champion is None:
        raise ModelNotFoundError("no version is in Production; promote one first (demandops lifecycle promote)")
    with tempfile.TemporaryDirectory(prefix="demandops-score-") as scratch:
        bundle = download_bundle(settings.mlflow_tracking_uri, champion.run_id, Path(scratch))
    predictor = Predictor(bundle, open_store(settings), model_version=champion.version, limits=settings.serving)
    predictor.load_features()
    return champion.version, predictor


def forecast_rows(results: list[ForecastResult]) -> pd.DataFrame:
    """One row per series and target period: the service's answer, flattened."""
    rows = [
        {
            "store_id": r.store_id,
            "sku_id": r.sku_id,
            "origin_date": r.origin_date,
            "date": q.date,
            "p10": q.p10,
            "p50": q.p50,
            "p90": q.p90,
            "model_version": r.model_version,
            "degraded": r.degraded,
        }
        for r in results
        for q in r.forecast
    ]
    frame = pd.DataFrame(rows)
    for column in ("origin_date", "date"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def write_frame(frame: pd.DataFrame, output: Path) -> None:
    """Write beside the target and rename: a reader never sees half a file, a failure keeps the old one."""
    if FORMATS[output.suffix.lower()] == "parquet":
        write_atomically(output, lambda partial: frame.to_parquet(partial, index=False))
    else:
        write_atomically(output, lambda partial: frame.to_csv(partial, index=False, date_format="%Y-%m-%d"))
