"""A few asyncpg connections held directly, for the one-statement look-ups of real-time checks.

A cache-missing check on PostgreSQL ran one statement, but checking a connection out of
SQLAlchemy's pool and back in (an `AsyncConnection`, three greenlet switches, the pool's
events and reset) cost ~100 us of the serving process's CPU, about a fifth of the whole check.
Here a look-up takes an idle driver connection from a list and puts it back: nothing between
it and asyncpg. What the pool did that a look-up needs is kept: at most `size` connections
(the caller's deadline bounds the wait for one), the engine's URL and deadlines, a connection
the server closed replaced without a failure, and a connection whose statement was
interrupted never used again.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url

from certcheck.db.engine import JSON_DECODER, Deadlines, postgres_connect_args

# What asyncpg.connect takes: the dialect's URL translation also carries SQLAlchemy's own
# options (a statement cache size under another name, a custom creator), which it does not.
_CONNECT_PARAMETERS = frozenset(inspect.signature(asyncpg.connect).parameters)


class DirectConnections:
    def __init__(self, url: str | URL, *, size: int, deadlines: Deadlines) -> None:
        parsed = make_url(url)
        _, from_url = parsed.get_dialect()().create_connect_args(parsed)
        self._options = {
            name: value for name, value in from_url.items() if name in _CONNECT_PARAMETERS
        } | postgres_connect_args(deadlines)
        self._slots = asyncio.Semaphore(size)
        self._idle: list[asyncpg.Connection] = []
        self._closed = False

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        """The rows of one statement, on an idle connection or a new one."""
        async with self._slots:
            conn = self._take() or await self._connect()
            try:
                rows: list[Any] = await conn.fetch(query, *args)
            except BaseException:
                # Cut off mid-statement (a deadline, a broken link), its state is unknown; a
                # server's error (a bug here) is too rare to be worth telling apart.
                conn.terminate()
                raise
            if self._closed:
                await conn.close()
            else:
                self._idle.append(conn)
            return rows

    async def close(self) -> None:
        """Close the idle connections; one in use is closed when its statement ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(conn.close() for conn in idle), return_exceptions=True)

    @property
    def idle(self) -> int:
        return len(self._idle)

    def _take(self) -> asyncpg.Connection | None:
        # The most recently used first. asyncpg sees the server close a connection (a restart,
        # an administrator) on its event loop as it happens: such a one is dropped here.
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():
                return conn
        return None

    async def _connect(self) -> asyncpg.Connection:
        if self._closed:
            raise asyncpg.InterfaceError("the look-up connections are closed")
        conn = await asyncpg.connect(**self._options)
        try:
            # JSON decoded as SQLAlchemy's asyncpg dialect has it decoded (a certificate's
            # models are a JSON array): asyncpg alone gives the text.
            for kind in ("json", "jsonb"):
                await conn.set_type_codec(
                    kind, schema="pg_catalog", encoder=json.dumps, decoder=JSON_DECODER
                )
        except BaseException:
            conn.terminate()
            raise
        return conn
