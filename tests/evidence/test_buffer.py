"""The per-process record buffer: bulk flushes, and a full buffer shedding or waiting."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from ulid import ULID

from certcheck.checking import Check
from certcheck.db.tables import check_counts, check_records
from certcheck.evidence import store
from certcheck.evidence.buffer import CheckRecorder, WhenFull, running
from certcheck.evidence.records import Requested, Source, staged_row
from certcheck.verification.decision import MALFORMED_DECISION


def checked(count: int) -> list[tuple[Any, ...]]:
    """Staged rows, as the buffer keeps them."""
    now = datetime.now(UTC)
    return [
        staged_row(
            Check(str(ULID()), None, MALFORMED_DECISION, None, now, now),
            Requested(listing_id=str(n)),
            "shop",
            Source.BATCH,
        )
        for n in range(count)
    ]


async def stored(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(check_records)) or 0)


def dropped() -> float:
    return REGISTRY.get_sample_value("certcheck_check_records_dropped_total") or 0.0


async def test_a_flush_writes_everything_buffered_at_once(engine: AsyncEngine) -> None:
    recorder = CheckRecorder(engine, capacity=1000, when_full=WhenFull.SHED)
    await recorder.add(checked(250))
    assert await stored(engine) == 0  # nothing is written on the caller's path

    assert await recorder.flush() == 250
    assert (await stored(engine), recorder.held) == (250, 0)


def buffered() -> float | None:
    return REGISTRY.get_sample_value("certcheck_check_records_buffered")


async def test_the_gauge_says_what_waits_at_each_flush_and_when_full(engine: AsyncEngine) -> None:
    recorder = CheckRecorder(engine, capacity=10, when_full=WhenFull.SHED)
    await recorder.flush()
    assert buffered() == 0

    await recorder.add(checked(4))
    assert buffered() == 0  # not at every check: as of the last flush
    await recorder.add(checked(8))  # 6 fit, 2 dropped
    assert buffered() == 10
    await recorder.flush()
    assert buffered() == 0


async def test_a_full_buffer_sheds_and_counts(engine: AsyncEngine) -> None:
    recorder = CheckRecorder(engine, capacity=3, when_full=WhenFull.SHED)
    before = dropped()

    await recorder.add(checked(5))
    await recorder.flush()

    assert dropped() - before == 2
    assert await stored(engine) == 3


async def test_a_full_buffer_makes_the_caller_wait_for_room(engine: AsyncEngine) -> None:
    recorder = CheckRecorder(engine, capacity=2, when_full=WhenFull.WAIT)
    before = dropped()
    adding = asyncio.create_task(recorder.add(checked(5)))
    await asyncio.sleep(0.05)
    assert not adding.done()  # waiting: 2 buffered, 3 to go

    while not adding.done():
        await recorder.flush()
        await asyncio.sleep(0)
    await recorder.flush()

    assert await stored(engine) == 5
    assert dropped() == before


async def test_off_records_nothing(engine: AsyncEngine) -> None:
    recorder = CheckRecorder(engine, capacity=10, when_full=WhenFull.SHED, enabled=False)
    await recorder.add(checked(3))
    assert (await recorder.flush(), await stored(engine)) == (0, 0)


async def test_a_failed_flush_keeps_its_records(engine: AsyncEngine) -> None:
    recorder = CheckRecorder(engine, capacity=1, when_full=WhenFull.SHED)
    items = checked(1)
    await recorder.add(items)
    await recorder.flush()
    await recorder.add(items)  # the same check id twice: the database refuses the write

    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await recorder.flush()

    assert recorder.held == 1


def refused() -> float:
    return REGISTRY.get_sample_value("certcheck_check_records_refused_total") or 0.0


async def test_a_record_the_database_refuses_does_not_hold_back_the_others(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL's text cannot hold a NUL (the API refuses them, so only a bug would send
    one): the flush is written again in halves until the refused record stands alone."""
    recorder = CheckRecorder(engine, capacity=1000, when_full=WhenFull.SHED)
    rows = checked(40)
    now = datetime.now(UTC)
    bad = staged_row(
        Check(str(ULID()), None, MALFORMED_DECISION, None, now, now),
        Requested(listing_id="a\x00b"),
        "shop",
        Source.BATCH,
    )
    before = refused()
    await recorder.add([*rows[:17], bad, *rows[17:]])

    written = await recorder.flush()

    if engine.dialect.name == "postgresql":
        assert (written, await stored(engine), refused() - before) == (40, 40, 1)
        assert f"check record {bad[0]} dropped: the database refused it" in caplog.text
    else:  # SQLite's text holds a NUL as it is
        assert (written, await stored(engine), refused() - before) == (41, 41, 0)
    assert recorder.held == 0
    assert await recorder.flush() == 0  # nothing left to hold back the next


async def test_a_flush_that_committed_unanswered_is_not_written_twice(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = CheckRecorder(engine, capacity=1000, when_full=WhenFull.SHED)
    write_all = store.write_ready_all

    async def committed_then_lost(*args: Any, **kwargs: Any) -> None:
        await write_all(*args, **kwargs)
        raise ConnectionResetError("the answer to COMMIT never came")

    monkeypatch.setattr(store, "write_ready_all", committed_then_lost)
    await recorder.add(checked(30))
    with pytest.raises(ConnectionResetError):
        await recorder.flush()
    monkeypatch.setattr(store, "write_ready_all", write_all)
    assert (recorder.held, await stored(engine)) == (30, 30)  # this process cannot know

    await recorder.add(checked(5))
    assert await recorder.flush() == 35  # the 30 again, with 5 new
    async with engine.connect() as conn:
        counted = await conn.scalar(select(func.sum(check_counts.c.checks)))
    assert (recorder.held, await stored(engine), counted) == (0, 35, 35)


def flush_failures() -> float:
    return REGISTRY.get_sample_value("certcheck_check_record_flush_failures_total") or 0.0


async def until_stored(engine: AsyncEngine, count: int, within: float) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while await stored(engine) < count:
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


class TestRunning:
    async def test_a_flush_worth_is_written_without_waiting_for_the_interval(
        self, engine: AsyncEngine
    ) -> None:
        recorder = CheckRecorder(engine, capacity=100, when_full=WhenFull.SHED)  # due at 50
        async with running(recorder, interval=60):
            await recorder.add(checked(49))
            await asyncio.sleep(0.3)
            assert await stored(engine) == 0  # less than a flush's worth waits its interval

            await recorder.add(checked(1))
            assert await until_stored(engine, 50, within=5)

    async def test_records_below_a_flush_worth_are_written_at_the_interval(
        self, engine: AsyncEngine
    ) -> None:
        recorder = CheckRecorder(engine, capacity=100, when_full=WhenFull.SHED)
        async with running(recorder, interval=0.2):
            await recorder.add(checked(3))
            assert await until_stored(engine, 3, within=5)

    async def test_after_a_failed_flush_the_next_waits_the_interval(
        self, engine: AsyncEngine
    ) -> None:
        recorder = CheckRecorder(engine, capacity=1000, when_full=WhenFull.SHED)
        twice = checked(1)
        await recorder.add(twice)
        await recorder.flush()
        before = flush_failures()
        async with running(recorder, interval=1.0):
            await recorder.add(twice * 500)  # a flush's worth that the database refuses
            for _ in range(20):  # more records keep arriving meanwhile
                await recorder.add(checked(25))
                await asyncio.sleep(0.025)
            failures = flush_failures() - before
            recorder.enabled = False  # nothing more to write at the way out

        assert failures == 1
