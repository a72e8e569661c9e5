"""Writing check records in bulk, reading one back, and purging those past retention.

A batch's rows, with what its statistics and signals count each check under, go to the
connection's staging table (COPY on PostgreSQL, multi-row INSERTs on SQLite), from which the
database inserts the records and folds their figures in the same transaction (staged.py).
Everything done per row is done in one worker thread before the writes (`_ready`): a flush of
a 10,000-item batch must not hold the event loop that answers single checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Dialect, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck import collector
from certcheck.checking import Check
from certcheck.db.tables import check_records
from certcheck.evidence import aggregates, partitions, staged
from certcheck.evidence.records import (
    Asked,
    Checked,
    Requested,
    ShownOnce,
    Source,
    as_json,
    moment_of,
    rows_of,
)

_c = check_records.c
# A check_id's ULID time is when the check was decided: its row is at most this far from it.
_ID_WINDOW = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Lines:
    """Checks of one platform, source and job: what their rows share is made once."""

    platform: str
    source: Source
    job_id: str | None
    lines: Sequence[tuple[Check, Requested]]


@dataclass(frozen=True, slots=True)
class Batch:
    """Check records to write, grouped by platform, source and job."""

    groups: tuple[Lines, ...]

    def rows(self, *, staged: bool = False) -> list[tuple[Any, ...]]:
        """The check_records rows (COLUMNS order), or `staged` (staged.STAGE_COLUMNS)."""
        rows: list[tuple[Any, ...]] = []
        for g in self.groups:
            rows += rows_of(g.lines, g.platform, g.source, g.job_id, staged=staged)
        return rows


def batch_of(items: Iterable[Checked]) -> Batch:
    grouped: dict[tuple[str, Source, str | None], list[tuple[Check, Requested]]] = {}
    for item in items:
        key = (item.platform, item.source, item.job_id)
        lines = grouped.get(key)
        if lines is None:
            grouped[key] = lines = []
        lines.append((item.check, item.requested))
    return Batch(tuple(Lines(*key, lines) for key, lines in grouped.items()))


async def prepare(engine: AsyncEngine, checked_at: Iterable[datetime]) -> None:
    """Make sure the day partitions of these times exist; outside any write transaction."""
    await partitions.ensure(engine, {partitions.day_of(moment) for moment in checked_at})


@dataclass(frozen=True, slots=True)
class Ready:
    """A batch as the driver takes it, made in a worker thread (`_ready`)."""

    rows: list[tuple[Any, ...]]  # staged rows (staged.py), ready for the driver
    days: set[date]  # the day partitions they go in (PostgreSQL)


def _ready(batch: Batch, dialect: Dialect) -> Ready:
    """CPU only: everything per row that writing the batch needs, off the event loop."""
    with collector.paused():
        return ready(batch.rows(staged=True), dialect)


def ready(rows: list[tuple[Any, ...]], dialect: Dialect) -> Ready:
    """Staged rows (records.staged_row, rows_of) made ready to write. CPU only: on SQLite
    every value goes through its bind processor, so a worker thread."""
    with collector.paused():
        return Ready(staged.ready(rows, dialect), _days(rows))


def batch_rows(
    lines: Sequence[tuple[Check, Asked]], platform: str, shown: ShownOnce
) -> list[tuple[Any, ...]]:
    """The staged rows of a verify batch's checks, for the buffer, their certificates' JSON
    by `shown`, which writes the batch's answer too. CPU only: a worker thread, so that
    single checks go on while 10,000 rows are made."""
    with collector.paused():
        return rows_of(lines, platform, Source.BATCH, None, staged=True, shown=shown)


def _days(rows: Sequence[tuple[Any, ...]]) -> set[date]:
    """The partitions' days from the first to the last check of `rows` (a flush's checks
    are seconds apart, a job chunk's one instant): two day_of calls, not one a row."""
    if not rows:
        return set()
    times = [row[1] for row in rows]  # records.micros
    first, last = (partitions.day_of(moment_of(n)) for n in (min(times), max(times)))
    return {first + timedelta(days=n) for n in range((last - first).days + 1)}


def job_ready(
    lines: Sequence[tuple[Check, Asked]],
    platform: str,
    job_id: str,
    dialect: Dialect,
    shown: ShownOnce,
) -> Ready:
    """A job chunk's records, ready to write (`write_ready`), their certificates' JSON by
    `shown`, which wrote the chunk's result lines. CPU only: a worker thread."""
    with collector.paused():
        return ready(
            rows_of(lines, platform, Source.JOB, job_id, staged=True, shown=shown), dialect
        )


async def prepare_days(engine: AsyncEngine, ready: Ready) -> None:
    """The day partitions `ready`'s records go in; outside any write transaction."""
    await partitions.ensure(engine, ready.days)


async def write_ready(conn: AsyncConnection, ready: Ready) -> None:
    """Insert records made ready and fold their figures on `conn`, inside its transaction."""
    await staged.write(conn, ready.rows)


async def write(conn: AsyncConnection, batch: Batch) -> None:
    """Insert the batch's records and fold their figures on `conn`, inside its transaction."""
    if batch.groups:
        await staged.write(conn, (await asyncio.to_thread(_ready, batch, conn.dialect)).rows)


async def write_all(engine: AsyncEngine, batch: Batch, *, uncertain: bool = False) -> None:
    """The batch in one transaction (write_ready_all)."""
    if batch.groups:
        made = await asyncio.to_thread(_ready, batch, engine.dialect)
        await write_ready_all(engine, made, uncertain=uncertain)


async def write_ready_all(engine: AsyncEngine, made: Ready, *, uncertain: bool = False) -> None:
    """Records made ready, in one transaction. `uncertain`: some of them may be written
    already (an earlier write of them ended without an answer): those are left out."""
    if not made.rows:
        return
    await partitions.ensure(engine, made.days)
    async with engine.begin() as conn:
        await staged.write(conn, made.rows, uncertain=uncertain)


@dataclass(frozen=True, slots=True)
class RecordReader:
    engine: AsyncEngine
    retention_days: int

    async def get(self, check_id: str, issued: datetime, platform: str) -> dict[str, Any] | None:
        """The record of `check_id` (upper case) made by `platform`; None when there is none
        for it, including records past retention not yet purged."""
        oldest = max(datetime.now(UTC) - timedelta(days=self.retention_days), issued - _ID_WINDOW)
        query = select(check_records).where(
            _c.check_id == check_id,
            _c.platform == platform,
            _c.checked_at >= oldest,
            _c.checked_at <= issued + _ID_WINDOW,  # with the line above: one to three partitions
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else as_json(row)


async def purge(engine: AsyncEngine, retention_days: int) -> str:
    """Forget records older than the retention; what was done, for the command's output."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    # The figures go with the records they count: statistics stay a count over the records.
    async with engine.begin() as conn:
        counts, members, _, signals = await aggregates.purge(conn, cutoff)
    figures = f"; forgot {counts + members} statistics rows and {signals} signal rows"
    if engine.dialect.name == "postgresql":
        days = await partitions.drop_before(engine, cutoff)
        return (
            f"dropped {len(days)} day partitions"
            + (f" ({days[0]} to {days[-1]})" if days else "")
            + figures
        )
    async with engine.begin() as conn:
        deleted = await conn.execute(delete(check_records).where(_c.checked_at < cutoff))
    return f"deleted {deleted.rowcount} records{figures}"
