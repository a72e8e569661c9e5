"""Job housekeeping beside the workers of a `serve` process: the jobs by state for the metrics,
and finished jobs forgotten once past their retention (CERTCHECK_JOB_RETENTION)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.tables import recheck_jobs
from certcheck.jobs.records import UNFINISHED, JobStatus
from certcheck.jobs.supervision import WAITING, describe
from certcheck.observability.metrics import JOB_WORKER_CRASHES, RECHECK_JOBS

log = logging.getLogger(__name__)

_jobs = recheck_jobs.c


async def housekeep(
    engine: AsyncEngine, *, every: float, retention_seconds: int, stopped: asyncio.Event
) -> None:
    """A round every `every` seconds until `stopped`; no error ends it."""
    failures = 0
    while not stopped.is_set():
        try:
            await _housekeep_once(engine, retention_seconds)
            failures = 0
        except WAITING as exc:
            log.warning("job housekeeping failed: %s", describe(exc))
        except Exception:
            # A bug: log it (the traceback once per streak), count it, and keep going.
            failures += 1
            JOB_WORKER_CRASHES.labels(task="housekeeping").inc()
            if failures == 1:
                log.exception("job housekeeping failed unexpectedly")
            else:
                log.error("job housekeeping failed again (%d times in a row)", failures)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every):
                await stopped.wait()


async def _housekeep_once(engine: AsyncEngine, retention_seconds: int) -> None:
    for status, count in (await jobs_by_status(engine)).items():
        RECHECK_JOBS.labels(state=status.value).set(count)
    if retention_seconds:
        await purge_finished(engine, datetime.now(UTC) - timedelta(seconds=retention_seconds))


async def purge_finished(engine: AsyncEngine, before: datetime) -> int:
    """Forget jobs that finished before `before`; the number forgotten."""
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(recheck_jobs).where(
                _jobs.finished_at < before,
                _jobs.status.not_in([s.value for s in UNFINISHED]),
            )
        )
    return result.rowcount


async def jobs_by_status(engine: AsyncEngine) -> dict[JobStatus, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(_jobs.status, func.count()).group_by(_jobs.status))
        counted = {JobStatus(status): count for status, count in rows}
    return {status: counted.get(status, 0) for status in JobStatus}
