"""The registry's writer lock: one import or sync at a time, across every process.

PostgreSQL: a session-level advisory lock on the connection the writer uses. SQLite: an
exclusive `flock` on a file beside the database. Either is released by the server or the
kernel when its holder dies, and either is tried, never waited for: a second writer gets
`RegistryBusy` (409 SYNC_IN_PROGRESS) at once. The lock outlives transactions because a sync
commits page by page and must keep other writers out between its pages.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Iterator

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.db.engine import WRITE_LOCK_UP_FRONT
from certcheck.errors import RegistryBusy

log = logging.getLogger(__name__)

# Any fixed number works; it only has to be the same in every process that imports or syncs.
REGISTRY_LOCK_KEY = 0x3C_CE27
_BUSY = "another import or sync is running; try again when it has finished"


@contextlib.asynccontextmanager
async def registry_writer(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection to write the registry with, holding the writer lock; or RegistryBusy."""
    if engine.dialect.name == "postgresql":
        async with _advisory_lock(engine) as conn:
            yield conn
    else:
        with _file_lock(engine.url.database):
            async with engine.connect() as conn:
                # Its transactions read the registry, then write it (db/engine.py).
                await conn.execution_options(**{WRITE_LOCK_UP_FRONT: True})
                yield conn


@contextlib.asynccontextmanager
async def _advisory_lock(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        got = await conn.scalar(select(func.pg_try_advisory_lock(REGISTRY_LOCK_KEY)))
        await conn.commit()
        if not got:
            raise RegistryBusy(_BUSY)
        try:
            yield conn
        finally:
            await _advisory_unlock(conn)


async def _advisory_unlock(conn: AsyncConnection) -> None:
    try:
        if conn.in_transaction():
            await conn.rollback()
        await conn.scalar(select(func.pg_advisory_unlock(REGISTRY_LOCK_KEY)))
        await conn.commit()
    except Exception:
        # A pooled connection must never go back still holding the lock: close it instead,
        # which makes the server release it. The writer's own outcome stands.
        log.warning("could not release the registry lock; closing its connection instead")
        await conn.invalidate()
    except BaseException:  # cancelled while releasing: close it, and stay cancelled
        await conn.invalidate()
        raise


@contextlib.contextmanager
def _file_lock(database: str | None) -> Iterator[None]:
    if not database or database == ":memory:":
        yield  # a private in-memory database has no other writer
        return
    fd = os.open(f"{os.path.realpath(database)}-writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RegistryBusy(_BUSY) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
