"""OpenTelemetry traces of the forecast service, exported through OTLP when an endpoint is configured.

With DEMANDOPS_SERVING__OTLP_ENDPOINT set (an OTLP/HTTP traces URL, e.g. a collector's
http://collector:4318/v1/traces), a request to an API route gives a trace of:
- `demandops.gateway`, the server span: the checks before batching and the wait for the answer,
  with the request's X-Request-ID as `demandops.request_id`, its route and its status. It continues
  the caller's trace when the request carries a W3C `traceparent` header. BentoML's OpenTelemetry
  middleware stays off the batched routes: its four spans per request cost half the throughput
  (bench/tracing.py); it traces the other routes;
- per adaptive batch, a trace of its own: `demandops.batch` (its item count) holding
  `demandops.online_features` (the one online read) and `demandops.model` (the forward pass, or the
  lead-time quantiles). A batch serves several requests, and BentoML runs it in a task of its own
  that no one request's trace owns; a root span of its own keeps it out of a stranger's trace.
Unset, no span is made.

BentoML's tracer provider serves only its middleware, so demandops' spans get a provider of their own
(set as OpenTelemetry's global one), exporting to the same endpoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind

from demandops.settings import ServingSettings

TRACER = trace.get_tracer("demandops.serving")
SERVICE_NAME = "demandops-forecast"


def bentoml_tracing(limits: ServingSettings, quiet_routes: list[str]) -> dict:
    """The `tracing` of @bentoml.service: its spans to the OTLP endpoint when one is set, and its
    middleware off `quiet_routes` (the batched routes, where the gateway's span stands for the
    request) unless trace_requests asks for it."""
    excluded = {} if limits.trace_requests else {"excluded_urls": quiet_routes}
    if not limits.otlp_endpoint:
        return excluded
    exporter = {"protocol": "http", "endpoint": limits.otlp_endpoint}
    return {"exporter_type": "otlp", "sample_rate": limits.trace_sample_rate, "otlp": exporter, **excluded}


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
def request_span(enabled: bool, scope: dict, request_id: str) -> Iterator[Callable[[int], None]]:
    """The server span of one request to an API route, `demandops.gateway`: it continues the caller's
    trace (a W3C `traceparent` header), holds the request's id and route, and is given the status
    of the answer through the callable yielded."""
    if not enabled:
        yield _ignore
        return
    carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    attributes = {
        "demandops.request_id": request_id,
        "http.route": scope["path"],
        "http.request.method": scope["method"],
    }
    with TRACER.start_as_current_span(
        "demandops.gateway", context=propagate.extract(carrier), kind=SpanKind.SERVER, attributes=attributes
    ) as current:
        yield lambda status: current.set_attribute("http.response.status_code", status)


def _ignore(status: int) -> None:
    """What request_span yields with tracing off."""


@contextlib.contextmanager
def span(name: str, enabled: bool, *, root: bool = False, **attributes) -> Iterator[None]:
    """A span of `name` when tracing is on (`root`: the first of a trace of its own); nothing at all
    otherwise, not even a no-op span."""
    if not enabled:
        yield
        return
    with TRACER.start_as_current_span(name, context=Context() if root else None, attributes=attributes):
        yield
