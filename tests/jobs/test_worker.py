"""The workers: every line answered once, waiting out an unusable registry, giving up on a
chunk that keeps failing, surviving what they did not expect, and stopping without keeping
chunks."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import threading
import time
import weakref
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.app import create_app
from certcheck.checking import Check, Checker
from certcheck.config import Settings
from certcheck.db.tables import recheck_chunks, recheck_jobs, recheck_results
from certcheck.errors import RegistryUnavailable
from certcheck.evidence.records import ShownOnce
from certcheck.jobs import queue
from certcheck.jobs import worker as worker_module
from certcheck.jobs.chunks import InputChunk
from certcheck.jobs.processing import ChunkResult, LineCodec, LineRenderer, Parsed, process_chunk
from certcheck.jobs.records import JobStatus
from certcheck.jobs.views import get_job, result_stream
from certcheck.jobs.worker import JobWorkers, WorkerConfig
from certcheck.observability.metrics import (
    JOB_WORKER_CRASHES,
    JOB_WORKERS_RUNNING,
    RECHECK_CHUNK_FAILURES,
    RECHECK_LINES,
)
from tests.jobs.helpers import CODEC, checker_over, count, new_job, number

CONFIG = WorkerConfig(
    workers=2, lease_seconds=60, poll_interval=0.05, max_attempts=2, retention_seconds=0
)


class FailingCodec:
    fields = CODEC.fields

    def parse(self, record: bytes) -> Parsed | str:
        return CODEC.parse(record)

    def renderer(self, shown: ShownOnce) -> LineRenderer:
        def render(check: Check, listing_id: str | None, line: int, error: str | None) -> bytes:
            raise RuntimeError("renderer broke")

        return render


class BlockingCodec(FailingCodec):
    def __init__(self) -> None:
        self.entered = threading.Event()
        self.go_on = threading.Event()

    def parse(self, record: bytes) -> Parsed | str:
        self.entered.set()
        self.go_on.wait(10)
        return CODEC.parse(record)


class PoisonedProcessor:
    """process_chunk, except that a chunk holding `marker` raises an error of its own: an
    OSError, which is not the database being away and must count against the chunk."""

    def __init__(self, marker: str) -> None:
        self.marker = marker.encode()
        self.poisoned_calls = 0

    async def __call__(self, chunk: InputChunk, checker: Checker, codec: LineCodec) -> ChunkResult:
        if any(self.marker in record for record in chunk.records):
            self.poisoned_calls += 1
            raise OSError("this chunk cannot be read")
        return await process_chunk(chunk, checker, codec)


async def within(seconds: float, done: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + seconds
    while not await done():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        await asyncio.sleep(0.02)


async def finished(engine: AsyncEngine, job_id: str) -> JobStatus:
    async def over() -> bool:
        job = await get_job(engine, job_id, "shop")
        assert job is not None
        return job.status is not JobStatus.QUEUED and job.status is not JobStatus.RUNNING

    await within(30, over)
    job = await get_job(engine, job_id, "shop")
    assert job is not None
    return job.status


def crashes(task: str = "worker") -> float:
    return float(JOB_WORKER_CRASHES.labels(task=task)._value.get())


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

    async def test_lines_read_from_the_registry_are_not_cached(self, engine: AsyncEngine) -> None:
        # A job reads much of a registry once; the cache is the real-time checks'.
        checker = await checker_over(engine)
        await new_job(engine, 6, chunk_lines=3)
        workers = JobWorkers(engine, checker, CODEC, CONFIG)
        while await workers.work_once("w1"):
            pass
        assert checker.store.cache_misses == 6
        await checker.store.lookup([number(0)])
        assert checker.store.cache_misses == 7  # read again: the job kept nothing

    async def test_one_chunk_is_worked_at_a_time_while_others_are_written(
        self, engine: AsyncEngine
    ) -> None:
        checker = await checker_over(engine)
        job_id = await new_job(engine, 4, chunk_lines=2)
        inside, most = 0, 0

        async def process(chunk: InputChunk, checker: Checker, codec: LineCodec) -> ChunkResult:
            nonlocal inside, most
            inside += 1
            most = max(most, inside)
            try:
                await asyncio.sleep(0.05)  # the other worker's chunk would begin meanwhile
                return await process_chunk(chunk, checker, codec)
            finally:
                inside -= 1

        workers = JobWorkers(engine, checker, CODEC, CONFIG, process=process)
        worked = await asyncio.gather(workers.work_once("w1"), workers.work_once("w2"))
        assert list(worked) == [True, True]
        assert most == 1
        job = await get_job(engine, job_id, "shop")
        assert job is not None
        assert (job.status, job.processed) == (JobStatus.DONE, 4)

    async def test_the_next_chunk_is_worked_while_the_last_ones_lines_are_compressed(
        self, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # zlib lets go of the GIL: the other core compresses while the event loop works on.
        checker = await checker_over(engine)
        await new_job(engine, 4, chunk_lines=2)
        begun = 0
        overlapped: list[bool] = []

        async def process(chunk: InputChunk, checker: Checker, codec: LineCodec) -> ChunkResult:
            nonlocal begun
            begun += 1
            return await process_chunk(chunk, checker, codec)

        def compress(data: bytes) -> bytes:
            deadline = time.monotonic() + 5  # for the other worker's chunk to begin
            while begun < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            overlapped.append(begun == 2)
            return zlib.compress(data)

        monkeypatch.setattr(worker_module, "compress", compress)
        workers = JobWorkers(engine, checker, CODEC, CONFIG, process=process)
        worked = await asyncio.gather(workers.work_once("w1"), workers.work_once("w2"))
        assert list(worked) == [True, True]
        assert overlapped == [True, True]

    async def test_the_collector_is_paused_for_a_chunk_on_postgresql_only(
        self, engine: AsyncEngine
    ) -> None:
        checker = await checker_over(engine)
        await new_job(engine, 2, chunk_lines=2)
        seen: list[bool] = []

        async def process(chunk: InputChunk, checker: Checker, codec: LineCodec) -> ChunkResult:
            seen.append(gc.isenabled())
            return await process_chunk(chunk, checker, codec)

        workers = JobWorkers(engine, checker, CODEC, CONFIG, process=process)
        assert gc.isenabled()
        assert await workers.work_once("w1")
        # On SQLite the chunk's commit is long and in this process: paused, cycles piled up.
        assert seen == [engine.dialect.name != "postgresql"]
        assert gc.isenabled()

    async def test_only_the_outcome_waits_for_the_commit(
        self, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Other workers' chunks may be waiting for the same database: a chunk's checks,
        # requests and uncompressed lines must not wait with its outcome.
        checker = await checker_over(engine)
        await new_job(engine, 2)
        made: list[weakref.ref[ChunkResult]] = []

        class Watched(ChunkResult):  # without slots of its own: a weak reference can watch it
            pass

        async def process(chunk: InputChunk, checker: Checker, codec: LineCodec) -> ChunkResult:
            done = await process_chunk(chunk, checker, codec)
            watched = Watched(*(getattr(done, f.name) for f in dataclasses.fields(done)))
            made.append(weakref.ref(watched))
            return watched

        alive: list[bool] = []
        commit = queue.complete

        async def complete(*args: Any) -> bool:
            gc.collect()
            alive.append(made[-1]() is not None)
            return await commit(*args)

        monkeypatch.setattr(queue, "complete", complete)
        workers = JobWorkers(engine, checker, CODEC, CONFIG, process=process)
        assert await workers.work_once("w1")
        assert alive == [False]

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


class TestHoldFile:
    async def test_a_leased_chunk_waits_while_the_file_exists(
        self, engine: AsyncEngine, tmp_path: Path
    ) -> None:
        checker = await checker_over(engine)
        job_id = await new_job(engine, 2)
        hold = tmp_path / "hold"
        hold.touch()
        config = dataclasses.replace(CONFIG, workers=1, hold_file=hold)
        workers = JobWorkers(engine, checker, CODEC, config)
        workers.start()
        try:

            async def leased() -> bool:
                return await count(engine, recheck_chunks, recheck_chunks.c.state == "leased") == 1

            await within(10, leased)
            job = await get_job(engine, job_id, "shop")
            assert job is not None
            assert job.processed == 0
            hold.unlink()
            assert await finished(engine, job_id) is JobStatus.DONE
        finally:
            await workers.stop()


class TestFailures:
    async def test_a_poisoned_chunk_fails_its_job_and_the_workers_go_on(
        self, engine: AsyncEngine
    ) -> None:
        checker = await checker_over(engine)
        poisoned = await new_job(engine, 6)  # chunks [0, 1], [2, 3], [4, 5]: chunk 1 poisoned
        healthy = await new_job(engine, 2)
        process = PoisonedProcessor(number(3))
        failures = RECHECK_CHUNK_FAILURES._value.get()
        workers = JobWorkers(engine, checker, CODEC, CONFIG, process=process)
        workers.start()
        try:
            assert await finished(engine, poisoned) is JobStatus.FAILED
            assert await finished(engine, healthy) is JobStatus.DONE
            later = await new_job(engine, 1)  # the workers are still there to work it
            workers.wake()
            assert await finished(engine, later) is JobStatus.DONE
            assert workers.not_running() is None
        finally:
            await workers.stop()
        job = await get_job(engine, poisoned, "shop")
        assert job is not None
        assert job.error == "chunk 1 failed 2 times; the last time: OSError"
        assert process.poisoned_calls == CONFIG.max_attempts
        assert RECHECK_CHUNK_FAILURES._value.get() - failures == CONFIG.max_attempts

    async def test_a_failing_loop_is_restarted_and_logged_once(
        self, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        checker = await checker_over(engine)
        job_id = await new_job(engine, 4)
        take, failed = queue.take, 0

        async def broken_three_times(*args: object, **kwargs: object) -> queue.Lease | None:
            nonlocal failed
            if failed < 3:
                failed += 1
                raise RuntimeError("a bug outside any chunk")
            return await take(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(queue, "take", broken_three_times)
        before = crashes()
        config = dataclasses.replace(CONFIG, workers=1, poll_interval=0.01)
        workers = JobWorkers(engine, checker, CODEC, config)
        workers.start()
        try:
            assert await finished(engine, job_id) is JobStatus.DONE
            assert workers.not_running() is None
            assert JOB_WORKERS_RUNNING._value.get() == 1
        finally:
            await workers.stop()
        assert crashes() - before == 3
        tracebacks = [r for r in caplog.records if r.exc_info and "job worker" in r.message]
        assert len(tracebacks) == 1
        assert "failed again (3 times in a row" in caplog.text

    async def test_a_loop_that_keeps_failing_is_reported(
        self, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def broken(*_args: object, **_kwargs: object) -> queue.Lease | None:
            raise RuntimeError("a bug outside any chunk")

        monkeypatch.setattr(queue, "take", broken)
        workers = JobWorkers(engine, await checker_over(engine), CODEC, CONFIG)
        workers.start()
        try:

            async def both_down() -> bool:
                return bool(JOB_WORKERS_RUNNING._value.get() == 0)

            await within(10, both_down)
            assert workers.not_running() == "2 of 2 job workers not running (RuntimeError)"
        finally:
            await workers.stop()
        assert workers.not_running() is None  # stopped on purpose: nothing to report

    async def test_housekeeping_survives_what_it_cannot_read(
        self, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
    ) -> None:
        job_id = await new_job(engine, 2)
        async with engine.begin() as conn:  # a status this code does not know
            await conn.execute(update(recheck_jobs).values(status="paused"))
        before = crashes("housekeeping")
        config = dataclasses.replace(CONFIG, housekeeping_every=0.02)
        workers = JobWorkers(engine, await checker_over(engine), CODEC, config)
        workers.start()
        try:

            async def failed_twice() -> bool:
                return crashes("housekeeping") - before >= 2

            await within(10, failed_twice)
        finally:
            await workers.stop()
        assert "job housekeeping failed unexpectedly" in caplog.text
        assert await count(engine, recheck_jobs, recheck_jobs.c.id == job_id) == 1


class TestReadiness:
    async def test_readyz_names_job_workers_that_keep_failing(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def broken(*_args: object, **_kwargs: object) -> queue.Lease | None:
            raise RuntimeError("a bug outside any chunk")

        monkeypatch.setattr(queue, "take", broken)
        app = create_app(settings.model_copy(update={"job_poll_interval": 0.05}))
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                deadline = time.monotonic() + 10
                while "jobs" not in (ready := await client.get("/readyz")).json()["checks"]:
                    assert time.monotonic() < deadline, ready.json()
                    await asyncio.sleep(0.02)
        assert ready.status_code == 503
        workers = settings.job_workers
        assert workers > 1  # the default: more than one worker, all of them named
        expected = f"{workers} of {workers} job workers not running (RuntimeError)"
        assert ready.json()["checks"]["jobs"] == expected
