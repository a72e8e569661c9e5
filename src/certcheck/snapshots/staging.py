"""Staging a snapshot for an import: its rows bulk-loaded into a temporary table, checked there;
or, when the registry is empty, loaded straight into it with their change feed entries
(`load_into_empty`).

On SQLite, a large snapshot file's rows are made into records in a second process
(parser_process.py), on the other core; any other rows on the event loop, in slices of a few
milliseconds, each followed by a yield, so a serving process keeps answering real-time checks
throughout (a parsing thread would not help: Python work holds the GIL either way, and the
loop would wait for it). The database takes each slice while the next is made: one streaming
COPY per segment on PostgreSQL, one multi-row INSERT per batch on SQLite, which runs without
the GIL in aiosqlite's thread. Python does nothing per row but make its record (records.py).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import operator
import sqlite3
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Table,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from certcheck.db.tables import certificates, changes
from certcheck.db.types import UTCDateTime
from certcheck.registry.rows import FIELDS
from certcheck.snapshots.parser_process import Chunk, parsed_in_child, worth_a_process
from certcheck.snapshots.reader import RowError, SnapshotRow, SnapshotRows
from certcheck.snapshots.records import Record, record_of

# Python work between two yields to the event loop: a request that arrives meanwhile waits
# for the rest of this slice and the next one (it is queued behind the import's next step).
_SLICE_SECONDS = 0.002
_COPY_ROWS = 50_000  # rows per COPY statement: each stays far inside the statement deadline
# Rows per SQLite INSERT (SQLite allows 32766 bound parameters since 3.32, 999 before). Its
# thread binds them holding the GIL, stopping the event loop meanwhile (about 2 ms), then
# waits for the GIL once per statement: fewer, larger statements wait less in all.
_INSERT_ROWS = 2_000 if sqlite3.sqlite_version_info >= (3, 32) else 60

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
Chunks = AsyncGenerator[Chunk, None]
CERT_COLUMNS = [*FIELDS, "digest"]  # a record's order (records.py), the table's too
_STAGED = ["line", *CERT_COLUMNS]


@dataclass
class Staged:
    """What staging found: rows staged, and the rows it could not read (`reject`ed)."""

    reject: Callable[[RowError], None]
    rows: int = 0
    kept: int = 0
    _unreadable_numbers: int = field(default=0, repr=False)


async def stage(
    conn: AsyncConnection, parsed: Iterator[SnapshotRow | RowError], staged: Staged
) -> None:
    """Load the rows into `import_staging`, drop duplicates, keep unreadable rows' records."""
    for table in (staging, kept):
        await conn.run_sync(_recreate, table)
    postgres = conn.dialect.name == "postgresql"
    await _load(conn, _Slices(_chunks(parsed, postgres), staged), staging.name, _STAGED)
    if staged._unreadable_numbers:
        numbers = select(staging.c.line, staging.c.cert_no).where(staging.c.digest.is_(None))
        await conn.execute(insert(kept).from_select(["line", "cert_no"], numbers))
        await conn.execute(delete(staging).where(staging.c.digest.is_(None)))
    if postgres:
        # The row count and the numbers' statistics are what the joins below are planned on;
        # sampling every column of a million wide rows took 0.4 s.
        await conn.execute(text("ANALYZE import_staging (cert_no)"))
    else:
        await conn.execute(text("CREATE INDEX import_staging_cert_no ON import_staging (cert_no)"))
    await _drop_duplicates(conn, staged)
    staged.kept = await _keep_unreadable(conn)


@dataclass(frozen=True)
class FirstFeed:
    """The change feed entry of every certificate a first import adds: when, which generation."""

    changed_at: datetime
    generation: int


async def load_into_empty(
    conn: AsyncConnection,
    parsed: Iterator[SnapshotRow | RowError],
    staged: Staged,
    feed: FirstFeed,
) -> None:
    """Load the rows straight into the certificates table, which must be empty, and write an
    "added" feed entry for each.

    With nothing to compare against there is nothing to stage: each row is written once, as a
    plain loader writes it, instead of into a staging table and then again from there. What
    staging finds in the database is found here as the rows go by, with the same outcome: a
    number seen on an earlier line is rejected (the first line wins), and an unreadable row is
    rejected with no record to keep (the registry holds none).
    """
    postgres = conn.dialect.name == "postgresql"
    slices = _FirstOfEach(_chunks(parsed, postgres), staged)
    await _load(conn, slices, certificates.name, CERT_COLUMNS, feed if postgres else None)
    # After the unreadable rows, as _drop_duplicates reports them: the same errors, same order.
    for line, number in slices.doubled:
        staged.reject(RowError(line=line, message=_doubled(number)))
    if not postgres:
        # In the table's own order: 0.3 s for a million rows here, the key order 2.9 s. Nothing
        # reads an order within a generation (a client pages by the feed's own ids).
        at, gen = literal(feed.changed_at, UTCDateTime), literal(feed.generation, BigInteger)
        added = select(certificates.c.cert_no, null(), certificates.c.status, at, gen)
        await conn.execute(insert(changes).from_select(FEED_COLUMNS, added))


def _chunks(parsed: Iterator[SnapshotRow | RowError], postgres: bool) -> Chunks:
    """The rows as staging records or `RowError`s, in file order, a slice of work at a time."""
    if not isinstance(parsed, SnapshotRows):
        return _sliced(
            item if isinstance(item, RowError) else record_of(item, postgres=postgres)
            for item in parsed
        )
    source = parsed.source
    # On SQLite only: there the rows' Python work competes for the GIL with SQLite's own
    # thread, which inserts them. PostgreSQL inserts in its own process, and the importer's
    # one core did more in all than parsing elsewhere and pickling the records across (a
    # million rows: 10.6 s in process, 11.9 s through the child; SQLite 12.6 s and 11.3 s).
    if postgres or parsed.started or not worth_a_process(source.stream):
        return _sliced(parsed.records(postgres=postgres))
    return parsed_in_child(
        source.stream, source.fmt, today=parsed.today, limits=source.limits, postgres=postgres
    )


async def _sliced(items: Iterator[Record | RowError]) -> Chunks:
    """Records made here, on the event loop: about `_SLICE_SECONDS` of work each."""
    size = 64  # rows in the next slice: adapts to how long a row takes
    while True:
        started = time.perf_counter()
        taken = list(itertools.islice(items, size))
        if not taken:
            return
        # Towards the budget, at most doubling at a time: a run of longer rows shrinks it.
        elapsed = max(time.perf_counter() - started, 1e-6)
        size = max(16, min(4 * _INSERT_ROWS, 2 * size, int(size * _SLICE_SECONDS / elapsed)))
        yield taken


async def _load(
    conn: AsyncConnection,
    slices: _Slices,
    table: str,
    columns: list[str],
    feed: FirstFeed | None = None,
) -> None:
    driver: Any = (await conn.get_raw_connection()).driver_connection
    try:
        if conn.dialect.name == "postgresql":
            await _copy(driver, slices, table, columns, feed)
        else:
            await _insert(driver, slices, _Insert(table, tuple(columns)))
    finally:
        await slices.close()


class _Slices:
    """The staging records, a slice at a time.

    A row that could not be read is rejected here; one whose number could be read leaves a
    record of that number alone (digest NULL), which `stage` moves to `import_kept`.
    """

    def __init__(self, chunks: Chunks, staged: Staged) -> None:
        self._chunks, self._staged = chunks, staged
        self._numbers_only = (None,) * (len(CERT_COLUMNS) - 1)

    async def take(self) -> list[Record] | None:
        """The next slice's records (none if all its rows were bad); None at the end."""
        taken = await anext(self._chunks, None)
        return None if taken is None else self._loadable(taken)

    async def close(self) -> None:
        """Stops the rows' source (a parser process) when the load ends early."""
        await self._chunks.aclose()

    def _loadable(self, taken: list[Record | RowError]) -> list[Record]:
        """The records to load; the errors among `taken` rejected."""
        records = [item for item in taken if type(item) is tuple]
        self._staged.rows += len(records)
        if len(records) != len(taken):
            for error in taken:
                if isinstance(error, RowError):
                    self._reject(error, records)
        return records

    def _reject(self, error: RowError, records: list[Record]) -> None:
        self._staged.reject(error)
        if error.cert_no is not None:
            records.append((error.line, error.cert_no, *self._numbers_only))
            self._staged._unreadable_numbers += 1


class _FirstOfEach(_Slices):
    """For the certificates table itself: records without their line, each number once.

    The numbers seen are kept in a set (about 100 MB for a million): the price of writing every
    row once, paid only while the import runs."""

    def __init__(self, chunks: Chunks, staged: Staged) -> None:
        super().__init__(chunks, staged)
        self._seen: set[str] = set()
        self.doubled: list[tuple[int, str]] = []  # (line, number) of rows rejected as repeats

    def _loadable(self, taken: list[Record | RowError]) -> list[Record]:
        # Nearly every slice is all new numbers: checked and kept by set operations in C (a
        # million rows: 0.36 s, against 0.46 s a row at a time); any other slice, below.
        records = [item for item in taken if type(item) is tuple]
        numbers = set(map(_line_number, records))
        if len(records) == len(taken) == len(numbers) and self._seen.isdisjoint(numbers):
            self._seen |= numbers
            self._staged.rows += len(records)
            return list(map(_unlined, records))
        return self._one_at_a_time(taken)

    def _one_at_a_time(self, taken: list[Record | RowError]) -> list[Record]:
        records: list[Record] = []
        seen = self._seen
        for item in taken:
            if isinstance(item, RowError):
                self._staged.reject(item)
                continue
            number = item[1]
            if number in seen:
                self.doubled.append((item[0], number))
                continue
            seen.add(number)
            records.append(item[1:])
        self._staged.rows += len(records)
        return records


def _recreate(sync: Connection, table: Table) -> None:
    table.drop(sync, checkfirst=True)
    table.create(sync)


async def _copy(
    driver: Any, slices: _Slices, table: str, columns: list[str], feed: FirstFeed | None
) -> None:
    """One COPY per segment of rows; with `feed`, each segment's feed entries are written
    after it by PostgreSQL from the numbers and statuses alone, while the next rows are made.

    PostgreSQL writes a million entries in about 1.5 s: after the load, the importer would
    wait for them; this way its core goes on making records meanwhile."""
    ahead: collections.deque[list[Record]] = collections.deque()  # made during a feed write
    ended = False
    numbers: list[str] = []
    statuses: list[str] = []

    async def segment() -> AsyncIterator[Record]:
        nonlocal ended
        rows = 0
        while rows < _COPY_ROWS:
            records = ahead.popleft() if ahead else await slices.take()
            if records is None:
                ended = True
                return
            if feed is not None:
                numbers.extend(map(_number, records))
                statuses.extend(map(_status, records))
            for record in records:
                yield record
            rows += len(records)
            await asyncio.sleep(0)  # asyncpg encodes and sends without yielding: we do

    while not ended or ahead:
        await driver.copy_records_to_table(table, records=segment(), columns=columns)
        if numbers:
            assert feed is not None  # nosec B101 # only narrows the type
            # As two texts, not arrays: asyncpg's array encoding checked each of a million
            # items against an abstract class (0.6 s); neither a number nor a status holds ",".
            args = (",".join(numbers), ",".join(statuses), feed.changed_at, feed.generation)
            numbers, statuses = [], []
            write = driver.execute(_FEED_ADDED, *args)
            if ended:
                await write
            else:
                ended = await _made_while(write, slices, ahead)


async def _made_while(
    write: Coroutine[Any, Any, object], slices: _Slices, ahead: collections.deque[list[Record]]
) -> bool:
    """Runs `write`, making the next slices (at most a segment's) into `ahead` until it is
    done; True if the rows ended meanwhile."""
    written = asyncio.ensure_future(write)
    try:
        rows = 0
        while not written.done() and rows < _COPY_ROWS:
            records = await slices.take()
            if records is None:
                await written
                return True
            ahead.append(records)
            rows += len(records)
            await asyncio.sleep(0)  # lets the write's answer in
        await written
    finally:
        if not written.done():  # a broken file raised while writing: the transaction rolls back
            await asyncio.wait([written])
        if not written.cancelled():
            written.exception()  # retrieved: the failure that matters is already raised
    return False


# A staging record's number, and the record without its line (what the table takes).
_line_number, _unlined = operator.itemgetter(1), operator.itemgetter(slice(1, None))
_number, _status = operator.itemgetter(0), operator.itemgetter(1)  # a certificates record's
# What a first import's feed entries select, in this order.
FEED_COLUMNS = ["cert_no", "old_status", "new_status", "changed_at", "generation"]
_FEED_ADDED = (
    f"INSERT INTO {changes.name} ({', '.join(FEED_COLUMNS)}) "  # nosec B608 # names, not values
    "SELECT cert_no, NULL, status, $3, $4 "
    "FROM unnest(string_to_array($1, ','), string_to_array($2, ',')) AS a(cert_no, status)"
)


@dataclass(frozen=True)
class _Insert:
    table: str
    columns: tuple[str, ...]


async def _insert(driver: Any, slices: _Slices, into: _Insert) -> None:
    """Multi-row INSERTs, made while SQLite writes the ones before: two at most in its queue,
    so that its thread, which must wait for the GIL after each, never waits for us."""
    writes: collections.deque[asyncio.Future[Any]] = collections.deque()
    pending: list[Record] = []
    try:
        while (records := await slices.take()) is not None:
            pending += records
            while len(pending) >= _INSERT_ROWS:
                await _write(driver, into, pending[:_INSERT_ROWS], writes)
                del pending[:_INSERT_ROWS]
            await asyncio.sleep(0)
        if pending:
            await _write(driver, into, pending, writes)
        while writes:
            await writes.popleft()
    finally:
        # Failed part-way (a broken file): the transaction rolls back after the last write.
        if writes:
            await asyncio.wait(writes)
        for write in writes:
            if not write.cancelled():
                write.exception()  # retrieved: the failure that matters is already raised


async def _write(
    driver: Any, into: _Insert, records: list[Record], writes: collections.deque[Any]
) -> None:
    """Queues the INSERT of `records` once fewer than two are queued; leaves it running."""
    if len(writes) >= 2:
        await writes.popleft()
    flat = list(itertools.chain.from_iterable(records))
    # One hop to aiosqlite's thread: execute() and a cursor's close() would be two.
    writes.append(
        asyncio.ensure_future(driver.execute_fetchall(_insert_sql(into, len(records)), flat))
    )


@functools.lru_cache(maxsize=4)  # per table: the full batch's text, and the last, shorter one's
def _insert_sql(into: _Insert, rows: int) -> str:
    row = f"({', '.join('?' for _ in into.columns)})"
    values = ", ".join(itertools.repeat(row, rows))
    return f"INSERT INTO {into.table} ({', '.join(into.columns)}) VALUES {values}"  # nosec B608


async def _drop_duplicates(conn: AsyncConnection, staged: Staged) -> None:
    # Most snapshots have none: one aggregate over the numbers (on SQLite, a walk of their
    # index) says so for a fraction of the cost of looking for each row's earlier twin.
    doubled = select(staging.c.cert_no).group_by(staging.c.cert_no).having(func.count() > 1)
    if await conn.scalar(doubled.limit(1)) is None:
        return
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
        staged.reject(RowError(line=line, message=_doubled(cert_no)))
    if dupes:
        await conn.execute(delete(staging).where(later))
        staged.rows -= len(dupes)


def _doubled(cert_no: str) -> str:
    return f"{cert_no} appears on an earlier line too"


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
