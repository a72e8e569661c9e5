"""Reading and forgetting jobs: one job for its platform, the jobs by state, old jobs purged."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.tables import recheck_jobs
from certcheck.jobs.records import UNFINISHED, Job, JobStatus, job_from_row

_jobs = recheck_jobs.c


async def get_job(engine: AsyncEngine, job_id: str, platform: str) -> Job | None:
    """The job, if it exists and belongs to `platform`: others' jobs do not exist for them."""
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(recheck_jobs).where(_jobs.id == job_id, _jobs.platform == platform)
                )
            )
            .mappings()
            .first()
        )
    return None if row is None else job_from_row(row)


async def job_by_key(engine: AsyncEngine, platform: str, key: str) -> Job | None:
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(recheck_jobs).where(
                        _jobs.platform == platform, _jobs.idempotency_key == key
                    )
                )
            )
            .mappings()
            .first()
        )
    return None if row is None else job_from_row(row)


async def delete_job(engine: AsyncEngine, job_id: str, platform: str) -> bool:
    """Cancel and forget: its chunks, inputs and results go with it (ON DELETE CASCADE)."""
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(recheck_jobs).where(_jobs.id == job_id, _jobs.platform == platform)
        )
    return result.rowcount > 0


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
