"""The async engine factory: one place that knows how each database wants to be connected.

Every PostgreSQL call has a client-side deadline (`Deadlines`): connecting, waiting for a pooled
connection, and each statement. The request path wants them as short as its own answer
deadline (`Deadlines.realtime`); imports, syncs and job workers want long ones (`BULK`), on an
engine and pool of their own so they cannot starve real-time verification. On SQLite, a
connection can ask for its transactions to take the write lock when they begin.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json
from sqlalchemy import Connection, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Seconds a database call may take before it fails instead of hanging."""

    connect: float = 5.0  # TCP connect, TLS and PostgreSQL's startup exchange
    pool: float = 30.0  # waiting for a pooled connection when all are in use
    statement: float = 60.0  # one statement (a pre-ping too); the server is told to stop as well

    @classmethod
    def realtime(cls, seconds: float) -> Deadlines:
        """For the request path: no single step may outlast the request's own deadline."""
        return cls(connect=seconds, pool=seconds, statement=seconds)


BULK = Deadlines()

WAL_KEPT_BYTES = 64 * 1024 * 1024

# JSON columns (a certificate's models, above all) decoded by pydantic's parser: one call in
# compiled code, a fifth of json.loads's time for a list of models. Every value was written
# as JSON by this service (an import refuses the lone surrogates the two would read apart).
JSON_DECODER = from_json

# sqlite3 binds exact ints, floats, strings and bytearrays as they are, and puts any other value
# (None, a blob) through its adapter protocol first: unless an adapter is registered for its
# type, it looks up `__adapt__` and `__conform__`, and on Python 3.11 each miss raises and
# formats an AttributeError, ~2,000 instructions a value and ~10,000 a check record flushed
# (bench/README.md, thirty-third pass). Registered adapters are found first; these give each
# value back as it is (`{}.get` returns None in C), so what is bound does not change.
_AS_IS: dict[type, Any] = {type(None): {}.get, bytes: bytes, memoryview: memoryview}

# Execution option: on SQLite, this connection's transactions begin IMMEDIATE (see _sqlite_begin).
WRITE_LOCK_UP_FRONT = "certcheck_sqlite_write_lock_up_front"


def create_engine(
    url: str, *, pool_size: int = 10, deadlines: Deadlines = BULK, single_statements: bool = False
) -> AsyncEngine:
    """`single_statements`: for callers whose every use is one statement (the real-time
    look-ups). On PostgreSQL each then runs on its own (autocommit), not inside a BEGIN and a
    ROLLBACK of its own, and without a pre-ping (`_refuse_closed`): asyncpg under SQLAlchemy
    made a cache-missing check six round trips (the pre-ping alone is three in a transaction),
    now one. Nor does its pool open connections beyond `pool_size` for a burst: those are
    closed again as they come back, so a steady load of more concurrent checks than
    connections made PostgreSQL start a backend (a fork and an authentication) every few
    look-ups. A look-up holds its connection for well under a millisecond; waiting for one
    is cheaper, and bounded by the pool deadline."""
    if url.startswith("sqlite"):
        if not sqlite_has_json():
            # A ValueError: the command line says it in one line (cli/main.py).
            raise ValueError(
                f"this Python's sqlite3 module uses SQLite {sqlite3.sqlite_version} without its "
                "JSON functions, which certcheck's registry look-up needs: they are built in "
                "since SQLite 3.38, and in the SQLite of Python's own installers and of common "
                "Linux distributions before that; use such a Python, or PostgreSQL"
            )
        for kind, as_is in _AS_IS.items():
            # Process-wide: harmless, for every connection binds these values alike.
            sqlite3.register_adapter(kind, as_is)
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, json_deserializer=JSON_DECODER
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    engine = create_async_engine(
        url,
        isolation_level="AUTOCOMMIT" if single_statements else None,
        pool_size=pool_size,
        max_overflow=0 if single_statements else pool_size,
        pool_pre_ping=not single_statements,
        pool_timeout=deadlines.pool,
        connect_args=postgres_connect_args(deadlines),
        json_deserializer=JSON_DECODER,
    )
    if single_statements:
        event.listen(engine.sync_engine.pool, "checkout", _refuse_closed)
    return engine


def postgres_connect_args(deadlines: Deadlines) -> dict[str, Any]:
    """asyncpg.connect's arguments for `deadlines` (direct.py connects with them too)."""
    return {
        "timeout": deadlines.connect,
        # asyncpg's default for every query on the connection, pre-pings and COPY included.
        "command_timeout": deadlines.statement,
        # The client gives up at the deadline; the server should stop working then too,
        # or a cancelled request leaves its query running and holding locks.
        "server_settings": {"statement_timeout": str(int(deadlines.statement * 1000))},
    }


@functools.cache
def sqlite_has_json() -> bool:
    """Whether the SQLite that aiosqlite drives (the stdlib module's) has json_each."""
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        try:
            conn.execute("SELECT value FROM json_each('[]')")
        except sqlite3.OperationalError:
            return False
    return True


def _refuse_closed(dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: Any) -> None:
    """The real-time engine's check of a pooled connection, instead of a pre-ping.

    A pre-ping is a round trip before every statement: on a cache-missing check it was a third
    of the client's CPU (two sends, two wake-ups). asyncpg learns that the server closed or
    reset a connection from the event loop, as it happens, so a closed one is known without
    asking. Raising DisconnectionError here makes the pool connect again (SQLAlchemy's
    documented pessimistic disconnect handling). A link that died silently is not seen here;
    nor would a ping see it before its deadline, which bounds the statement the same way.
    """
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the pooled connection was closed by the server or network")


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers keep answering from the old registry while an import writes the new one.
    cursor: Any = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # A WAL file keeps its largest size once a burst (a job's chunks) has grown it, 1.4 GB after
    # a 1,000,000-line job: given back down to this when the log starts over.
    cursor.execute(f"PRAGMA journal_size_limit={WAL_KEPT_BYTES}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """SQLite cannot turn a read transaction into a write one once another connection has
    committed since it read: the write fails at once with "database is locked", however long
    the busy timeout (https://www.sqlite.org/lang_transaction.html). A writer that reads before
    it writes (an import reads the registry rows it keeps) takes the lock up front instead,
    waiting the busy timeout for it. The rest stay deferred: readers never wait for a writer.
    """
    # pysqlite then sees a transaction open and adds no BEGIN of its own; COMMIT is unchanged.
    if conn.get_execution_options().get(WRITE_LOCK_UP_FRONT):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
