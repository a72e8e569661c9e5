"""The workers: every line answered once, waiting out an unusable registry, giving up on a
chunk that keeps failing, and stopping without keeping chunks."""

from __future__ import annotations

import asyncio
import json
import threading

from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.checking import Check
from certcheck.db.tables import recheck_chunks, recheck_results
from certcheck.errors import RegistryUnavailable
from certcheck.jobs import queue
from certcheck.jobs.processing import Parsed
from certcheck.jobs.records import JobStatus
from certcheck.jobs.results import result_stream
from certcheck.jobs.views import get_job
from certcheck.jobs.worker import JobWorkers, WorkerConfig
from certcheck.observability.metrics import RECHECK_LINES
from tests.jobs.helpers import CODEC, checker_over, count, new_job

CONFIG = WorkerConfig(
    workers=2, lease_seconds=60, poll_interval=0.05, max_attempts=2, retention_seconds=0
)


class FailingCodec:
    fields = CODEC.fields

    def parse(self, record: bytes) -> Parsed | str:
        return CODEC.parse(record)

    def render(self, check: Check, listing_id: str | None, line: int, error: str | None) -> bytes:
        raise RuntimeError("renderer broke")


class BlockingCodec(FailingCodec):
    def __init__(self) -> None:
        self.entered = threading.Event()
        self.go_on = threading.Event()

    def parse(self, record: bytes) -> Parsed | str:
        self.entered.set()
        self.go_on.wait(10)
        return CODEC.parse(record)


async def finished(engine: AsyncEngine, job_id: str) -> JobStatus:
    for _ in range(500):
        job = await get_job(engine, job_id, "shop")
        assert job is not None
        if job.status is not JobStatus.QUEUED and job.status is not JobStatus.RUNNING:
            return job.status
        await asyncio.sleep(0.02)
    raise AssertionError("the job did not finish in 10 s")


class TestWorkOnce:
    async def test_every_line_answered_once_in_order(self, engine: AsyncEngine) -> None:
        checker = await checker_over(engine)
        job_id = await new_job(engine, 15, chunk_lines=4)
        workers = JobWorkers(engine, checker, CODEC, CONFIG)
        before = RECHECK_LINES.labels(decision="allow")._value.get()
        while await workers.work_once("w1"):
            pass
        job = await get_job(engine, job_id, "shop")
        assert job is not None
        assert (job.status, job.processed, job.total) == (JobStatus.DONE, 15, 15)
        body = b"".join([part async for part in result_stream(engine, job_id)])
        assert [json.loads(line)["line"] for line in body.splitlines()] == list(range(1, 16))
        assert RECHECK_LINES.labels(decision="allow")._value.get() - before == 10

    async def test_no_registry_gives_the_chunk_back(self, engine: AsyncEngine) -> None:
        checker = await checker_over(engine, certificates=0)
        job_id = await new_job(engine, 2)
        workers = JobWorkers(engine, checker, CODEC, CONFIG)
        try:
            await workers.work_once("w1")
        except RegistryUnavailable:
            pass
        else:
            raise AssertionError("a chunk was answered without a registry")
        lease = await queue.take(engine, "w2", 60)
        assert lease is not None
        assert lease.attempts == 1  # the wait did not count against the chunk
        job = await get_job(engine, job_id, "shop")
        assert job is not None
        assert job.processed == 0

    async def test_a_chunk_that_keeps_failing_fails_the_job(self, engine: AsyncEngine) -> None:
        checker = await checker_over(engine)
        job_id = await new_job(engine, 4)
        workers = JobWorkers(engine, checker, FailingCodec(), CONFIG)
        for _ in range(2):
            assert await workers.work_once("w1")
        job = await get_job(engine, job_id, "shop")
        assert job is not None
        assert job.status is JobStatus.FAILED
        assert job.error == "chunk 0 failed 2 times; the last time: RuntimeError"
        assert await count(engine, recheck_chunks) == 0


class TestRunning:
    async def test_started_workers_finish_a_job(self, engine: AsyncEngine) -> None:
        checker = await checker_over(engine)
        job_id = await new_job(engine, 40, chunk_lines=3)
        workers = JobWorkers(engine, checker, CODEC, CONFIG)
        workers.start()
        try:
            workers.wake()
            assert await finished(engine, job_id) is JobStatus.DONE
        finally:
            await workers.stop()
        assert await count(engine, recheck_results) == 14

    async def test_stop_gives_back_a_chunk_it_cannot_finish(self, engine: AsyncEngine) -> None:
        checker = await checker_over(engine)
        await new_job(engine, 2)
        codec = BlockingCodec()
        workers = JobWorkers(engine, checker, codec, CONFIG)
        workers.start()
        try:
            await asyncio.to_thread(codec.entered.wait, 10)
            assert await count(engine, recheck_chunks, recheck_chunks.c.state == "leased") == 1
            await workers.stop()
        finally:
            codec.go_on.set()
        assert await count(engine, recheck_chunks, recheck_chunks.c.state == "pending") == 1
