"""Structured JSON logs, one object per line on stderr (python-json-logger makes each line's
fields, pydantic-core's encoder writes them)."""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import logging.handlers
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from pydantic_core import to_json
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# uvicorn adds `color_message` (the message with ANSI colour codes) to its records: a JSON
# line must carry the plain message only.
_NOT_FIELDS = [*RESERVED_ATTRS, "color_message"]
# Libraries that configure handlers of their own, or that tools configure: every line they
# write goes through ours instead, so a log collector sees one format.
_OURS = ("uvicorn", "uvicorn.error", "uvicorn.asgi", "alembic", "alembic.runtime.migration")


_unqueue: list[Callable[[], None]] = []
# The log thread's queue while lines are JSON (configure_logging): `info_line` puts its lines
# there directly. None otherwise, and once write_directly has run.
_json_queue: queue.SimpleQueue[Any] | None = None
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
# How often the log thread writes the lines queued since its last write.
_WRITE_EVERY = 0.05
_STOP = object()


def _line_text(logger: str, message: str, fields: dict[str, Any], created: float) -> str:
    """An INFO line of plain JSON values, made without a LogRecord: what the request log line
    needs, at a tenth of the cost of `Logger.info` with `extra` (a record, a caller lookup, a
    copy for the queue, python-json-logger's walk of the record's attributes)."""
    # The keys and their order are those of the JsonFormatter configure_logging sets up.
    head = {"time": _second(int(created)), "level": "INFO", "logger": logger, "message": message}
    return _json_text(head | fields)


def _json_text(value: Any, **_: Any) -> str:
    """A line's JSON, for both the formatter's lines and info_line's: pydantic-core's encoder
    takes 0.6 us for the request log line where json.dumps took 2.6, on every request. UTF-8
    as it is, no spaces; a value it has no JSON for is written as its str(). The keywords
    python-json-logger passes for json.dumps (its encoder class, ensure_ascii) do not apply."""
    return to_json(value, fallback=str).decode()


@functools.lru_cache(maxsize=4)
def _second(second: int) -> str:
    # Lines come hundreds a second: the time text is made once per second, not once per line.
    return time.strftime(_TIME_FORMAT, time.localtime(second))


def info_line(logger: logging.Logger, message: str, fields: dict[str, Any]) -> None:
    """`logger.info(message, extra=fields)`, cheaply when lines are JSON: `fields` must hold
    plain JSON values (str, int, float, bool, None). The line skips the logger's own filters
    and handlers (certcheck sets none: every line goes to the root's queue)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    if _json_queue is None:
        logger.info(message, extra=fields)
    else:
        # Its text made here, on the caller's thread: the log thread then only joins and
        # writes, so it holds the GIL for microseconds when it wakes.
        _json_queue.put(_line_text(logger.name, message, fields, time.time()))


class _LineWriter:
    """The thread that writes queued lines, a batch every `_WRITE_EVERY` seconds.

    logging's QueueListener wakes for every record and writes (and flushes) each on its own:
    with a line per request, a thread switch, a GIL hand-over and a write per request. Woken
    by the first line of a batch and gathering for 5 ms, this thread still took the GIL from
    the event loop ~200 times a second under load, and each time the loop waited for it back:
    at a steady 4,200 requests a second the request log cost the server ~35 us of CPU a
    request and its p99 went from ~5 to 12-35 ms. Now nothing wakes it: it sleeps a fixed
    interval, takes everything queued, formats what is not text yet (the few lines logged
    through `logging`), and writes once. A line waits at most that interval.
    """

    def __init__(
        self, records: queue.SimpleQueue[Any], handler: logging.StreamHandler[Any]
    ) -> None:
        self._records = records
        self._handler = handler
        # Not `_thread`: mypyc (pyproject.toml) makes that the C name `__thread`, a keyword.
        self._writer = threading.Thread(target=self._run, name="certcheck-log", daemon=True)

    def start(self) -> None:
        self._writer.start()

    def stop(self) -> None:
        """Write every line queued so far, then end the thread; a second call does nothing."""
        if self._writer.is_alive():
            self._records.put(_STOP)
            self._writer.join()

    def _run(self) -> None:
        while True:
            time.sleep(_WRITE_EVERY)
            batch = []
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self._records.get_nowait())
            lines = [record for record in batch if record is not _STOP]
            self._write(lines)
            if len(lines) < len(batch):
                return

    def _write(self, records: list[logging.LogRecord | str]) -> None:
        handler = self._handler
        lines = []
        for record in records:
            if isinstance(record, str):  # an INFO line made by info_line
                if handler.level <= logging.INFO:
                    lines.append(record)
            elif record.levelno >= handler.level and handler.filter(record):
                try:
                    lines.append(handler.format(record))
                except Exception:
                    handler.handleError(record)
        if not lines:
            return
        handler.acquire()
        try:
            handler.stream.write("\n".join(lines) + "\n")
            handler.stream.flush()
        except Exception:
            plain = [r for r in records if isinstance(r, logging.LogRecord)]
            handler.handleError(plain[-1] if plain else logging.makeLogRecord({"msg": lines[-1]}))
        finally:
            handler.release()


def write_directly() -> None:
    """Write every later line at once, not through the queue.

    For a process about to end: uvicorn ends a process stopped by SIGTERM by raising the signal
    again, which kills it before atexit handlers run, and queued lines (the last of them
    "Application shutdown complete") would be lost.
    """
    global _json_queue
    _json_queue = None
    for unqueue in _unqueue:
        unqueue()
    _unqueue.clear()


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Called once by the CLI; importing certcheck configures nothing."""
    global _json_queue
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                datefmt=_TIME_FORMAT,
                reserved_attrs=_NOT_FIELDS,
                json_serializer=_json_text,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    # The event loop only enqueues records; a thread formats and writes them, so a slow stderr
    # pipe never stalls request handling.
    records: queue.SimpleQueue[Any] = queue.SimpleQueue()
    listener = _LineWriter(records, handler)
    listener.start()
    _json_queue = records if json_lines else None
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
    # Alembic names each plugin it sets up, at INFO, when it is first imported: loaded after
    # this (only the commands that migrate load it), that is a dozen lines of no news.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # Uvicorn's own access log would repeat our request log without the fields we add.
    logging.getLogger("uvicorn.access").disabled = True
    for name in _OURS:
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
