"""Writing check records in bulk, reading one back, and purging those past retention.

PostgreSQL gets COPY (asyncpg's copy_records_to_table on the connection's own driver
connection, so it joins the transaction in progress); SQLite one executemany on the driver
connection. The statistics and signals of a batch (tally.py) are folded in by the same
transaction (aggregates.py). Everything done per row is done in one worker thread before the
writes (`_ready`): a flush of a 10,000-item batch must not hold the event loop that answers
single checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Dialect, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.checking import Check
from certcheck.db import bulk
from certcheck.db.tables import check_records
from certcheck.evidence import aggregates, collector, partitions
from certcheck.evidence.records import COLUMNS, Checked, Requested, Source, as_json, rows_of
from certcheck.evidence.tally import Tally, tally_lines

_c = check_records.c
# A check_id's ULID time is when the check was decided: its row is at most this far from it.
_ID_WINDOW = timedelta(days=1)
_COPY_SLICE = 500  # COPY rows encoded between two turns of the event loop


@dataclass(frozen=True, slots=True)
class Batch:
    """Check records ready to write: their rows (COLUMNS order) and what they add up to."""

    rows: Sequence[tuple[Any, ...]]
    tally: Tally


def batch_of(items: Iterable[Checked]) -> Batch:
    """CPU only: the buffer makes it in a worker thread, off the event loop."""
    grouped: dict[tuple[str, Source, str | None], list[tuple[Check, Requested]]] = {}
    for item in items:
        key = (item.platform, item.source, item.job_id)
        lines = grouped.get(key)
        if lines is None:
            grouped[key] = lines = []
        lines.append((item.check, item.requested))
    rows: list[tuple[Any, ...]] = []
    counted = Tally()
    with collector.paused():
        for (platform, source, job_id), lines in grouped.items():
            rows += rows_of(lines, platform, source, job_id)
            tally_lines(lines, platform, source, counted)
    return Batch(rows, counted)


def job_batch(lines: Sequence[tuple[Check, Requested]], platform: str, job_id: str) -> Batch:
    """The records of a job's lines: batch_of without a Checked per line. CPU only."""
    counted = Tally()
    with collector.paused():
        tally_lines(lines, platform, Source.JOB, counted)
        return Batch(rows_of(lines, platform, Source.JOB, job_id), counted)


async def prepare(engine: AsyncEngine, checked_at: Iterable[datetime]) -> None:
    """Make sure the day partitions of these times exist; outside any write transaction."""
    await partitions.ensure(engine, {partitions.day_of(moment) for moment in checked_at})


@dataclass(frozen=True, slots=True)
class Ready:
    """A batch as the driver takes it, made in a worker thread (`_ready`)."""

    records: list[tuple[Any, ...]]  # PostgreSQL: the rows, for COPY; SQLite: for its driver
    days: set[date]  # the day partitions they go in
    fold: aggregates.Ready


def _ready(batch: Batch, dialect: Dialect) -> Ready:
    """CPU only: everything per row that writing the batch needs, off the event loop."""
    with collector.paused():
        return _made_ready(batch, dialect)


def _made_ready(batch: Batch, dialect: Dialect) -> Ready:
    if dialect.name == "postgresql":
        records = list(batch.rows)
        days = {partitions.day_of(at) for at in {row[1] for row in records}}
    else:
        # Not conn.execute(insert(...), rows): SQLAlchemy would run every value of every row
        # through its bind processors on the event loop (db/bulk.py).
        records, days = bulk.per_dialect(_insert, dialect).rows(batch.rows), set()
    return Ready(records, days, aggregates.ready(batch.tally, dialect))


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
    """Insert records made ready and fold their tally on `conn`, inside its transaction."""
    await _write(conn, ready)


async def write(conn: AsyncConnection, batch: Batch) -> None:
    """Insert the batch's rows and fold its tally on `conn`, inside its transaction."""
    if batch.rows:
        await _write(conn, await asyncio.to_thread(_ready, batch, conn.dialect))


async def write_all(engine: AsyncEngine, batch: Batch) -> None:
    if not batch.rows:
        return
    ready = await asyncio.to_thread(_ready, batch, engine.dialect)
    await partitions.ensure(engine, ready.days)
    async with engine.begin() as conn:
        await _write(conn, ready)


async def _write(conn: AsyncConnection, ready: Ready) -> None:
    if conn.dialect.name == "postgresql":
        # COPY, not a JSON text as the aggregates (jsonrows.py): a record's certificate is
        # JSON already, and escaping it into more JSON cost more than asyncpg's encoding.
        driver = await bulk.driver(conn)
        await driver.copy_records_to_table(
            "check_records", records=_sliced(ready.records), columns=COLUMNS
        )
    else:
        await bulk.executemany(conn, bulk.per_dialect(_insert, conn.dialect), ready.records)
    await aggregates.fold(conn, ready.fold)


async def _sliced(rows: Sequence[tuple[Any, ...]]) -> AsyncIterator[tuple[Any, ...]]:
    """`rows`, letting the event loop run between slices: asyncpg encodes COPY's rows on the
    loop and, given a list, all of them in one go (~30 ms for 10,000 records)."""
    for start in range(0, len(rows), _COPY_SLICE):
        for row in rows[start : start + _COPY_SLICE]:
            yield row
        await asyncio.sleep(0)


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
