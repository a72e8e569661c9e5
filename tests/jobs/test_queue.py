"""The work queue: leases, their expiry, and results committed with progress as one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.tables import recheck_chunks, recheck_inputs, recheck_jobs, recheck_results
from certcheck.jobs import queue
from certcheck.jobs.records import JobStatus
from certcheck.jobs.views import get_job
from tests.jobs.helpers import count, new_job


def outcome(lines: int, generation: int = 1) -> queue.ChunkOutcome:
    return queue.ChunkOutcome(
        body=b"zlib",
        decisions="a" * (lines - 1) + "b",
        allow=lines - 1,
        block=1,
        review=0,
        invalid=1,
        generation=generation,
        registry_as_of=datetime(2026, 11, 1, tzinfo=UTC),
    )


class TestTake:
    async def test_oldest_chunk_first_and_the_job_starts(self, engine: AsyncEngine) -> None:
        first = await new_job(engine, 4)
        await new_job(engine, 2)
        lease = await queue.take(engine, "w1", 60)
        assert lease is not None
        assert (lease.job_id, lease.chunk, lease.lines, lease.attempts) == (first, 0, 2, 1)
        job = await get_job(engine, first, "shop")
        assert job is not None
        assert job.status is JobStatus.RUNNING
        assert job.started_at is not None

    async def test_nothing_to_do(self, engine: AsyncEngine) -> None:
        assert await queue.take(engine, "w1", 60) is None

    async def test_each_chunk_goes_to_one_worker(self, engine: AsyncEngine) -> None:
        await new_job(engine, 16)  # 8 chunks
        leases = await asyncio.gather(*(queue.take(engine, f"w{n}", 60) for n in range(8)))
        assert sorted(lease.chunk for lease in leases if lease) == list(range(8))
        assert await queue.take(engine, "w9", 60) is None

    async def test_an_expired_lease_is_taken_again(self, engine: AsyncEngine) -> None:
        await new_job(engine, 2)
        dead = await queue.take(engine, "dead", 0.01)
        await asyncio.sleep(0.05)
        again = await queue.take(engine, "alive", 60)
        assert dead is not None
        assert again is not None
        assert (again.id, again.attempts) == (dead.id, 2)


class TestComplete:
    async def test_results_and_progress_commit_together(self, engine: AsyncEngine) -> None:
        job_id = await new_job(engine, 3)  # chunks of 2 and 1
        for _ in range(2):
            lease = await queue.take(engine, "w1", 60)
            assert lease is not None
            assert await queue.complete(engine, lease, outcome(lease.lines))
        job = await get_job(engine, job_id, "shop")
        assert job is not None
        assert (job.status, job.processed, job.invalid_lines) == (JobStatus.DONE, 3, 2)
        assert [job.counts[v] for v in job.counts] == [1, 2, 0]
        assert job.finished_at is not None
        assert job.registry_as_of == datetime(2026, 11, 1, tzinfo=UTC)
        assert await count(engine, recheck_results) == 2
        assert await count(engine, recheck_chunks) == 0
        assert await count(engine, recheck_inputs) == 0

    async def test_a_lost_lease_commits_nothing(self, engine: AsyncEngine) -> None:
        await new_job(engine, 2)
        slow = await queue.take(engine, "slow", 0.01)
        await asyncio.sleep(0.05)
        fast = await queue.take(engine, "fast", 60)
        assert slow is not None
        assert fast is not None
        assert not await queue.complete(engine, slow, outcome(2))
        assert await count(engine, recheck_results) == 0
        assert await queue.complete(engine, fast, outcome(2))
        assert await count(engine, recheck_results) == 1

    async def test_a_deleted_job_commits_nothing(self, engine: AsyncEngine) -> None:
        job_id = await new_job(engine, 2)
        lease = await queue.take(engine, "w1", 60)
        assert lease is not None
        async with engine.begin() as conn:
            await conn.execute(delete(recheck_jobs).where(recheck_jobs.c.id == job_id))
        assert not await queue.complete(engine, lease, outcome(2))
        assert await count(engine, recheck_results) == 0

    async def test_the_oldest_registry_is_reported(self, engine: AsyncEngine) -> None:
        job_id = await new_job(engine, 4)
        for generation in (5, 3):
            lease = await queue.take(engine, "w1", 60)
            assert lease is not None
            await queue.complete(engine, lease, outcome(2, generation))
        async with engine.connect() as conn:
            query = select(recheck_jobs.c.registry_generation).where(recheck_jobs.c.id == job_id)
            assert await conn.scalar(query) == 3


class TestRelease:
    @pytest.mark.parametrize(("counted", "attempts"), [(False, 0), (True, 1)])
    async def test_the_chunk_is_pending_again(
        self, engine: AsyncEngine, counted: bool, attempts: int
    ) -> None:
        await new_job(engine, 2)
        lease = await queue.take(engine, "w1", 60)
        assert lease is not None
        await queue.release(engine, lease, count_attempt=counted)
        again = await queue.take(engine, "w2", 60)
        assert again is not None
        assert (again.id, again.attempts) == (lease.id, attempts + 1)


class TestFailJob:
    async def test_the_rest_is_dropped_and_the_results_kept(self, engine: AsyncEngine) -> None:
        job_id = await new_job(engine, 6)
        lease = await queue.take(engine, "w1", 60)
        assert lease is not None
        await queue.complete(engine, lease, outcome(2))
        await queue.fail_job(engine, job_id, "chunk 1 failed 5 times")
        job = await get_job(engine, job_id, "shop")
        assert job is not None
        assert (job.status, job.error, job.processed) == (
            JobStatus.FAILED,
            "chunk 1 failed 5 times",
            2,
        )
        assert await count(engine, recheck_chunks) == 0
        assert await count(engine, recheck_inputs) == 0
        assert await count(engine, recheck_results) == 1
