"""OpenTelemetry traces of the forecast service, exported through OTLP when an endpoint is configured.

With DEMANDOPS_SERVING__OTLP_ENDPOINT set (an OTLP/HTTP traces URL, e.g. a collector's
http://collector:4318/v1/traces), a request to an API route gives a trace of:
- BentoML's own server span of the HTTP request (its OpenTelemetry middleware, on for every route);
- `demandops.gateway`: the checks before batching and the wait for the answer, with the request's
  X-Request-ID as `demandops.request_id` and its route;
- per adaptive batch, a trace of its own: `demandops.batch` (its item count) holding
  `demandops.online_features` (the one online read) and `demandops.model` (the forward pass, or the
  lead-time quantiles). A batch serves several requests, and BentoML runs it in a task of its own
  that no one request's trace owns; a root span of its own keeps it out of a stranger's trace.
Unset, no span is made: without an exporter, BentoML's middleware alone cost a third of the
throughput (bench/http_path.py).

BentoML's tracer provider serves only its middleware, so demandops' spans get a provider of their own
(set as OpenTelemetry's global one), exporting to the same endpoint; spans join the same trace through
OpenTelemetry's context.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from demandops.settings import ServingSettings

TRACER = trace.get_tracer("demandops.serving")
SERVICE_NAME = "demandops-forecast"


def bentoml_tracing(limits: ServingSettings, quiet_routes: list[str]) -> dict:
    """The `tracing` of @bentoml.service: OTLP to the endpoint; else BentoML's middleware kept off
    `quiet_routes` (the batched routes) unless trace_requests asks for it."""
    if limits.otlp_endpoint:
        return {
            "exporter_type": "otlp",
            "sample_rate": limits.trace_sample_rate,
            "otlp": {"protocol": "http", "endpoint": limits.otlp_endpoint},
        }
    return {} if limits.trace_requests else {"excluded_urls": quiet_routes}


def start_exporting(limits: ServingSettings, model_version: str) -> TracerProvider | None:
    """demandops' spans to the OTLP endpoint, batched in the background; None when none is configured."""
    if not limits.otlp_endpoint:
        return None
    resource = Resource.create({"service.name": SERVICE_NAME, "service.version": model_version})
    provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(limits.trace_sample_rate)))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=limits.otlp_endpoint)))
    trace.set_tracer_provider(provider)
    return provider


@contextlib.contextmanager
def span(name: str, enabled: bool, *, root: bool = False, **attributes) -> Iterator[None]:
    """A span of `name` when tracing is on (`root`: the first of a trace of its own); nothing at all
    otherwise, not even a no-op span."""
    if not enabled:
        yield
        return
    with TRACER.start_as_current_span(name, context=Context() if root else None, attributes=attributes):
        yield
