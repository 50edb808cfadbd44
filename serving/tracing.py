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

Which requests are traced is decided here, before any OpenTelemetry call: a request with a caller's
`traceparent` follows its sampled flag (as OpenTelemetry's ParentBased sampler would), any other
request and each batch is traced at `trace_sample_rate`. An untraced request then costs a random
number, where a non-recording span of OpenTelemetry's sampler (a trace id drawn, a context attached
and detached, the headers parsed) cost it 4% of the throughput (bench/tracing.py). The provider's
sampler records every span started: each was decided here, or is the child of one that was.

BentoML's tracer provider serves only its middleware, so demandops' spans get a provider of their own
(set as OpenTelemetry's global one), exporting to the same endpoint.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind

from demandops.settings import ServingSettings

TRACER = trace.get_tracer("demandops.serving")
SERVICE_NAME = "demandops-forecast"
TRACEPARENT = b"traceparent"


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
    provider = tracer_provider(Resource.create({"service.name": SERVICE_NAME, "service.version": model_version}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=limits.otlp_endpoint)))
    trace.set_tracer_provider(provider)
    return provider


def tracer_provider(resource: Resource) -> TracerProvider:
    """A provider recording every span started: each was sampled by request_span or span, or is the
    child of one that was."""
    return TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_ON))


def sample_rate(limits: ServingSettings) -> float:
    """The share of requests and batches traced: 0 without an OTLP endpoint."""
    return limits.trace_sample_rate if limits.otlp_endpoint else 0.0


@contextlib.contextmanager
def request_span(rate: float, scope: dict, request_id: str) -> Iterator[Callable[[int], None]]:
    """The server span of one request to an API route, `demandops.gateway`, when the request is traced:
    it continues the caller's trace (a W3C `traceparent` header), holds the request's id and route,
    and is given the status of the answer through the callable yielded."""
    parent = _traced_parent(scope["headers"], rate) if rate > 0 else None
    if parent is None:
        yield _ignore
        return
    attributes = {
        "demandops.request_id": request_id,
        "http.route": scope["path"],
        "http.request.method": scope["method"],
    }
    with TRACER.start_as_current_span(
        "demandops.gateway", context=parent, kind=SpanKind.SERVER, attributes=attributes
    ) as current:
        yield lambda status: current.set_attribute("http.response.status_code", status)


def _traced_parent(headers: list[tuple[bytes, bytes]], rate: float) -> Context | None:
    """The context a traced request's span starts in (the caller's trace, or an empty one: a trace of
    its own); None when the request is not traced."""
    if not any(name == TRACEPARENT for name, _ in headers):
        return Context() if random.random() < rate else None
    carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}
    context = propagate.extract(carrier)
    caller = trace.get_current_span(context).get_span_context()
    if not caller.is_valid:  # a malformed traceparent is ignored, as OpenTelemetry ignores it
        return Context() if random.random() < rate else None
    return context if caller.trace_flags.sampled else None


def _ignore(status: int) -> None:
    """What request_span yields for a request not traced."""


@contextlib.contextmanager
def span(name: str, rate: float, *, root: bool = False, **attributes) -> Iterator[None]:
    """A span of `name`: with `root`, the first of a trace of its own, traced at `rate`; otherwise the
    child of the current span, traced when that one is. Nothing at all otherwise, not even a
    non-recording span. `rate` 0: tracing is off."""
    traced = rate > 0 and (random.random() < rate if root else trace.get_current_span().is_recording())
    if not traced:
        yield
        return
    with TRACER.start_as_current_span(name, context=Context() if root else None, attributes=attributes):
        yield
