"""Structured logs: one JSON object per line, with the request id of the request being served.

The forecast service and the batch scoring command (`demandops forecast`) log this way, so that a
log line can be joined with the prediction log, an access log or a trace by its request id. The
gateway sets REQUEST_ID while it handles a request; code that runs for it (in its task, or in a
thread the task started with its context copied) logs under that id.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID: ContextVar[str | None] = ContextVar("demandops_request_id", default=None)
# demandops' own packages: their loggers get the JSON handler
OWN_LOGGERS = ("demandops", "salesdata", "pipelines", "feature_repo", "training", "lifecycle", "monitoring", "serving")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def use_json_logs(level: int = logging.INFO) -> None:
    """demandops' loggers write JSON lines to stderr (once per process; a second call changes nothing)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in OWN_LOGGERS:
        logger = logging.getLogger(name)
        if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            continue
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False  # not twice, once more in the host's own format
