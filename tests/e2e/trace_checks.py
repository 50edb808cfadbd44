"""What the end-to-end test asks of traces and logs: a request's spans at an OTLP endpoint, joined by
its X-Request-ID, and the service's own log lines as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from bench.otlp_receiver import OtlpReceiver, ReceivedSpan
from serving.routes import FORECAST
from tests.conftest import wait_until

TRACED_REQUEST = "trace-me-1"


def assert_a_request_is_traced(url: str, receiver: OtlpReceiver, item: dict) -> None:
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"  # a W3C trace context, as a traced caller sends it
    headers = {"X-Request-ID": TRACED_REQUEST, "traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01"}
    reply = httpx.post(f"{url}{FORECAST}", json={"items": [item]}, headers=headers, timeout=60)
    assert reply.status_code == 200 and reply.headers["x-request-id"] == TRACED_REQUEST, reply.text

    def gateway() -> ReceivedSpan | None:
        return next(
            (
                s
                for s in receiver.spans
                if s.name == "demandops.gateway" and s.attributes.get("demandops.request_id") == TRACED_REQUEST
            ),
            None,
        )

    # The service exports its spans in batches, every few seconds.
    wait_until(lambda: gateway() is not None, "the request's gateway span at the OTLP endpoint", timeout_s=30)
    span = gateway()
    assert span.service == "demandops-forecast" and span.trace_id == caller_trace, "it continues the caller's trace"
    assert span.attributes["http.route"] == FORECAST and span.attributes["http.response.status_code"] == "200", span
    # Each adaptive batch is a trace of its own: the batch, its online read and its forward pass.
    batch = {"demandops.batch", "demandops.online_features", "demandops.model"}
    wait_until(lambda: any(batch <= trace for trace in _traces(receiver)), f"a batch's trace: {batch}", timeout_s=30)


def _traces(receiver: OtlpReceiver) -> list[set[str]]:
    names: dict[str, set[str]] = {}
    for span in list(receiver.spans):
        names.setdefault(span.trace_id, set()).add(span.name)
    return list(names.values())


def assert_the_service_logs_json(log_path: Path) -> None:
    """The service's own lines (a degraded read was logged by serving.resilience) are JSON objects."""
    ours = []
    for line in log_path.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("logger", "").startswith("serving"):
                ours.append(entry)
    assert ours, "no JSON line from the service's loggers"
    assert {"time", "level", "logger", "message"} <= set(ours[0])
    assert any(e["logger"] == "serving.resilience" and e["level"] == "WARNING" for e in ours), ours[:5]
