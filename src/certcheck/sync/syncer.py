"""One upstream sync run (registry-format.md section 2): page by page, each page one commit.

A run holds the registry writer lock and asks for what changed since the cursor (less
`overlap`, for upstream commits that land late). Each page is checked first (its `as_of`
never goes backwards, few enough bad items, no page token seen before, at most `max_pages`),
then applied with its change-feed entries, generation bump and cursor move in one
transaction, and then this process's RegistryStore is told. A run that stops early keeps the
pages it applied and the cursor after them: the next run resumes there and loses nothing.
The feed never removes a certificate; see the README's "Upstream sync".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.errors import RegistryBusy, SyncFailed
from certcheck.observability.metrics import REGISTRY_RUNS, SYNC_LAST_SUCCESS
from certcheck.registry.lock import registry_writer
from certcheck.registry.state import (
    finish_run,
    last_started,
    last_success,
    run_outcome,
    start_run,
)
from certcheck.sync.feed import FeedClient, FeedError
from certcheck.sync.feedpage import FeedPage, parse_page
from certcheck.sync.patch import PageMark, apply_page, read_cursor, rewind_cursor
from certcheck.sync.runs import RunState, RunStop, SyncLimits, SyncResult, check_page

log = logging.getLogger(__name__)


class Syncer:
    """Runs syncs from this process; the registry writer lock keeps every other one out."""

    def __init__(
        self,
        engine: AsyncEngine,
        client: FeedClient,
        *,
        source: str,
        limits: SyncLimits,
        on_commit: Callable[[], Awaitable[object]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._client = client
        self._source = source
        self._limits = limits
        self._on_commit = on_commit
        self._clock = clock

    async def run(self) -> SyncResult:
        """One run to the end of the feed; RegistryBusy, or SyncFailed once it is recorded."""
        started = datetime.now(UTC)
        try:
            async with registry_writer(self._engine) as conn:
                result = await self._locked(conn, started)
        except RegistryBusy:
            raise  # no run of ours: the holder's run is counted
        except Exception:  # recorded in registry_runs by _locked, when the database let it
            REGISTRY_RUNS.labels(kind="sync", outcome="failed").inc()
            raise
        REGISTRY_RUNS.labels(kind="sync", outcome=result.outcome).inc()
        if result.outcome != "success":  # the caller reports it: a log line, a problem, stderr
            raise SyncFailed(result.error or result.outcome, refused=result.outcome == "refused")
        log.info(
            "sync: %d pages, %d added, %d changed, %d items rejected",
            result.pages,
            result.totals.added,
            result.totals.changed,
            result.totals.rejected,
        )
        SYNC_LAST_SUCCESS.set(time.time())
        return result

    async def report_last_success(self) -> None:
        """Set the last-success gauge from the runs table, so a restart does not reset it."""
        finished = await last_success(self._engine, "sync")
        if finished is not None:
            SYNC_LAST_SUCCESS.set(finished.timestamp())

    async def started_within(self, seconds: float) -> bool:
        """Whether a sync started less than `seconds` ago in any process."""
        latest = await last_started(self._engine, "sync")
        return latest is not None and datetime.now(UTC) - latest < timedelta(seconds=seconds)

    async def _locked(self, conn: AsyncConnection, started: datetime) -> SyncResult:
        run_id = await start_run(conn, "sync", self._source, started)
        cursor, as_of = await read_cursor(conn)
        run = RunState(run_id, cursor, SyncResult(cursor=cursor, as_of=as_of))
        try:
            await self._pages(conn, run)
            run.result.outcome = "success"
        except (FeedError, RunStop) as exc:
            await self._stopped(conn, run, exc)
        except BaseException as exc:
            outcome, error = run_outcome(exc)
            if isinstance(exc, asyncio.CancelledError):
                outcome = "interrupted"
            await self._finish_quietly(conn, run, outcome, error)
            raise
        await finish_run(
            conn, run.run_id, run.result.outcome, run.result.error, run.result.totals.rejected
        )
        return run.result

    async def _pages(self, conn: AsyncConnection, run: RunState) -> None:
        since = None if run.start_cursor is None else run.start_cursor - self._limits.overlap
        deadline = self._clock() + self._limits.run_timeout
        token: str | None = None
        while True:
            if run.result.pages >= self._limits.max_pages:
                raise RunStop(
                    f"the feed has more than {self._limits.max_pages} pages for one run; "
                    "the next run goes on from the cursor"
                )
            body = await self._client.fetch(since=since, token=token, deadline=deadline)
            page = await asyncio.to_thread(parse_page, body, now=datetime.now(UTC))
            check_page(page, run, self._limits)
            await self._apply(conn, page, run)
            if page.next_token is None:
                return
            run.seen.add(page.next_token)
            token = page.next_token

    async def _apply(self, conn: AsyncConnection, page: FeedPage, run: RunState) -> None:
        result = run.result
        newest = max((item.updated_at for item in page.items), default=None)
        mark = PageMark(
            now=datetime.now(UTC),
            as_of=page.as_of,
            cursor=_later(result.cursor, newest),
            source=self._source,
            run_id=run.run_id,
            run_before=result.totals,
            rejected=len(page.errors),
        )
        counts, result.generation = await apply_page(conn, page.items, mark)
        result.totals += counts
        result.pages += 1
        result.cursor, result.as_of = mark.cursor, page.as_of
        run.newest = _later(run.newest, newest)
        await self._committed()

    async def _committed(self) -> None:
        if self._on_commit is None:
            return
        try:
            await self._on_commit()
        except Exception:  # the store's own poll catches up within a second or two
            log.warning("could not refresh the registry store after a sync commit", exc_info=True)

    async def _stopped(
        self, conn: AsyncConnection, run: RunState, exc: FeedError | RunStop
    ) -> None:
        refused = isinstance(exc, RunStop) and exc.refused
        run.result.outcome = "refused" if refused else "failed"
        run.result.error = self._client.redact(str(exc))[:1000]
        if isinstance(exc, RunStop) and exc.rewind:
            await rewind_cursor(conn, run.start_cursor)
            run.result.cursor = run.start_cursor

    async def _finish_quietly(
        self, conn: AsyncConnection, run: RunState, outcome: str, error: str
    ) -> None:
        try:
            await finish_run(conn, run.run_id, outcome, error, run.result.totals.rejected)
        except Exception:  # the failure being raised matters more than its record
            log.exception("could not record the end of sync run %d", run.run_id)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)
