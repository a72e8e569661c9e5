"""Structured JSON logs, one object per line on stderr (python-json-logger does the encoding)."""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
from collections.abc import Callable

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# uvicorn adds `color_message` (the message with ANSI colour codes) to its records: a JSON
# line must carry the plain message only.
_NOT_FIELDS = [*RESERVED_ATTRS, "color_message"]
# Libraries that configure handlers of their own, or that tools configure: every line they
# write goes through ours instead, so a log collector sees one format.
_OURS = ("uvicorn", "uvicorn.error", "uvicorn.asgi", "alembic", "alembic.runtime.migration")


_unqueue: list[Callable[[], None]] = []


def write_directly() -> None:
    """Write every later line at once, not through the queue.

    For a process about to end: uvicorn ends a process stopped by SIGTERM by raising the signal
    again, which kills it before atexit handlers run, and queued lines (the last of them
    "Application shutdown complete") would be lost.
    """
    for unqueue in _unqueue:
        unqueue()
    _unqueue.clear()


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Called once by the CLI; importing certcheck configures nothing."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                datefmt="%Y-%m-%dT%H:%M:%S%z",
                reserved_attrs=_NOT_FIELDS,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    # The event loop only enqueues records; a thread formats and writes them, so a slow stderr
    # pipe never stalls request handling.
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, handler, respect_handler_level=True)
    listener.start()
    atexit.register(listener.stop)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(records)]

    def unqueue() -> None:
        listener.stop()  # writes what is queued
        root.handlers[:] = [handler]

    _unqueue[:] = [unqueue]
    root.setLevel(level)
    # httpx logs every upstream request URL at INFO, page tokens included; sync runs log
    # their own summary instead.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Uvicorn's own access log would repeat our request log without the fields we add.
    logging.getLogger("uvicorn.access").disabled = True
    for name in _OURS:
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
