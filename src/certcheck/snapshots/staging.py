"""Staging a snapshot for an import: its rows bulk-loaded into a temporary table, checked there.

Parsing runs in a thread one batch ahead of the database, which takes the previous batch at the
same time: one streaming COPY per segment on PostgreSQL, `executemany` on SQLite (whose driver
lets go of the GIL while it writes). Python does nothing per row but read it and build a tuple.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from typing import Any

from sqlalchemy import Column, Integer, MetaData, Table, delete, exists, func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from certcheck.db.tables import certificates
from certcheck.registry.rows import row_values
from certcheck.snapshots.reader import RowError, SnapshotRow

_BATCH = 5_000  # rows parsed per thread hop
_COPY_BATCHES = 10  # batches per COPY statement: each stays far inside the statement deadline

_staging_meta = MetaData()
staging = Table(
    "import_staging",
    _staging_meta,
    Column("line", Integer, nullable=False),
    # No primary key: duplicates must reach _drop_duplicates to be reported, not abort the COPY.
    # A row whose number reads but whose other fields do not is staged with that number alone
    # (digest NULL) and moved to `kept` once everything is loaded.
    *(Column(c.name, c.type) for c in certificates.columns),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
# Numbers of rows that could not be read although their number could: the registry's record
# of each is copied into the staging table, so the import neither changes nor removes it.
kept = Table(
    "import_kept",
    _staging_meta,
    Column("line", Integer, nullable=False),
    Column("cert_no", certificates.c.cert_no.type, nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
CERT_COLUMNS = [c.name for c in certificates.columns]
_STAGED = ["line", *CERT_COLUMNS]
_fields = itemgetter(*CERT_COLUMNS)
_DATES = ("issued_on", "expires_on", "status_changed_on")
Record = tuple[Any, ...]


@dataclass
class Staged:
    """What staging found: rows staged, and the rows it could not read (`reject`ed)."""

    reject: Callable[[RowError], None]
    rows: int = 0
    kept: int = 0
    _unreadable_numbers: int = field(default=0, repr=False)

    def take(self, batch: _Batch) -> list[Record]:
        self.rows += batch.rows
        self._unreadable_numbers += len(batch.records) - batch.rows
        for error in batch.errors:
            self.reject(error)
        return batch.records


@dataclass(frozen=True, slots=True)
class _Batch:
    records: list[Record]
    errors: list[RowError]
    rows: int  # readable rows among the records; the rest are unreadable rows' numbers


async def stage(
    conn: AsyncConnection, parsed: Iterator[SnapshotRow | RowError], staged: Staged
) -> None:
    """Load the rows into `import_staging`, drop duplicates, keep unreadable rows' records."""
    for table in (staging, kept):
        await conn.run_sync(_recreate, table)
    postgres = conn.dialect.name == "postgresql"
    convert = _converter(parsed, postgres)
    async with contextlib.aclosing(_prefetched(convert)) as batches:
        driver: Any = (await conn.get_raw_connection()).driver_connection
        await (_copy(driver, batches, staged) if postgres else _insert(driver, batches, staged))
    if staged._unreadable_numbers:
        numbers = select(staging.c.line, staging.c.cert_no).where(staging.c.digest.is_(None))
        await conn.execute(insert(kept).from_select(["line", "cert_no"], numbers))
        await conn.execute(delete(staging).where(staging.c.digest.is_(None)))
    if postgres:
        await conn.execute(text("ANALYZE import_staging"))
    else:
        await conn.execute(text("CREATE INDEX import_staging_cert_no ON import_staging (cert_no)"))
    await _drop_duplicates(conn, staged)
    staged.kept = await _keep_unreadable(conn)


def _recreate(sync: Connection, table: Table) -> None:
    table.drop(sync, checkfirst=True)
    table.create(sync)


def _converter(
    parsed: Iterator[SnapshotRow | RowError], postgres: bool
) -> Callable[[], _Batch | None]:
    """The next batch of staging records (None at the end); runs in a worker thread."""
    record = _pg_record if postgres else _sqlite_record
    empty = (None,) * (len(CERT_COLUMNS) - 1)

    def convert() -> _Batch | None:
        records: list[Record] = []
        errors: list[RowError] = []
        for item in itertools.islice(parsed, _BATCH):
            if isinstance(item, SnapshotRow):
                records.append(record(item))
            else:
                errors.append(item)
        if not records and not errors:
            return None
        rows = len(records)
        records += [(e.line, e.cert_no, *empty) for e in errors if e.cert_no is not None]
        return _Batch(records, errors, rows)

    return convert


def _pg_record(row: SnapshotRow) -> Record:
    values = row_values(row.certificate)
    values["models"] = json.dumps(values["models"])  # asyncpg takes JSON as text
    return (row.line, *_fields(values))


def _sqlite_record(row: SnapshotRow) -> Record:
    # Stored as SQLAlchemy's JSON and Date types store them: JSON text, ISO dates.
    values = row_values(row.certificate)
    values["models"] = json.dumps(values["models"])
    for name in _DATES:
        day: date | None = values[name]
        if day is not None:
            values[name] = day.isoformat()
    return (row.line, *_fields(values))


async def _prefetched(convert: Callable[[], _Batch | None]) -> AsyncGenerator[_Batch, None]:
    """Each batch, the next one being made in a thread while the caller writes this one.

    Parsing is CPU work: done off the event loop, a serving process keeps answering.
    """
    loop = asyncio.get_running_loop()
    pending = loop.run_in_executor(None, convert)
    try:
        # Shielded: cancelled, the thread goes on with the input anyway; the finally waits.
        while (batch := await asyncio.shield(pending)) is not None:
            pending = loop.run_in_executor(None, convert)
            yield batch
    finally:
        # The caller closes the input after us: no thread may still be reading it then.
        if not pending.done():
            await asyncio.wait([pending])
        if not pending.cancelled():
            pending.exception()  # retrieved: the failure that matters is already raised


async def _copy(driver: Any, batches: AsyncIterator[_Batch], staged: Staged) -> None:
    ended = False

    async def segment() -> AsyncIterator[Record]:
        nonlocal ended
        for _ in range(_COPY_BATCHES):
            batch = await anext(batches, None)
            if batch is None:
                ended = True
                return
            for record in staged.take(batch):
                yield record

    while not ended:
        await driver.copy_records_to_table("import_staging", records=segment(), columns=_STAGED)


async def _insert(driver: Any, batches: AsyncIterator[_Batch], staged: Staged) -> None:
    marks = ", ".join("?" for _ in _STAGED)
    sql = f"INSERT INTO import_staging ({', '.join(_STAGED)}) VALUES ({marks})"  # nosec B608
    async for batch in batches:
        await driver.executemany(sql, staged.take(batch))


async def _drop_duplicates(conn: AsyncConnection, staged: Staged) -> None:
    # EXISTS, not `line NOT IN (SELECT min(line) ... GROUP BY cert_no)`: PostgreSQL runs a NOT IN
    # whose subquery outgrows work_mem as a nested loop, quadratic in the snapshot's size.
    earlier = staging.alias("earlier")
    later = exists().where(earlier.c.cert_no == staging.c.cert_no, earlier.c.line < staging.c.line)
    dupes = (
        await conn.execute(
            select(staging.c.line, staging.c.cert_no).where(later).order_by(staging.c.line)
        )
    ).all()
    for line, cert_no in dupes:
        staged.reject(RowError(line=line, message=f"{cert_no} appears on an earlier line too"))
    if dupes:
        await conn.execute(delete(staging).where(later))
        staged.rows -= len(dupes)


async def _keep_unreadable(conn: AsyncConnection) -> int:
    """Stage the registry's record of each number whose row could not be read, unchanged.

    A number that a readable row also names is left to that row; one the registry does not
    hold is simply not added. Returns how many certificates were kept as they were.
    """
    first = (
        select(func.min(kept.c.line).label("line"), kept.c.cert_no)
        .where(~exists().where(staging.c.cert_no == kept.c.cert_no))
        .group_by(kept.c.cert_no)
        .subquery()
    )
    records = select(first.c.line, *(certificates.c[c] for c in CERT_COLUMNS)).join_from(
        first, certificates, certificates.c.cert_no == first.c.cert_no
    )
    done = await conn.execute(insert(staging).from_select(_STAGED, records))
    await conn.run_sync(lambda sync: kept.drop(sync, checkfirst=True))
    return max(done.rowcount, 0)
