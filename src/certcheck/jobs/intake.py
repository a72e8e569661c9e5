"""Creating a job from a spooled upload, in one transaction: the job row, then its chunks.

An Idempotency-Key is scoped to the platform and bound to the body's digest. Two uploads with
one key race on the (platform, idempotency_key) unique constraint: the second one gets the
first one's job. On PostgreSQL a per-platform advisory lock serialises job creation, so the cap
on unfinished jobs holds under concurrency; on SQLite the single writer does the same.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.db.tables import recheck_chunks, recheck_inputs, recheck_jobs
from certcheck.errors import IdempotencyKeyReused, TooManyJobs, UploadRefused
from certcheck.jobs.chunks import InputChunk, pack
from certcheck.jobs.records import UNFINISHED, Job, JobStatus, UploadFormat, new_job_id
from certcheck.jobs.views import get_job, job_by_key

# Chunks framed and compressed per trip to a thread, then written with one executemany.
_BATCH = 8
# Namespace of the two-key advisory locks (distinct from the registry's one-key lock).
_PLATFORM_LOCK = 0x3C_10B5


@dataclass(frozen=True, slots=True)
class NewJob:
    platform: str
    format: UploadFormat
    digest: str
    idempotency_key: str | None


async def create_job(
    engine: AsyncEngine, new: NewJob, chunks: Iterator[InputChunk], *, max_unfinished: int
) -> tuple[Job, bool]:
    """The job for this upload and whether it was created now (False: an idempotent replay)."""
    if new.idempotency_key is not None:
        earlier = await job_by_key(engine, new.platform, new.idempotency_key)
        if earlier is not None:
            return _replay(earlier, new), False
    job_id = new_job_id()
    try:
        async with engine.begin() as conn:
            await _insert_job(conn, job_id, new, max_unfinished)
            total = await _store_chunks(conn, job_id, chunks)
            await conn.execute(
                update(recheck_jobs).where(recheck_jobs.c.id == job_id).values(total=total)
            )
    except IntegrityError:
        # Another upload with the same key committed first, while this one was in flight.
        earlier = None
        if new.idempotency_key is not None:
            earlier = await job_by_key(engine, new.platform, new.idempotency_key)
        if earlier is None:
            raise
        return _replay(earlier, new), False
    job = await get_job(engine, job_id, new.platform)
    assert job is not None  # nosec B101 # only narrows the type
    return job, True


def _replay(earlier: Job, new: NewJob) -> Job:
    if earlier.body_digest != new.digest:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {new.idempotency_key!r} was used for job {earlier.id} "
            "with a different body; use a new key for a new upload"
        )
    return earlier


async def _insert_job(conn: AsyncConnection, job_id: str, new: NewJob, most: int) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(
            select(func.pg_advisory_xact_lock(_PLATFORM_LOCK, func.hashtext(new.platform)))
        )
    # Written first: on SQLite that takes the write lock before the count below is read.
    await conn.execute(
        insert(recheck_jobs).values(
            id=job_id,
            platform=new.platform,
            status=JobStatus.QUEUED.value,
            format=new.format.value,
            total=0,
            processed=0,
            allow_count=0,
            block_count=0,
            review_count=0,
            invalid_lines=0,
            idempotency_key=new.idempotency_key,
            body_digest=new.digest,
            created_at=datetime.now(UTC),
        )
    )
    await _refuse_over_cap(conn, new.platform, most)


async def _refuse_over_cap(conn: AsyncConnection, platform: str, most: int) -> None:
    """Counted after this job's row went in, under the platform's lock: this job included."""
    unfinished = await conn.scalar(
        select(func.count()).where(
            recheck_jobs.c.platform == platform,
            recheck_jobs.c.status.in_([s.value for s in UNFINISHED]),
        )
    )
    if (unfinished or 0) > most:
        raise TooManyJobs(
            f"this platform has {most} unfinished re-check jobs, the most allowed; "
            "wait for one to finish, or delete one"
        )


async def _store_chunks(conn: AsyncConnection, job_id: str, chunks: Iterator[InputChunk]) -> int:
    total = 0
    while batch := await asyncio.to_thread(_next_packed, chunks):
        await conn.execute(
            insert(recheck_chunks),
            [
                {
                    "job_id": job_id,
                    "chunk": row["chunk"],
                    "lines": n,
                    "state": "pending",
                    "attempts": 0,
                }
                for row, n in batch
            ],
        )
        await conn.execute(insert(recheck_inputs), [{"job_id": job_id, **row} for row, _ in batch])
        total += sum(lines for _, lines in batch)
    if total == 0:
        raise UploadRefused("the upload holds no lines", code="EMPTY_UPLOAD")
    return total


def _next_packed(chunks: Iterator[InputChunk]) -> list[tuple[dict[str, Any], int]]:
    """Frame and compress the next few chunks (CPU work, run in a thread)."""
    return [(pack(chunk), len(chunk)) for chunk in itertools.islice(chunks, _BATCH)]
