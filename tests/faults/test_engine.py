"""The engine factory's deadlines, against a database that hangs or crawls (through the proxy)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.db.engine import Deadlines, create_engine
from tests.faults.cluster import Cluster
from tests.faults.proxy import FaultProxy

pytestmark = [pytest.mark.faults, pytest.mark.timeout(60)]

LIMIT = 0.5
# Past the deadline a failure may take a little while to surface (asyncpg cleans up).
LATE = LIMIT + 0.5


@pytest.fixture
async def engine(cluster: Cluster, proxy: FaultProxy) -> AsyncIterator[AsyncEngine]:
    url = cluster.url("postgres", port=proxy.port)
    engine = create_engine(url, pool_size=1, deadlines=Deadlines.realtime(LIMIT))
    yield engine
    proxy.passthrough()
    await engine.dispose()


async def _select(conn: AsyncConnection) -> None:
    await conn.execute(text("SELECT 1"))


async def _elapsed_failure(coro: object) -> float:
    started = time.monotonic()
    with pytest.raises((DBAPIError, OSError, TimeoutError, PoolTimeout)):
        await coro  # type: ignore[misc]
    return time.monotonic() - started


class TestDeadlines:
    async def test_connect_to_a_blackhole_gives_up(
        self, engine: AsyncEngine, proxy: FaultProxy
    ) -> None:
        proxy.blackhole()

        async def connect() -> None:
            async with engine.connect() as conn:
                await _select(conn)

        assert await _elapsed_failure(connect()) < LATE

    async def test_statement_on_a_slow_link_gives_up(
        self, engine: AsyncEngine, proxy: FaultProxy
    ) -> None:
        async with engine.connect() as conn:
            await _select(conn)
            proxy.delay(int(LIMIT * 3000))
            started = time.monotonic()
            with pytest.raises((DBAPIError, TimeoutError)):
                await _select(conn)
            # Through SQLAlchemy the failure surfaces after two deadlines on a stalled link
            # (asyncpg alone: one); callers on the request path add a deadline of their own.
            assert time.monotonic() - started < 2 * LIMIT + 0.25

    async def test_statement_too_slow_on_the_server_is_stopped(self, engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            started = time.monotonic()
            with pytest.raises((DBAPIError, TimeoutError)):
                await conn.execute(text("SELECT pg_sleep(5)"))
            assert time.monotonic() - started < LATE

    async def test_waiting_for_a_pooled_connection_gives_up(self, engine: AsyncEngine) -> None:
        # pool_size=1 and as many overflow: two held connections exhaust it.
        async with engine.connect() as first, engine.connect() as second:
            await asyncio.gather(_select(first), _select(second))
            assert await _elapsed_failure(engine.connect().__aenter__()) < LATE
