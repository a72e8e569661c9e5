"""Writing check records in bulk, reading one back, and purging those past retention.

PostgreSQL gets COPY into a staging table, from which the database inserts the records and
counts their statistics and signals itself (staged.py); SQLite one executemany on the driver
connection, with the figures counted here (tally.py) and folded in by the same transaction
(aggregates.py). Everything done per row is done in one worker thread before the writes
(`_ready`): a flush of a 10,000-item batch must not hold the event loop that answers single
checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Dialect, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.checking import Check
from certcheck.db import bulk
from certcheck.db.tables import check_records
from certcheck.evidence import aggregates, collector, partitions, staged
from certcheck.evidence.records import COLUMNS, Checked, Requested, Source, as_json, rows_of
from certcheck.evidence.tally import Tally, tally_lines

_c = check_records.c
# A check_id's ULID time is when the check was decided: its row is at most this far from it.
_ID_WINDOW = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Lines:
    """Checks of one platform, source and job: what their rows share is made once."""

    platform: str
    source: Source
    job_id: str | None
    lines: list[tuple[Check, Requested]]


@dataclass(frozen=True, slots=True)
class Batch:
    """Check records to write, grouped by platform, source and job."""

    groups: tuple[Lines, ...]

    def rows(self, *, codes: bool = False) -> list[tuple[Any, ...]]:
        """The check_records rows (COLUMNS order; with `codes`, staged.STAGE_COLUMNS)."""
        rows: list[tuple[Any, ...]] = []
        for g in self.groups:
            rows += rows_of(g.lines, g.platform, g.source, g.job_id, codes=codes)
        return rows

    def tally(self) -> Tally:
        """What the records add to the statistics and signals (tally.py)."""
        counted = Tally()
        for g in self.groups:
            tally_lines(g.lines, g.platform, g.source, counted)
        return counted


def batch_of(items: Iterable[Checked]) -> Batch:
    grouped: dict[tuple[str, Source, str | None], list[tuple[Check, Requested]]] = {}
    for item in items:
        key = (item.platform, item.source, item.job_id)
        lines = grouped.get(key)
        if lines is None:
            grouped[key] = lines = []
        lines.append((item.check, item.requested))
    return Batch(tuple(Lines(*key, lines) for key, lines in grouped.items()))


def job_batch(lines: Sequence[tuple[Check, Requested]], platform: str, job_id: str) -> Batch:
    """The records of a job's lines: batch_of without a Checked per line."""
    return Batch((Lines(platform, Source.JOB, job_id, list(lines)),))


async def prepare(engine: AsyncEngine, checked_at: Iterable[datetime]) -> None:
    """Make sure the day partitions of these times exist; outside any write transaction."""
    await partitions.ensure(engine, {partitions.day_of(moment) for moment in checked_at})


@dataclass(frozen=True, slots=True)
class Ready:
    """A batch as the driver takes it, made in a worker thread (`_ready`)."""

    records: list[tuple[Any, ...]]  # PostgreSQL: staged rows, for COPY; SQLite: for its driver
    days: set[date]  # the day partitions they go in
    fold: aggregates.Ready | None  # SQLite's figures; PostgreSQL folds them itself (staged.py)


def _ready(batch: Batch, dialect: Dialect) -> Ready:
    """CPU only: everything per row that writing the batch needs, off the event loop."""
    with collector.paused():
        if dialect.name == "postgresql":
            rows = batch.rows(codes=True)
            return Ready(rows, _days(rows), None)
        # Not conn.execute(insert(...), rows): SQLAlchemy would run every value of every row
        # through its bind processors on the event loop (db/bulk.py).
        records = bulk.per_dialect(_insert, dialect).rows(batch.rows())
        return Ready(records, set(), aggregates.ready(batch.tally(), dialect))


def _days(rows: Sequence[tuple[Any, ...]]) -> set[date]:
    """The partitions' days from the first to the last check of `rows` (a flush's checks
    are seconds apart, a job chunk's one instant): two day_of calls, not one a row."""
    if not rows:
        return set()
    times = [row[1] for row in rows]
    first, last = partitions.day_of(min(times)), partitions.day_of(max(times))
    return {first + timedelta(days=n) for n in range((last - first).days + 1)}


def _insert(dialect: Dialect) -> bulk.Statement:
    return bulk.statement(insert(check_records), dialect, COLUMNS)


def job_ready(
    lines: Sequence[tuple[Check, Requested]], platform: str, job_id: str, dialect: Dialect
) -> Ready:
    """A job chunk's records, ready to write (`write_ready`). CPU only: a worker thread."""
    return _ready(job_batch(lines, platform, job_id), dialect)


async def prepare_days(engine: AsyncEngine, ready: Ready) -> None:
    """The day partitions `ready`'s records go in; outside any write transaction."""
    await partitions.ensure(engine, ready.days)


async def write_ready(conn: AsyncConnection, ready: Ready) -> None:
    """Insert records made ready and fold their figures on `conn`, inside its transaction."""
    await _write(conn, ready)


async def write(conn: AsyncConnection, batch: Batch) -> None:
    """Insert the batch's records and fold their figures on `conn`, inside its transaction."""
    if batch.groups:
        await _write(conn, await asyncio.to_thread(_ready, batch, conn.dialect))


async def write_all(engine: AsyncEngine, batch: Batch) -> None:
    if not batch.groups:
        return
    ready = await asyncio.to_thread(_ready, batch, engine.dialect)
    await partitions.ensure(engine, ready.days)
    async with engine.begin() as conn:
        await _write(conn, ready)


async def _write(conn: AsyncConnection, ready: Ready) -> None:
    if not ready.records:
        return
    if ready.fold is None:
        await staged.write(await bulk.driver(conn), ready.records)
        return
    await bulk.executemany(conn, bulk.per_dialect(_insert, conn.dialect), ready.records)
    await aggregates.fold(conn, ready.fold)


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
