"""Bulk writes that leave the event loop free: rows made ready for the driver in a worker thread,
statements compiled once per dialect, and both handed to the driver (asyncpg's COPY, SQLite's
multi-row INSERTs).

`conn.execute(stmt, list_of_dicts)` would build every row's parameters on the event loop
(SQLAlchemy's per-row parameter processing, ~10 µs a row): a 10,000-row write held the loop
for ~0.1 s, and every request of the worker process waited behind it. Here the loop only
passes a ready list to the driver: asyncpg encodes it in slices between which the loop runs,
aiosqlite in its own thread.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any]
_T = TypeVar("_T")
# Bound parameters one SQLite statement takes: 32,766 since SQLite 3.32, 999 before.
SQLITE_PARAMETERS = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999
# Rows of one multi-row INSERT at most. aiosqlite's thread binds them holding the GIL, and the
# event loop waits meanwhile; after each statement that thread waits for the GIL again, up to
# a switch interval while the loop is busy (a job's other chunk), which made a 5,000-line
# chunk's staging 70 ms on average with runs of 128 and 34 with 512. Each connection keeps the
# statement of each length prepared, ~0.4 MiB for 512 rows of 18 values: a 1,000,000-line
# job's server 263 MiB against 254-256 with 128 (bench/README.md, "A look-up is one statement
# on SQLite").
_SQLITE_RUN = 512


@dataclass(frozen=True, slots=True)
class Statement:
    """A statement's SQL in its dialect's paramstyle, and how to make a row its parameters."""

    sql: str
    columns: tuple[str, ...]  # what each positional parameter is, in order
    processors: tuple[Processor | None, ...]

    def rows(self, rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """`rows` (values in `columns` order) as the driver takes them: each value through its
        column type's bind processor for the dialect, as conn.execute would. CPU only: call it
        in a worker thread."""
        processed = [(at, process) for at, process in enumerate(self.processors) if process]
        if not processed:
            return [tuple(row) for row in rows]
        # The rows of a batch share their few times and days (every check of a job's chunk
        # has the same `checked_at` object, a flush's its registry time), one after another:
        # a value the same object as the row before's is not processed again. By identity,
        # not equality: equal times in different zones need not process alike. (A memo of
        # every object seen cost 1.3 us more a row of a flush, whose check times all differ.)
        last: list[tuple[Any, Any]] = [(None, None)] * len(processed)
        out = []
        for row in rows:
            values = list(row)
            for i, (at, process) in enumerate(processed):
                value = values[at]
                if value is not None:
                    before, made = last[i]
                    if value is not before:
                        made = process(value)
                        last[i] = (value, made)
                    values[at] = made
            out.append(tuple(values))
        return out

    def sqlite_runs(self, rows: Sequence[tuple[Any, ...]]) -> list[tuple[str, list[Any]]]:
        """Rows made by `rows`, as this INSERT's multi-row form for SQLite: (SQL, parameters)
        pairs that insert them in order. CPU only: call it in a worker thread.

        Not executemany: it steps the statement once a row, and sqlite3 lets go of the GIL
        for each step and must get it back; with the event loop busy on the other thread,
        that is a forced switch of the loop a row. Timed on a 10,000-record flush in 500-row
        transactions beside a busy thread: 3.1-3.6 s and 9-11 us of the busy thread's time a
        row, against 0.7 s and 5-8 us in statements of 100 rows. The lengths are powers of
        two, so that a connection prepares each once: preparing a statement of many rows
        costs more (~6 us a row) than running it."""
        width = len(self.columns)
        largest = min(_SQLITE_RUN, 1 << ((SQLITE_PARAMETERS // width).bit_length() - 1))
        runs = []
        start = 0
        while start < len(rows):
            length = min(largest, 1 << ((len(rows) - start).bit_length() - 1))
            values = list(itertools.chain.from_iterable(rows[start : start + length]))
            runs.append((_values(self.sql, width, length), values))
            start += length
        return runs


def statement(stmt: ClauseElement, dialect: Dialect, columns: Sequence[str]) -> Statement:
    """`stmt` compiled for `dialect`, its positional parameters checked to be `columns` in that
    order: a constant bound in the statement would shift them, so write constants with
    literal_column instead."""
    compiled = stmt.compile(dialect=dialect)
    if not isinstance(compiled, SQLCompiler):
        raise TypeError(f"not a SQL statement: {stmt!r}")
    names = tuple(compiled.positiontup or ())
    if names != tuple(columns):
        raise ValueError(f"parameters {names} are not the row's columns {tuple(columns)}")
    processors = tuple(
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    return Statement(compiled.string, names, processors)


_made: dict[tuple[Callable[[Dialect], Any], str, str], Any] = {}


def per_dialect(build: Callable[[Dialect], _T], dialect: Dialect) -> _T:
    """`build(dialect)`, made once per kind of database and driver: compiling a statement
    takes about a millisecond, too long to do for every flush. Safe from several threads
    (two may both build the first time; either result is the same)."""
    key = (build, dialect.name, dialect.driver)
    try:
        made: _T = _made[key]
    except KeyError:
        made = _made[key] = build(dialect)
    return made


async def driver(conn: AsyncConnection) -> Any:
    """The driver's own connection (asyncpg's or aiosqlite's) under `conn`, inside `conn`'s
    transaction."""
    raw = await conn.get_raw_connection()
    connection: Any = raw.driver_connection
    if conn.dialect.name == "postgresql" and not connection.is_in_transaction():
        # SQLAlchemy's asyncpg adapter begins its transaction with its first statement; the
        # driver's own calls before that would commit on their own. (pysqlite begins one
        # before any write by itself.)
        await conn.exec_driver_sql("SELECT 1")
    return connection


# An SQL statement and its parameters, as sqlite3's execute takes them.
Step = tuple[str, Sequence[Any]]
_AIOSQLITE_QUEUE = "_execute"  # aiosqlite.Connection's: runs a function on its thread


async def sqlite_steps(connection: Any, steps: Sequence[Step]) -> None:
    """Run `steps` in order on aiosqlite's `connection`, inside its transaction, in one call on
    aiosqlite's thread.

    Each of aiosqlite's own calls is a trip to its thread and back, and the way back waits for
    the GIL, which the event loop holds while it answers requests: a flush of check records
    made about fifteen, and verifies with records on SQLite ran at 0.85 of records off
    against 0.90 in one trip (bench/README.md, seventeenth pass). aiosqlite has no public call
    for several statements (its executescript commits first), so this queues the work the way
    its own methods do (SQLAlchemy's aiosqlite adapter reaches into it likewise); an aiosqlite
    without that way takes a call a step."""
    run = getattr(connection, _AIOSQLITE_QUEUE, None)
    if run is None:
        for sql, parameters in steps:
            await connection.execute_fetchall(sql, parameters)
        return
    await run(_run_steps, connection._conn, steps)


def _run_steps(db: sqlite3.Connection, steps: Sequence[Step]) -> None:
    for sql, parameters in steps:
        db.execute(sql, parameters).close()


@functools.lru_cache(maxsize=64)
def _values(sql: str, width: int, rows: int) -> str:
    """`sql`, a single-row INSERT of `width` qmark parameters, inserting `rows` rows."""
    row = f"({', '.join('?' * width)})"
    if not sql.endswith(f"VALUES {row}"):
        raise ValueError(f"not a single-row INSERT of {width} parameters: {sql!r}")
    return sql + f", {row}" * (rows - 1)
