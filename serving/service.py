"""The BentoML service: POST /v1/forecast and POST /v1/replenishment with adaptive batching,
/v1/metadata, and the probes (routes: serving/routes.py).

The Bento build writes bento_manifest.json beside this file: it pins the exact model version
(referenced at class scope so it is packaged) and the feature-store configuration. Limits come
from DEMANDOPS_SERVING__* (demandops/settings.py, ServingSettings), read when the Bento starts.

Requests pass ForecastGateway (serving/gateway.py) first, which refuses whatever a batch must not
meet; /healthz and /readyz are BentoML's, /readyz asking __is_ready__ below.

BentoML's supervisor process imports this module too, only to read the service's configuration: the
worker's runtime (Feast, torch, pandas, pyarrow, MLflow) is imported in __init__, which runs in the
workers alone. Imported here, it was half the CPU of a Bento's start-up, and a blue-green switch
under load waits for that start-up (bench/deploy_switch.py).
"""

from __future__ import annotations

import gc
import json
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import bentoml
from bentoml.validators import ContentType

from demandops.logs import use_json_logs
from demandops.settings import get_settings
from serving import metrics
from serving.api_keys import KeyStore
from serving.gateway import ForecastGateway
from serving.key_guard import KeyGuard
from serving.routes import ALIASES, BATCHED_ROUTES, FORECAST, METADATA, REPLENISHMENT
from serving.schemas import (
    ForecastItem,
    ForecastRequest,
    ForecastResult,
    ReplenishmentItem,
    ReplenishmentRequest,
    ReplenishmentResult,
)
from serving.tracing import bentoml_tracing, start_exporting

if TYPE_CHECKING:
    from monitoring.prediction_log import PredictionLog

HERE = Path(__file__).parent
MANIFEST_FILE = HERE / "bento_manifest.json"
FEAST_DIR = HERE / "feast"
log = logging.getLogger(__name__)


def _manifest() -> dict:
    if not MANIFEST_FILE.is_file():
        raise FileNotFoundError(
            f"{MANIFEST_FILE} is missing: serve a Bento built by the deployment asset (make serve), "
            "not the source folder"
        )
    return json.loads(MANIFEST_FILE.read_text())


MANIFEST = _manifest()
SETTINGS = get_settings()
LIMITS = SETTINGS.serving
# Declared, so that BentoML does not derive the media type from the JSON schema on every answer
# (that derivation was 21% of the service's CPU under load: bench/README.md, Serving).
JSON = ContentType("application/json")
# The batched routes: BentoML's access log and tracing middleware skip them unless the settings
# access_log and trace_requests say otherwise (bench/http_path.py measured what they cost). Both sit
# in front of the gateway, so they see an alias's own path.
FORECAST_ROUTES = (*BATCHED_ROUTES, *(alias for alias, route in ALIASES.items() if route in BATCHED_ROUTES))
QUIET_ROUTES = ("/metrics", "/healthz", "/livez", "/readyz")  # BentoML's own default skip list


@bentoml.service(
    name="demand_forecaster_service",
    # BentoML's own timeout is a backstop behind the gateway's deadline, which answers 503 first.
    traffic={"timeout": LIMITS.request_deadline_s + 20},
    workers=LIMITS.workers,  # each a process with its own model, reader and prediction-log file
    logging={"access": {"skip_paths": [*QUIET_ROUTES, *([] if LIMITS.access_log else FORECAST_ROUTES)]}},
    tracing=bentoml_tracing(LIMITS, list(FORECAST_ROUTES)),  # OTLP when an endpoint is set
)
class DemandForecastService:
    model_ref = bentoml.models.BentoModel(MANIFEST["bento_model_tag"])

    def __init__(self) -> None:
        # The worker's runtime, imported here and not by the supervisor (see the module's docstring).
        from feature_repo.store import open_store_failing_fast
        from serving.live_gauges import LiveGauges
        from serving.predictor import Predictor
        from serving.registry_state import LifecycleStateReader
        from training.bundle import ForecasterBundle

        use_json_logs()
        self.tracer_provider = start_exporting(LIMITS, str(MANIFEST["model_version"]))
        self.bundle = ForecasterBundle.load(Path(self.model_ref.path))
        meta = self.bundle.meta
        self.predictor = Predictor(
            self.bundle,
            # A dead Redis must be known within a lookup's timeout, not after redis-py's retries.
            open_store_failing_fast(FEAST_DIR, timeout_s=LIMITS.lookup_timeout_s),
            model_version=str(MANIFEST["model_version"]),
            limits=LIMITS,
        )
        self.lifecycle = LifecycleStateReader(SETTINGS, MANIFEST["model_name"], str(MANIFEST["model_version"]))
        metrics.MODEL_INFO.labels(
            model_name=MANIFEST["model_name"],
            model_version=str(MANIFEST["model_version"]),
            lifecycle_state_at_build=MANIFEST["lifecycle_state"],
            feature_service=meta.feature_service,
            frequency=meta.frequency,
        ).set(1)
        # Forecasts to the prediction log, reorder points to the decision log (monitoring/).
        from monitoring.decision_log import decision_log_dir
        from monitoring.prediction_log import log_dir

        self.prediction_log = _answer_log(log_dir(SETTINGS), metrics.LOG_ANSWERS, metrics.LOG_DROPPED)
        self.decision_log = _answer_log(
            decision_log_dir(SETTINGS), metrics.DECISION_LOG_ANSWERS, metrics.DECISION_LOG_DROPPED
        )
        recalibrate = self.predictor.recalibrate if LIMITS.recalibrate_lead_time and meta.lead_time else None
        self.live_gauges = LiveGauges(SETTINGS.lake_dir, recalibrate=recalibrate).start()
        self._load_features()
        # Move everything loaded so far (Feast, pandas, the model) out of the collector's view:
        # full collections over that heap paused requests for ~300 ms at p99.
        gc.collect()
        gc.freeze()

    def _load_features(self) -> None:
        """Read every series' features once; when the store cannot be read, readiness probes retry."""
        from serving.resilience import STORE_FAILURES

        try:
            self.predictor.load_features()
        except STORE_FAILURES as exc:
            log.warning("online features not loaded yet (%s: %s); /readyz answers 503", type(exc).__name__, exc)
            return
        if self.predictor.unserved:
            log.warning(
                "%d of %d series have no complete online features and are refused until the store holds them",
                len(self.predictor.unserved),
                len(self.predictor.all_pairs),
            )

    def __is_ready__(self) -> bool:
        """200 only while the online store serves complete, current features for some series now."""
        from serving.resilience import STORE_FAILURES  # imported already, by __init__

        try:
            return self.predictor.check_ready()
        except STORE_FAILURES as exc:
            log.warning("not ready: the online store cannot be read (%s: %s)", type(exc).__name__, exc)
            return False

    def admit(self, request: ForecastRequest | ReplenishmentRequest) -> None:
        self.predictor.admit(request)

    def record_answer(self, path: str, request_id: str, answer: bytes) -> None:
        """Into the queue of its route's log (forecasts, or reorder points); never blocks, counts what a
        full queue drops."""
        chosen = self.decision_log if path == REPLENISHMENT else self.prediction_log
        chosen.record(request_id or uuid.uuid4().hex, answer)

    @bentoml.on_shutdown
    def _write_the_log(self) -> None:
        self.live_gauges.stop()
        if self.prediction_log is not None:
            self.prediction_log.close()
            self.decision_log.close()
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()  # the spans still batched go out

    @bentoml.api(
        route=FORECAST,
        batchable=LIMITS.adaptive_batching,
        max_batch_size=LIMITS.max_batch_size,
        max_latency_ms=LIMITS.max_latency_ms,
    )
    def forecast(self, items: list[ForecastItem]) -> Annotated[list[ForecastResult], JSON]:
        """p10/p50/p90 per period for each item, in the order given (see ARCHITECTURE.md)."""
        return self.predictor.forecast(items)

    @bentoml.api(
        route=REPLENISHMENT,
        batchable=LIMITS.adaptive_batching,
        max_batch_size=LIMITS.max_batch_size,
        max_latency_ms=LIMITS.max_latency_ms,
    )
    def replenishment(self, items: list[ReplenishmentItem]) -> Annotated[list[ReplenishmentResult], JSON]:
        """Reorder point, order-up-to level and safety stock at a service level from quantiles of
        lead-time demand; with on_hand, the suggested order and the stockout probability."""
        return self.predictor.replenish(items)

    @bentoml.api(route=METADATA)
    def metadata(self) -> Annotated[dict, JSON]:
        """The served model version, its lifecycle state now and at build, and its feature service."""
        meta = self.bundle.meta
        return {
            "model_name": MANIFEST["model_name"],
            "model_version": MANIFEST["model_version"],
            **self.lifecycle.read(),
            "lifecycle_state_at_build": MANIFEST["lifecycle_state"],
            "feature_service": meta.feature_service,
            "dataset_version": meta.dataset_version,
            "horizon": meta.horizon,
            "frequency": meta.frequency,
            "features_circuit": self.predictor.features.breaker.state,
            "limits": LIMITS.model_dump(),
        }


def _answer_log(directory: Path, written, dropped) -> PredictionLog | None:
    """A log of the answers of one route, spooled in the background (monitoring/prediction_log.py)."""
    from monitoring.prediction_log import PredictionLog

    if not LIMITS.prediction_log:
        return None
    return PredictionLog(
        directory,
        capacity_bytes=LIMITS.log_queue_bytes,
        flush_interval_s=LIMITS.log_flush_interval_s,
        on_written=written.inc,
        on_dropped=dropped.inc,
    ).start()


def _admission():
    return bentoml.get_current_service().admit


def _served():
    service = bentoml.get_current_service()
    return service.record_answer if service.prediction_log is not None else None


def _key_guard() -> KeyGuard | None:
    if not SETTINGS.keys_required:
        return None
    return KeyGuard(
        lambda: KeyStore(SETTINGS.mlflow_database_url),
        SETTINGS.rate_limit_storage_uri,
        refresh_s=LIMITS.keys_refresh_s,
        timeout_s=LIMITS.lookup_timeout_s,
        precision=LIMITS.rate_limit_precision,
    )


DemandForecastService.add_asgi_middleware(
    ForecastGateway, limits=LIMITS, admission=_admission, served=_served, keys=_key_guard()
)
