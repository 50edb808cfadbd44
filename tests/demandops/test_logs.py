"""Structured logs (demandops/logs.py): a JSON object per line, with the request id being served."""

from __future__ import annotations

import io
import json
import logging

from demandops.logs import OWN_LOGGERS, REQUEST_ID, JsonFormatter, use_json_logs


def test_a_line_is_a_json_object_with_the_request_id_while_one_is_served() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("serving.test_logs")
    logger.addHandler(handler)
    try:
        logger.warning("outside a request")
        token = REQUEST_ID.set("planner-42")
        try:
            logger.warning("read failed: %s", "timeout")
        finally:
            REQUEST_ID.reset(token)
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("with its exception")
    finally:
        logger.removeHandler(handler)
    outside, inside, failed = (json.loads(line) for line in stream.getvalue().splitlines())
    assert "request_id" not in outside and outside["level"] == "WARNING" and outside["logger"] == "serving.test_logs"
    assert inside["request_id"] == "planner-42" and inside["message"] == "read failed: timeout"
    assert "ValueError: boom" in failed["exception"] and failed["level"] == "ERROR"


def test_our_loggers_get_one_json_handler_however_often_it_is_asked() -> None:
    loggers = [logging.getLogger(name) for name in OWN_LOGGERS]
    before = [(list(lg.handlers), lg.propagate, lg.level) for lg in loggers]
    try:
        use_json_logs()
        use_json_logs()
        for logger in loggers:
            assert sum(isinstance(h.formatter, JsonFormatter) for h in logger.handlers) == 1, logger.name
            assert logger.propagate is False
    finally:  # this test process's other tests keep their logging
        for logger, (handlers, propagate, level) in zip(loggers, before, strict=True):
            logger.handlers[:], logger.propagate = handlers, propagate
            logger.setLevel(level)
