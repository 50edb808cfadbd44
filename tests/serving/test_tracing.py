"""Which requests and batches are traced (serving/tracing.py): decided before any OpenTelemetry call,
a caller's `traceparent` followed, and a batch's children traced only with the batch."""

from __future__ import annotations

import random

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from serving import tracing

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
NEVER = 1e-12  # tracing on, and no request or batch of these tests drawn


@pytest.fixture
def exported(monkeypatch) -> InMemorySpanExporter:
    """The spans demandops starts, recorded in memory by the provider the service uses."""
    exporter = InMemorySpanExporter()
    provider = tracing.tracer_provider(Resource.create({"service.name": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "TRACER", provider.get_tracer("test"))
    return exporter


def _request(rate: float, *headers: tuple[bytes, bytes], status: int = 200) -> None:
    scope = {"path": "/v1/forecast", "method": "POST", "headers": [(b"host", b"x"), *headers]}
    with tracing.request_span(rate, scope, "req-1") as record_status:
        record_status(status)


def _traceparent(flags: str, trace_id: str = CALLER_TRACE) -> tuple[bytes, bytes]:
    return b"traceparent", f"00-{trace_id}-00f067aa0ba902b7-{flags}".encode()


def test_a_callers_sampled_traceparent_is_traced_and_continued_whatever_the_rate(exported) -> None:
    _request(NEVER, _traceparent("01"))
    [span] = exported.get_finished_spans()
    assert span.name == "demandops.gateway" and format(span.context.trace_id, "032x") == CALLER_TRACE
    assert span.attributes["demandops.request_id"] == "req-1" and span.attributes["http.response.status_code"] == 200


def test_a_callers_unsampled_traceparent_is_not_traced_even_at_rate_one(exported) -> None:
    _request(1.0, _traceparent("00"))
    assert exported.get_finished_spans() == ()


def test_a_malformed_traceparent_starts_a_trace_of_its_own_at_the_rate(exported) -> None:
    _request(1.0, _traceparent("01", trace_id="not-hex"))
    [span] = exported.get_finished_spans()
    assert format(span.context.trace_id, "032x") != CALLER_TRACE and span.parent is None


def test_without_an_endpoint_nothing_is_traced(exported) -> None:
    _request(0.0, _traceparent("01"))
    with tracing.span("demandops.batch", 0.0, root=True), tracing.span("demandops.model", 0.0):
        pass
    assert exported.get_finished_spans() == ()


def test_requests_without_a_traceparent_are_traced_at_the_rate(exported) -> None:
    random.seed(20)
    for _ in range(4000):
        _request(0.25)
    traced = exported.get_finished_spans()
    assert 850 <= len(traced) <= 1150, f"{len(traced)} of 4,000 traced at a rate of 0.25"
    assert len({span.context.trace_id for span in traced}) == len(traced), "each a trace of its own"


def test_a_batch_and_its_children_are_traced_together_or_not_at_all(exported) -> None:
    with tracing.span("demandops.batch", NEVER, root=True), tracing.span("demandops.model", NEVER):
        pass
    assert exported.get_finished_spans() == (), "an untraced batch's children are not traced either"
    batch_span = tracing.span("demandops.batch", 1.0, root=True, **{"demandops.items": 3})
    with batch_span, tracing.span("demandops.model", 1.0):
        pass
    model, batch = exported.get_finished_spans()
    assert batch.parent is None and model.parent.span_id == batch.context.span_id
    assert batch.attributes["demandops.items"] == 3
