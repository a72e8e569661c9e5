"""Writing check records in bulk, reading one back, and purging those past retention.

PostgreSQL gets COPY (asyncpg's copy_records_to_table on the connection's own driver
connection, so it joins the transaction in progress); SQLite one executemany on the driver
connection, its values made ready for the driver in a thread. The statistics and signals of a
batch (tally.py) are folded in by the same transaction (aggregates.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Dialect, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.db.tables import check_records
from certcheck.evidence import aggregates, partitions
from certcheck.evidence.records import COLUMNS, Checked, as_json, row_of
from certcheck.evidence.tally import Tally, tally

_c = check_records.c
# A check_id's ULID time is when the check was decided: its row is at most this far from it.
_ID_WINDOW = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Batch:
    """Check records ready to write: their rows (COLUMNS order) and what they add up to."""

    rows: Sequence[tuple[Any, ...]]
    tally: Tally


def batch_of(items: Sequence[Checked]) -> Batch:
    """CPU only: the buffer makes it in a worker thread, off the event loop."""
    return Batch([row_of(item) for item in items], tally(items))


async def prepare(engine: AsyncEngine, checked_at: Iterable[datetime]) -> None:
    """Make sure the day partitions of these times exist; outside any write transaction."""
    await partitions.ensure(engine, {partitions.day_of(moment) for moment in checked_at})


async def write(conn: AsyncConnection, batch: Batch) -> None:
    """Insert the batch's rows and fold its tally on `conn`, inside its transaction."""
    rows = batch.rows
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("SELECT 1")  # the transaction starts with a statement
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_records_to_table("check_records", records=rows, columns=COLUMNS)
    else:
        # Not conn.execute(insert(...), rows): SQLAlchemy would run every value of every row
        # through its bind processors on the event loop, ~0.1 s for a 10,000-item batch that
        # single checks on the same worker would wait behind.
        ready = await asyncio.to_thread(_for_driver, rows, conn.dialect)
        raw = await conn.get_raw_connection()
        await raw.driver_connection.executemany(_SQLITE_INSERT, ready)  # type: ignore[union-attr]
    await aggregates.fold(conn, batch.tally)


_SQLITE_INSERT = (
    f"INSERT INTO check_records ({', '.join(COLUMNS)}) "  # nosec B608: constant column names
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)


def _for_driver(rows: Sequence[tuple[Any, ...]], dialect: Dialect) -> list[tuple[Any, ...]]:
    """`rows` as the driver takes them: each value through its column type's own bind
    processor (UTC datetimes to SQLite's text form), exactly as conn.execute would."""
    processors: list[Callable[[Any], Any] | None] = [
        _c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in COLUMNS
    ]
    return [
        tuple(
            value if process is None or value is None else process(value)
            for process, value in zip(processors, row, strict=True)
        )
        for row in rows
    ]


async def write_all(engine: AsyncEngine, batch: Batch) -> None:
    await prepare(engine, (row[1] for row in batch.rows))
    async with engine.begin() as conn:
        await write(conn, batch)


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
