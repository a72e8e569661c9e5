"""The work queue: leasing a chunk, and committing its results with the job's progress.

A lease expires, so a chunk held by a worker that died is taken again. Only the worker that
still holds the lease can commit: the chunk's row is deleted, its results inserted and the job's
counters moved in one transaction, so every line gets exactly one result. On PostgreSQL leases
are taken with FOR UPDATE SKIP LOCKED; SQLite has one writer, and every transaction here writes
first, so it queues for the write lock instead of failing to upgrade a read lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Update,
    and_,
    case,
    delete,
    exists,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.checking import Check
from certcheck.db.tables import recheck_chunks, recheck_inputs, recheck_jobs, recheck_results
from certcheck.db.types import UTCDateTime
from certcheck.evidence import store as check_records
from certcheck.evidence.records import Asked, ShownOnce
from certcheck.jobs.chunks import InputChunk, unpack
from certcheck.jobs.records import JobStatus

_c, _j = recheck_chunks.c, recheck_jobs.c


@dataclass(frozen=True, slots=True)
class Lease:
    id: int
    job_id: str
    chunk: int
    lines: int
    attempts: int  # leases of this chunk so far, this one included
    worker: str


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    """What a processed chunk adds to its job; `body` is compressed."""

    body: bytes
    decisions: str
    allow: int
    block: int
    review: int
    invalid: int
    generation: int
    registry_as_of: datetime
    # The lines' check records (records_ready), written with the results; None: records are off.
    records: check_records.Ready | None = None


def _available(now: datetime) -> ColumnElement[bool]:
    return or_(_c.state == "pending", and_(_c.state == "leased", _c.lease_until < now))


async def take(engine: AsyncEngine, worker: str, lease_seconds: float) -> Lease | None:
    """Lease the oldest chunk that is pending or whose lease expired; None when there is none."""
    now = datetime.now(UTC)
    async with engine.connect() as conn:  # a read first: idle polls never take a write lock
        if not await conn.scalar(select(exists().where(_available(now)))):
            return None
    async with engine.begin() as conn:
        lease = await _lease(conn, worker, now, now + timedelta(seconds=lease_seconds))
        if lease is not None:
            await conn.execute(
                update(recheck_jobs)
                .where(_j.id == lease.job_id, _j.status == JobStatus.QUEUED.value)
                .values(status=JobStatus.RUNNING.value, started_at=now)
            )
    return lease


async def _lease(
    conn: AsyncConnection, worker: str, now: datetime, until: datetime
) -> Lease | None:
    oldest = (
        select(_c.id)
        .where(_available(now))
        .order_by(_c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    row = (
        await conn.execute(
            update(recheck_chunks)
            .where(_c.id == oldest)
            .values(state="leased", leased_by=worker, lease_until=until, attempts=_c.attempts + 1)
            .returning(_c.id, _c.job_id, _c.chunk, _c.lines, _c.attempts)
        )
    ).first()
    if row is None:
        return None
    return Lease(row.id, row.job_id, row.chunk, row.lines, row.attempts, worker)


async def load_input(engine: AsyncEngine, lease: Lease) -> InputChunk | None:
    """The chunk's lines; None if the job was deleted meanwhile."""
    i = recheck_inputs.c
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(i.line_runs, i.records, i.errors).where(
                    i.job_id == lease.job_id, i.chunk == lease.chunk
                )
            )
        ).first()
    return None if row is None else unpack(lease.chunk, row.line_runs, row.records, row.errors)


async def release(engine: AsyncEngine, lease: Lease, *, count_attempt: bool) -> None:
    """Give the chunk back at once (shutdown, registry unavailable, an error to retry)."""
    async with engine.begin() as conn:
        await conn.execute(
            update(recheck_chunks)
            .where(_c.id == lease.id, _c.leased_by == lease.worker, _c.state == "leased")
            .values(
                state="pending",
                leased_by=None,
                lease_until=None,
                attempts=_c.attempts if count_attempt else _c.attempts - 1,
            )
        )


async def fail_job(engine: AsyncEngine, job_id: str, error: str) -> None:
    """Stop a job for good: its remaining chunks go, the results so far stay."""
    # Chunks, inputs, then the job: the order `take` and `complete` lock rows in. The other
    # order deadlocked on PostgreSQL against a worker committing another chunk of the job.
    async with engine.begin() as conn:
        await conn.execute(delete(recheck_chunks).where(_c.job_id == job_id))
        await conn.execute(delete(recheck_inputs).where(recheck_inputs.c.job_id == job_id))
        await conn.execute(
            update(recheck_jobs)
            .where(
                _j.id == job_id, _j.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value])
            )
            .values(
                status=JobStatus.FAILED.value, error=error[:1000], finished_at=datetime.now(UTC)
            )
        )


class _LeaseLost(Exception):
    pass


async def complete(engine: AsyncEngine, lease: Lease, outcome: ChunkOutcome) -> bool:
    """Commit the chunk's results, their check records and the job's progress as one; False
    if the lease was lost."""
    try:
        async with engine.begin() as conn:
            taken = await conn.execute(
                delete(recheck_chunks).where(
                    _c.id == lease.id, _c.leased_by == lease.worker, _c.state == "leased"
                )
            )
            if taken.rowcount != 1:
                raise _LeaseLost  # expired and taken by another worker, or the job was deleted
            await conn.execute(
                insert(recheck_results).values(
                    job_id=lease.job_id,
                    chunk=lease.chunk,
                    decisions=outcome.decisions,
                    body=outcome.body,
                )
            )
            await conn.execute(
                delete(recheck_inputs).where(
                    recheck_inputs.c.job_id == lease.job_id, recheck_inputs.c.chunk == lease.chunk
                )
            )
            if outcome.records is not None:
                await check_records.write_ready(conn, outcome.records)
            # Last: the job's row and the statistics' counters are what the workers of a job
            # all update, and each holds them until it commits; the others wait meanwhile.
            await conn.execute(_progress(lease, outcome))
    except (_LeaseLost, IntegrityError):  # IntegrityError: the job was deleted meanwhile
        return False
    return True


async def records_ready(
    engine: AsyncEngine,
    job_id: str,
    checked: Sequence[tuple[Check, Asked]],
    shown: ShownOnce,
) -> check_records.Ready:
    """A chunk's check records made ready to write, before its transaction begins: no lock
    is held while a 5,000-line chunk's staged rows take their tens of ms of CPU (in a
    worker thread, not on the event loop)."""
    async with engine.connect() as conn:
        platform = str(await conn.scalar(select(_j.platform).where(_j.id == job_id)))
    records = await asyncio.to_thread(
        check_records.job_ready, checked, platform, job_id, engine.dialect, shown
    )
    await check_records.prepare_days(engine, records)  # outside the transaction (partitions.py)
    return records


def _progress(lease: Lease, outcome: ChunkOutcome) -> Update:
    lines = len(outcome.decisions)
    finished = and_(_j.status == JobStatus.RUNNING.value, _j.processed + lines >= _j.total)
    older = or_(_j.registry_generation.is_(None), _j.registry_generation > outcome.generation)
    return (
        update(recheck_jobs)
        .where(_j.id == lease.job_id)
        .values(
            processed=_j.processed + lines,
            allow_count=_j.allow_count + outcome.allow,
            block_count=_j.block_count + outcome.block,
            review_count=_j.review_count + outcome.review,
            invalid_lines=_j.invalid_lines + outcome.invalid,
            status=case((finished, JobStatus.DONE.value), else_=_j.status),
            finished_at=case(
                (finished, literal(datetime.now(UTC), UTCDateTime)), else_=_j.finished_at
            ),
            # The oldest registry any of its lines was checked against.
            registry_generation=case((older, outcome.generation), else_=_j.registry_generation),
            registry_as_of=case(
                (older, literal(outcome.registry_as_of, UTCDateTime)), else_=_j.registry_as_of
            ),
        )
    )
