"""The job workers inside a `serve` process: tasks that lease chunks and work them until stopped.

CERTCHECK_JOB_WORKERS=0 leaves a process API-only. Stopping lets each worker finish the chunk in
hand (a fraction of a second); one that does not finish in time is cancelled and gives its chunk
back. A worker killed outright loses its chunk only until the lease expires.

No error ends a worker quietly. An unusable registry or database is waited out; any other error
in a chunk fails that chunk, which is retried up to `max_attempts` times before its job fails;
an error outside a chunk (a bug) is logged and the worker's loop restarted (jobs/supervision.py).
Housekeeping (metrics of the jobs by state, retention) runs beside them: jobs/housekeeping.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck import collector
from certcheck.checking import Checker
from certcheck.config import Settings
from certcheck.evidence import store as check_records
from certcheck.jobs import queue
from certcheck.jobs.chunks import InputChunk, compress
from certcheck.jobs.housekeeping import housekeep
from certcheck.jobs.processing import ChunkProcessor, ChunkResult, LineCodec, process_chunk
from certcheck.jobs.supervision import REGISTRY_WAIT, WAITING, Supervisor, describe
from certcheck.observability.metrics import RECHECK_CHUNK_FAILURES, RECHECK_LINES
from certcheck.verification.records import Verdict

log = logging.getLogger(__name__)

_MAX_BACKOFF = 30.0
_STOP_GRACE = 3.0  # seconds to finish the chunk in hand before being cancelled
_RELEASE_TIMEOUT = 1.0  # a chunk not given back in time is taken again when its lease expires
_HOLD_POLL = 0.05  # seconds between two looks at the hold file


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    workers: int
    lease_seconds: float
    poll_interval: float
    max_attempts: int
    retention_seconds: int
    housekeeping_every: float = 10.0
    hold_file: Path | None = None  # a test hook: see Settings.job_hold_file
    check_records: bool = True  # each line's check record is written with the results

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerConfig:
        return cls(
            workers=settings.job_workers,
            lease_seconds=settings.job_lease_seconds,
            poll_interval=settings.job_poll_interval,
            max_attempts=settings.job_max_attempts,
            retention_seconds=settings.job_retention,
            hold_file=settings.job_hold_file,
            check_records=settings.check_records,
        )


class _ChunkFailed(Exception):
    """The processing of one chunk failed for a reason of its own: counted against the chunk."""


class JobWorkers:
    def __init__(
        self,
        engine: AsyncEngine,
        checker: Checker,
        codec: LineCodec,
        config: WorkerConfig,
        *,
        process: ChunkProcessor = process_chunk,
    ) -> None:
        self._engine, self._checker, self._codec, self._config = engine, checker, codec, config
        self._pause_collector = engine.dialect.name == "postgresql"
        self._process = process
        self._wake = asyncio.Event()
        # One chunk's CPU work at a time (processing, compressing, its records made ready):
        # the next chunk is worked while earlier ones' results and records are written. Left
        # to themselves, workers fall into step, all working and then all writing, and the
        # process idles while the database folds records (bench/README.md, "A re-check job").
        # A write with records outlasts the work, so more than two workers keep the turn taken.
        self._turn = asyncio.Lock()
        self._stopping = False
        self._stopped = asyncio.Event()
        self._supervisor = Supervisor(config.poll_interval)
        self._housekeeping: asyncio.Task[None] | None = None
        self._name = f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(3)}"

    def start(self) -> None:
        for number in range(self._config.workers):
            worker = f"{self._name}:{number}"
            self._supervisor.start(worker, functools.partial(self._run, worker))
        if self._config.workers:
            self._housekeeping = asyncio.create_task(
                housekeep(
                    self._engine,
                    every=self._config.housekeeping_every,
                    retention_seconds=self._config.retention_seconds,
                    stopped=self._stopped,
                )
            )

    def wake(self) -> None:
        """A job was created: idle workers look now rather than at their next poll."""
        self._wake.set()

    def not_running(self) -> str | None:
        """Why some of the workers that should run are not running; None when all of them are."""
        return self._supervisor.not_running()

    async def stop(self) -> None:
        self._stopping = True
        self._stopped.set()
        self._wake.set()
        # Housekeeping finishes its round rather than being cancelled: a task cancelled while
        # it connects can leave a connection the pool never closes (jobs/housekeeping.py).
        tasks = [*self._supervisor.stop(), *([self._housekeeping] if self._housekeeping else [])]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=_STOP_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, worker: str) -> None:
        failures = 0
        while not self._stopping:
            try:
                worked = await self.work_once(worker)
                failures = 0
            except WAITING as exc:
                failures += 1
                delay = min(_MAX_BACKOFF, self._config.poll_interval * 2**failures)
                log.warning("job worker waits %.0f s: %s", delay, describe(exc))
                self._supervisor.ran_cleanly(worker)  # waiting is the loop doing its job
                await self._idle(delay)
                continue
            self._supervisor.ran_cleanly(worker)
            if not worked:
                await self._idle(self._config.poll_interval)

    async def _idle(self, seconds: float) -> None:
        """Sleep until `seconds` pass, a job is created or the workers stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        if not self._stopping:
            self._wake.clear()

    async def work_once(self, worker: str) -> bool:
        """Lease one chunk and work it; False when there was nothing to do."""
        lease = await queue.take(self._engine, worker, self._config.lease_seconds)
        if lease is None:
            return False
        if lease.attempts > self._config.max_attempts:
            await queue.fail_job(self._engine, lease.job_id, _gave_up(lease, "workers died on it"))
            return True
        try:
            committed = await self._work(lease)
        except (*WAITING, asyncio.CancelledError):
            await self._give_back(lease)
            raise
        except Exception as exc:
            log.exception("re-check chunk %s/%d failed", lease.job_id, lease.chunk)
            RECHECK_CHUNK_FAILURES.inc()
            await self._failed(lease, exc.__cause__ if isinstance(exc, _ChunkFailed) else exc)
            return True
        if committed is not None:
            for verdict in Verdict:
                RECHECK_LINES.labels(decision=verdict.value).inc(committed[verdict])
        return True

    async def _work(self, lease: queue.Lease) -> Counter[Verdict] | None:
        """The chunk's counts once committed; None if it was not (the job deleted, the lease
        lost)."""
        chunk = await queue.load_input(self._engine, lease)
        if chunk is None:
            return None  # the job was deleted
        async with self._turn:
            # The chunk's lines, checks and records are made with the cyclic collector paused
            # (collector.py): it would walk them again and again for nothing. Not on SQLite,
            # where the commit is the database's own work in this process and takes longer:
            # cycles made by everything else meanwhile piled up, and a million-line job peaked
            # 11-26 MiB higher, at 298-309 MiB, for no time saved (bench/README.md,
            # twenty-fourth pass).
            with collector.paused() if self._pause_collector else contextlib.nullcontext():
                result, records = await self._worked(lease, chunk)
        # zlib lets go of the GIL: compressed after its turn, a chunk's lines leave the event
        # loop to the next chunk while the other core compresses them (a tenth of a job's
        # time, bench/README.md, twenty-eighth pass).
        outcome = await _outcome(result, records)
        counts = result.counts
        # Only the outcome (the compressed lines, the records' rows) waits for the commit: the
        # chunk's checks, requests and uncompressed lines are gone before it, and other
        # workers' chunks may be waiting for the same database.
        del result
        await self._hold()
        return counts if await queue.complete(self._engine, lease, outcome) else None

    async def _worked(
        self, lease: queue.Lease, chunk: InputChunk
    ) -> tuple[ChunkResult, check_records.Ready | None]:
        try:
            result = await self._process(chunk, self._checker, self._codec)
        except REGISTRY_WAIT:
            raise
        except Exception as exc:
            # Not a database or registry to wait out, whatever its type (an OSError from a
            # parser is the chunk's own): it counts against the chunk, or it would be retried
            # for ever.
            raise _ChunkFailed from exc
        records = None
        if self._config.check_records and result.checked:
            records = await queue.records_ready(
                self._engine, lease.job_id, result.checked, result.shown
            )
        return result, records

    async def _hold(self) -> None:
        """While the hold file exists, keep the lease without committing (a test hook)."""
        hold = self._config.hold_file
        if hold is None:
            return
        # Polling a file, not awaiting an Event: what drives it is a test in another process.
        while await asyncio.to_thread(hold.exists):  # noqa: ASYNC110
            await asyncio.sleep(_HOLD_POLL)

    async def _give_back(self, lease: queue.Lease) -> None:
        release = queue.release(self._engine, lease, count_attempt=False)
        try:
            await asyncio.wait_for(asyncio.shield(release), _RELEASE_TIMEOUT)
        except (*WAITING, asyncio.CancelledError) as exc:
            log.warning(
                "chunk %s/%d not given back (%s): its lease will expire",
                lease.job_id,
                lease.chunk,
                describe(exc),
            )

    async def _failed(self, lease: queue.Lease, exc: BaseException | None) -> None:
        if lease.attempts >= self._config.max_attempts:
            await queue.fail_job(self._engine, lease.job_id, _gave_up(lease, describe(exc)))
        else:
            await queue.release(self._engine, lease, count_attempt=True)


def _gave_up(lease: queue.Lease, why: str) -> str:
    return f"chunk {lease.chunk} failed {lease.attempts} times; the last time: {why}"


async def _outcome(result: ChunkResult, records: check_records.Ready | None) -> queue.ChunkOutcome:
    """What the worked chunk adds to its job, its lines compressed in a worker thread."""
    return queue.ChunkOutcome(
        body=await asyncio.to_thread(compress, result.body),
        decisions=result.decisions,
        allow=result.counts[Verdict.ALLOW],
        block=result.counts[Verdict.BLOCK],
        review=result.counts[Verdict.REVIEW],
        invalid=result.invalid,
        generation=result.registry.generation,
        registry_as_of=result.registry.as_of,
        records=records,
    )
