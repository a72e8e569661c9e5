"""The per-process buffer of check records: filled on the request path, flushed in bulk.

The buffer keeps each check as its staged row (records.staged_row, made by the caller), so a
check waiting to be written is one tuple of plain values. `add` only appends (no I/O); a task
flushes everything buffered every `interval` seconds in one bulk write, sooner once a flush's
worth is waiting, and once more at shutdown. A failed flush keeps its records for the next
one, an interval later. A flush can fail after its transaction committed (cancelled at
shutdown while COMMIT was under way, or the connection lost before the answer): the next one
leaves out those already written, so no record is written or counted twice, and one such
failure cannot refuse the buffer's later records. A record PostgreSQL refuses outright (a value
it cannot store) would fail every flush it is in: a flush the database refuses so is written
again in halves, each in its own transaction, until the refused records stand alone; those are
dropped, counted and logged with their check ids, and the rest are written.
When the buffer is full, `shed` drops the new records (counted, logged at most every 10 s) and
`wait` makes the caller wait for room: the choice between fast answers and no lost record.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.outage import is_refused_value
from certcheck.evidence import partitions, store
from certcheck.evidence.records import CHECK_ID_AT, SOURCE_AT
from certcheck.observability.metrics import (
    CHECK_RECORD_FLUSH_FAILURES,
    CHECK_RECORDS_BUFFERED,
    CHECK_RECORDS_DROPPED,
    CHECK_RECORDS_REFUSED,
    CHECK_RECORDS_WAITS,
    CHECK_RECORDS_WRITTEN,
)

log = logging.getLogger(__name__)

Row = tuple[Any, ...]  # staged.STAGE_COLUMNS
_SHED_LOG_EVERY = 10.0  # seconds between two log lines about dropped records
_AHEAD_EVERY = 600.0  # seconds between two looks at the partitions ahead
_LAST_FLUSH_TIMEOUT = 5.0  # seconds shutdown waits for the last flush (a database away)
# A flush's worth of records: past it the flusher does not wait out its interval. Bursts of
# batches came faster than one flush an interval wrote, so the buffer, and the process's
# memory, grew towards its capacity while the flusher idled.
FLUSH_AT = 5_000


class WhenFull(enum.StrEnum):
    SHED = "shed"
    WAIT = "wait"


class CheckRecorder:
    def __init__(
        self, engine: AsyncEngine, *, capacity: int, when_full: WhenFull, enabled: bool = True
    ) -> None:
        self._engine = engine
        self._capacity = capacity
        self._when_full = when_full
        self.enabled = enabled
        self._items: deque[Row] = deque()
        self._held = 0  # buffered plus being written: what counts against the capacity
        self._room = asyncio.Event()
        self._dropped_unlogged = 0
        self._last_shed_log = 0.0
        self._flushing = asyncio.Lock()
        self._uncertain = False  # the last flush failed: some of its records may be written
        self._flush_at = max(1, min(FLUSH_AT, capacity // 2))  # due before a small buffer sheds
        self._due = asyncio.Event()  # a flush's worth is waiting

    @property
    def held(self) -> int:
        """Records buffered or being written."""
        return self._held

    async def add(self, items: Sequence[Row]) -> None:
        """Buffer the staged rows `items`; sheds or waits when the buffer is full."""
        if not self.enabled:
            return
        if len(items) <= self._capacity - self._held:  # room for all: every verify, nearly
            self._items.extend(items)
            self._held += len(items)
        else:
            await self._add_when_full(items)
        if len(self._items) >= self._flush_at:
            self._due.set()

    async def _add_when_full(self, items: Sequence[Row]) -> None:
        start = 0
        while start < len(items):
            room = self._capacity - self._held
            if room <= 0:
                CHECK_RECORDS_BUFFERED.set(self._held)
                if self._when_full is WhenFull.SHED:
                    self._shed(len(items) - start)
                    return
                CHECK_RECORDS_WAITS.inc()
                self._room.clear()
                await self._room.wait()
                continue
            taken = items[start : start + room]
            self._items.extend(taken)
            self._held += len(taken)
            start += len(taken)

    def _shed(self, count: int) -> None:
        CHECK_RECORDS_DROPPED.inc(count)
        self._dropped_unlogged += count
        now = time.monotonic()
        if now - self._last_shed_log >= _SHED_LOG_EVERY:
            log.warning(
                "check record buffer full (%d): %d records dropped since the last warning",
                self._capacity,
                self._dropped_unlogged,
            )
            self._dropped_unlogged, self._last_shed_log = 0, now

    async def flush(self) -> int:
        """Write everything buffered now in one bulk write; the number written."""
        async with self._flushing:
            # The gauge is set here, not at every check: a flush comes every interval, and a
            # gauge's update cost a verify as much as a tenth of its record.
            CHECK_RECORDS_BUFFERED.set(self._held)
            batch = list(self._items)
            if not batch:
                return 0
            self._items.clear()
            parts, written = [batch], 0  # a part the database refuses is split in two
            while parts:
                part = parts.pop()
                try:
                    ready = await asyncio.to_thread(store.ready, part, self._engine.dialect)
                    await store.write_ready_all(self._engine, ready, uncertain=self._uncertain)
                except BaseException as exc:
                    if not is_refused_value(exc):
                        left = [row for waiting in (part, *reversed(parts)) for row in waiting]
                        self._items.extendleft(reversed(left))  # tried again at the next flush
                        self._uncertain = True
                        raise
                    if len(part) > 1:
                        parts += [part[len(part) // 2 :], part[: len(part) // 2]]
                    else:
                        self._refuse(part[0], exc)
                    continue
                written += len(part)
                self._held -= len(part)
                for source, count in Counter(map(itemgetter(SOURCE_AT), part)).items():
                    CHECK_RECORDS_WRITTEN.labels(source=source).inc(count)
            self._uncertain = False
            CHECK_RECORDS_BUFFERED.set(self._held)
            self._room.set()
            return written

    def _refuse(self, row: Row, exc: BaseException) -> None:
        self._held -= 1
        CHECK_RECORDS_REFUSED.inc()
        log.error("check record %s dropped: the database refused it (%s)", row[CHECK_ID_AT], exc)

    async def run(self, interval: float) -> None:
        """Flush every `interval` seconds, or as soon as a flush's worth is waiting, until
        cancelled; keep the partitions ahead. After a failure, wait the interval: a database
        that is away is not asked again at every check."""
        last_ahead = -_AHEAD_EVERY
        failed = False
        while True:
            if failed:
                await asyncio.sleep(interval)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        await self._due.wait()
            self._due.clear()
            failed = True
            try:
                if time.monotonic() - last_ahead >= _AHEAD_EVERY:
                    await partitions.ahead(self._engine, datetime.now(UTC))
                    last_ahead = time.monotonic()
                await self.flush()
                failed = False
            except Exception as exc:
                CHECK_RECORD_FLUSH_FAILURES.inc()
                log.warning(
                    "check records not written (%s); %d held for the next flush",
                    type(exc).__name__,
                    self._held,
                )


@contextlib.asynccontextmanager
async def running(recorder: CheckRecorder, interval: float) -> AsyncIterator[CheckRecorder]:
    """The recorder flushing in the background; flushed a last time on the way out."""
    task = asyncio.create_task(recorder.run(interval), name="check record flush")
    try:
        yield recorder
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        try:
            async with asyncio.timeout(_LAST_FLUSH_TIMEOUT):
                await recorder.flush()
        except Exception as exc:
            log.error("check records lost at shutdown: %d (%s)", recorder.held, exc)
