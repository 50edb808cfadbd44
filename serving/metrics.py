"""The service's own Prometheus metrics, served on /metrics beside BentoML's.

BentoML already counts every request by endpoint and status (bentoml_service_request_total),
times it in a histogram (bentoml_service_request_duration_seconds) and records requests per
batch (bentoml_service_adaptive_batch_size); its middleware sits outside ours, so refusals are in
those too. These add what they cannot see: why a request was refused, items per batch, degraded
items, the online-feature reads and the circuit, and which model is served. Nothing here is
touched per answered request: metric updates were a measurable share of a request's CPU.

Each metric is built on first use, not at import: a BentoML worker sets PROMETHEUS_MULTIPROC_DIR
after it imports the service, and prometheus_client fixes its storage when it builds a metric.
`metrics.REQUESTS` etc. resolve through the module's __getattr__.
"""

from __future__ import annotations

import threading
from typing import Any

LOOKUP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_DEFINITIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "REFUSALS": (
        "Counter",
        dict(
            name="demandops_forecast_refusals_total",
            documentation="Forecast requests refused, by the code of their JSON error body.",
            labelnames=["code"],
        ),
    ),
    "REPLENISHMENT_REFUSALS": (
        "Counter",
        dict(
            name="demandops_replenishment_refusals_total",
            documentation="Replenishment requests refused, by the code of their JSON error body.",
            labelnames=["code"],
        ),
    ),
    "KEY_REQUESTS": (
        "Counter",
        dict(
            name="demandops_api_key_requests_total",
            documentation="Requests to the API routes by key name and outcome: admitted, rate_limited, quota_exceeded, "
            "revoked, uncounted (the counts' storage failed); and, under key '-', unauthenticated.",
            labelnames=["key", "outcome"],
        ),
    ),
    "BATCH_ITEMS": (
        "Histogram",
        dict(
            name="demandops_batch_items",
            documentation="Items answered by one model batch (one online-feature read and one forward pass).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        ),
    ),
    "DEGRADED_ITEMS": (
        "Counter",
        dict(
            name="demandops_degraded_items_total",
            documentation="Items answered from last known features because the online store failed.",
        ),
    ),
    "FEATURE_LOOKUP": (
        "Histogram",
        dict(
            name="demandops_feature_lookup_seconds",
            documentation="Online-feature reads by outcome: ok, failed (error or timeout), skipped (circuit open).",
            labelnames=["outcome"],
            buckets=LOOKUP_BUCKETS,
        ),
    ),
    "CIRCUIT_OPEN": (
        "Gauge",
        dict(
            name="demandops_feature_circuit_open",
            documentation="1 while the circuit to the online store is open or probing, else 0.",
            multiprocess_mode="max",
        ),
    ),
    "ONLINE_FRESH": (
        "Gauge",
        dict(
            name="demandops_online_features_fresh",
            documentation="1 while the online store answers with complete, current features (as /readyz says), else 0.",
            multiprocess_mode="max",
        ),
    ),
    "LOG_ANSWERS": (
        "Counter",
        dict(
            name="demandops_prediction_log_answers_total",
            documentation="Forecast answers written to the prediction log's spool.",
        ),
    ),
    "LOG_DROPPED": (
        "Counter",
        dict(
            name="demandops_prediction_log_dropped_total",
            documentation="Forecast answers not logged: the log's queue was full, or writing it failed.",
        ),
    ),
    "DECISION_LOG_ANSWERS": (
        "Counter",
        dict(
            name="demandops_decision_log_answers_total",
            documentation="Replenishment answers written to the decision log's spool.",
        ),
    ),
    "DECISION_LOG_DROPPED": (
        "Counter",
        dict(
            name="demandops_decision_log_dropped_total",
            documentation="Replenishment answers not logged: the log's queue was full, or writing it failed.",
        ),
    ),
    "LIVE_WAPE": (
        "Gauge",
        dict(
            name="demandops_live_wape",
            documentation="Rolling live WAPE of a model version's served forecasts against later actuals.",
            labelnames=["model_version"],
            multiprocess_mode="max",
        ),
    ),
    "LIVE_BIAS": (
        "Gauge",
        dict(
            name="demandops_live_bias",
            documentation="Rolling live bias (total forecast minus total actual, over total actual), per version.",
            labelnames=["model_version"],
            multiprocess_mode="max",
        ),
    ),
    "LIVE_COVERAGE": (
        "Gauge",
        dict(
            name="demandops_live_coverage",
            documentation="Rolling share of actuals inside the served p10-p90 band, per model version.",
            labelnames=["model_version"],
            multiprocess_mode="max",
        ),
    ),
    "LIVE_PINBALL": (
        "Gauge",
        dict(
            name="demandops_live_pinball",
            documentation="Rolling mean pinball loss of the served p10, p50 and p90, per model version.",
            labelnames=["model_version"],
            multiprocess_mode="max",
        ),
    ),
    "LIVE_SCORED": (
        "Gauge",
        dict(
            name="demandops_live_scored_forecasts",
            documentation="Served forecasts (series and target period) scored in the rolling window, per version.",
            labelnames=["model_version"],
            multiprocess_mode="max",
        ),
    ),
    "LIVE_STEP_WAPE": (
        "Gauge",
        dict(
            name="demandops_live_wape_by_step",
            documentation="Rolling live WAPE per model version and horizon step (1: the period after the origin).",
            labelnames=["model_version", "step"],
            multiprocess_mode="max",
        ),
    ),
    "LIVE_PERIOD": (
        "Gauge",
        dict(
            name="demandops_live_scored_period_timestamp_seconds",
            documentation="The latest period whose actuals were scored, as a Unix time.",
            labelnames=[],
            multiprocess_mode="max",
        ),
    ),
    "LEAD_TIME_REFITTED": (
        "Gauge",
        dict(
            name="demandops_lead_time_refitted_rows",
            documentation="Lead-time demands of the latest logged forecasts that the served lead-time tables were "
            "refitted on (0: the tables calibrated at training).",
            labelnames=[],
            multiprocess_mode="max",
        ),
    ),
    "MODEL_INFO": (
        "Gauge",
        dict(
            name="demandops_model_info",
            documentation="The served model: always 1, with its version and feature service as labels.",
            labelnames=["model_name", "model_version", "lifecycle_state_at_build", "feature_service", "frequency"],
            multiprocess_mode="max",
        ),
    ),
}


_BUILDING = threading.Lock()


def __getattr__(name: str) -> Any:
    if name not in _DEFINITIONS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import prometheus_client  # here, not at import: see the module docstring

    with _BUILDING:  # two threads must not both register the same metric
        if name not in globals():
            kind, options = _DEFINITIONS[name]
            globals()[name] = getattr(prometheus_client, kind)(**options)
    return globals()[name]  # later lookups find the module attribute and skip __getattr__
