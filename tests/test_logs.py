"""The log thread writes every queued line, in order, a batch at a time (issue 12)."""

from __future__ import annotations

import io
import logging
import logging.handlers
import queue
import time
from typing import Any

from certcheck.observability.logs import _LineWriter


def _writer(level: int = logging.INFO) -> tuple[_LineWriter, logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    records: queue.SimpleQueue[Any] = queue.SimpleQueue()
    logger = logging.getLogger(f"certcheck.test.logs.{time.monotonic_ns()}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(logging.handlers.QueueHandler(records))
    writer = _LineWriter(records, handler)
    writer.start()
    return writer, logger, out


def test_every_line_queued_before_stop_is_written_in_order() -> None:
    writer, logger, out = _writer()
    for n in range(2_000):
        logger.info("line %d", n)
    writer.stop()
    assert out.getvalue().splitlines() == [f"INFO line {n}" for n in range(2_000)]
    writer.stop()  # a second stop (atexit after write_directly) does nothing


def test_lines_made_by_their_caller_keep_their_place_among_records() -> None:
    writer, logger, out = _writer()
    queued: queue.SimpleQueue[Any] = writer._records
    logger.info("first")
    queued.put('{"message": "made as text"}')  # what info_line queues: the line's own text
    logger.info("last")
    writer.stop()
    assert out.getvalue().splitlines() == ["INFO first", '{"message": "made as text"}', "INFO last"]


def test_text_lines_are_info_lines_for_the_handlers_level() -> None:
    writer, logger, out = _writer(logging.WARNING)
    writer._records.put('{"message": "an info line"}')
    logger.warning("loud")
    writer.stop()
    assert out.getvalue() == "WARNING loud\n"


def test_lines_below_the_handlers_level_are_left_out() -> None:
    writer, logger, out = _writer(logging.WARNING)
    logger.info("quiet")
    logger.warning("loud")
    writer.stop()
    assert out.getvalue() == "WARNING loud\n"


def test_a_line_arrives_within_milliseconds_without_a_stop() -> None:
    writer, logger, out = _writer()
    logger.info("soon")
    deadline = time.monotonic() + 5
    while not out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.001)
    assert out.getvalue() == "INFO soon\n"
    writer.stop()


def test_a_line_made_without_a_record_is_the_formatters_line() -> None:
    """info_line's cheap lines (the request log line) are the JSON logging's own would be."""
    from certcheck.observability import logs

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure_logging()
        logs.write_directly()  # the stream handler, with the JSON formatter, is the root's now
        formatter = root.handlers[0].formatter
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert formatter is not None
    fields = {"request_id": "r1", "status": 200, "duration_ms": 0.25, "platform": '商城 "x"'}
    created = time.time()
    line = logs._line_text("certcheck.request", "request", fields, created)
    record = logging.LogRecord(
        "certcheck.request", logging.INFO, __file__, 1, "request", None, None
    )
    record.__dict__.update(fields)
    record.created = created
    assert line == formatter.format(record)
