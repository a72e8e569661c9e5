"""The watch processor inside a `serve` process: a task that turns registry changes into events.

Every process runs one; they share the work through the watch cursor row (watch/cursor.py), so a
change entry is decided once whichever process gets it, and a process killed mid-round leaves
its transaction rolled back for the next one to do again. It looks for work when this process's
registry generation moves (an import or sync here, or another process's seen by the registry
poll), when woken, and at least every `poll_interval` seconds. No error ends it: an unusable
registry or database is waited out, anything else is logged, counted, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.checking import Checker
from certcheck.config import Settings
from certcheck.errors import RegistryStale, RegistryUnavailable
from certcheck.evidence import store as check_records
from certcheck.observability.metrics import (
    JOB_WORKER_CRASHES,
    WATCH_EVENTS,
    WATCH_ROUNDS,
    WATCHED_LISTINGS,
)
from certcheck.verification.numbers import today_in_shanghai
from certcheck.verification.records import Verdict
from certcheck.watch import cursor, rounds
from certcheck.watch.events import purge_events
from certcheck.watch.listings import count_watched

log = logging.getLogger(__name__)

_WAITING = (RegistryUnavailable, RegistryStale, SQLAlchemyError, OSError, TimeoutError)
_MAX_BACKOFF = 30.0
_TICK = 0.25  # seconds between two looks at this process's registry generation
_STOP_GRACE = 3.0
_HOLD_POLL = 0.05


@dataclass(frozen=True, slots=True)
class WatchConfig:
    enabled: bool
    poll_interval: float
    feed_batch: int
    retention: timedelta
    check_records: bool = True  # each decision made again is recorded with the round
    housekeeping_every: float = 60.0
    hold_file: Path | None = None  # a test hook: see Settings.watch_hold_file

    @classmethod
    def from_settings(cls, settings: Settings) -> WatchConfig:
        return cls(
            enabled=settings.watch_processor,
            poll_interval=settings.watch_poll_interval,
            feed_batch=settings.watch_feed_batch,
            retention=timedelta(days=settings.watch_event_retention_days),
            check_records=settings.check_records,
            hold_file=settings.watch_hold_file,
        )


class WatchProcessor:
    def __init__(self, engine: AsyncEngine, checker: Checker, config: WatchConfig) -> None:
        self._engine, self._checker, self._config = engine, checker, config
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._generation = -1
        self._housekept = 0.0

    def start(self) -> None:
        if self._config.enabled:
            self._task = asyncio.create_task(self._run(), name="watch processor")

    def wake(self) -> None:
        """The registry changed: look now rather than at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is None:
            return
        # The round in hand may commit; one that does not finish in time rolls back.
        _, late = await asyncio.wait({self._task}, timeout=_STOP_GRACE)
        for task in late:
            task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def run_once(self) -> bool:
        """One round (a batch of the change feed, else a due expiry pass); False: nothing to do."""
        today = today_in_shanghai(datetime.now(UTC))
        position, newest = await cursor.peek(self._engine)
        # Read without a lock, so the common case costs no write. No cursor: nothing was ever
        # watched (the first upsert creates it).
        if position is None or (position.change_id >= newest and position.expiry_day >= today):
            return False
        record = self._config.check_records
        if record:  # the day's partition, made before the round's transaction takes locks
            await check_records.prepare(self._engine, [datetime.now(UTC)])
        async with self._engine.begin() as conn:
            held = await cursor.hold(conn, exclusive=True)
            kind = "feed"
            batch = self._config.feed_batch
            events = await rounds.feed_round(conn, self._checker, held, batch, record=record)
            if events is None and held.expiry_day < today:
                kind = "expiry"
                events = await rounds.expiry_round(conn, self._checker, held, today, record=record)
            if events:
                await self._hold()
        if events is None:
            return False
        self._published(kind, events)
        return True

    async def _hold(self) -> None:
        """While the hold file exists, keep the round's transaction open (a test hook)."""
        hold = self._config.hold_file
        if hold is None or not await asyncio.to_thread(hold.exists):
            return
        log.warning("watch round held before its commit while %s exists", hold)
        # Polling a file, not awaiting an Event: what drives it is a test in another process.
        while await asyncio.to_thread(hold.exists):  # noqa: ASYNC110
            await asyncio.sleep(_HOLD_POLL)

    def _published(self, kind: str, events: Counter[Verdict]) -> None:
        WATCH_ROUNDS.labels(kind=kind).inc()
        for verdict, count in events.items():
            WATCH_EVENTS.labels(decision=verdict.value).inc(count)

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            pause = self._config.poll_interval
            try:
                if await self.run_once():
                    failures = 0
                    continue
                failures = 0
                await self._housekeep()
            except _WAITING as exc:
                failures += 1
                pause = min(_MAX_BACKOFF, self._config.poll_interval * 2**failures)
                log.warning("watch processor waits %.0f s: %s", pause, _describe(exc))
            except Exception:
                failures += 1
                pause = min(_MAX_BACKOFF, self._config.poll_interval * 2**failures)
                JOB_WORKER_CRASHES.labels(task="watch").inc()
                log.exception("watch processor round failed; again in %.0f s", pause)
            await self._idle(pause)

    async def _idle(self, seconds: float) -> None:
        """Until `seconds` pass, someone wakes us, or this process's registry generation moves."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while not self._stopping and loop.time() < until:
            info = self._checker.store.info
            generation = info.generation if info is not None else -1
            if generation != self._generation:
                self._generation = generation
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(_TICK, max(0.0, until - loop.time()))):
                    await self._wake.wait()
            if self._wake.is_set():
                self._wake.clear()
                return

    async def _housekeep(self) -> None:
        """Now and then: forget events past retention, and publish the watched listings."""
        now = asyncio.get_running_loop().time()
        if now - self._housekept < self._config.housekeeping_every:
            return
        self._housekept = now
        await purge_events(self._engine, datetime.now(UTC) - self._config.retention)
        WATCHED_LISTINGS.set(await count_watched(self._engine))


def _describe(exc: BaseException) -> str:
    return getattr(exc, "detail", None) or type(exc).__name__
