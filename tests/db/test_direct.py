"""The look-up connections held directly (db/direct.py), against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from certcheck.db.direct import DirectConnections
from certcheck.db.engine import Deadlines
from certcheck.db.outage import is_database_outage
from tests.outage import closed_port, postgres_at

pytestmark = pytest.mark.postgres

PID = "SELECT pg_backend_pid() AS pid"


@pytest.fixture
async def direct(postgres_url: str) -> AsyncIterator[DirectConnections]:
    connections = DirectConnections(postgres_url, size=3, deadlines=Deadlines.realtime(5.0))
    yield connections
    await connections.close()


async def pid_of(direct: DirectConnections) -> int:
    rows = await direct.fetch(PID)
    pid: int = rows[0]["pid"]
    return pid


async def asked_apart(postgres_url: str, query: str, *args: object) -> object:
    """One value, asked on a plain connection of its own (as an administrator would)."""
    admin = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
    try:
        return await admin.fetchval(query, *args)
    finally:
        await admin.close()


async def test_a_statement_with_arguments_gives_its_rows(direct: DirectConnections) -> None:
    rows = await direct.fetch("SELECT n FROM unnest($1::text[]) AS n ORDER BY n", ["b", "a"])

    assert [row["n"] for row in rows] == ["a", "b"]


async def test_json_comes_back_decoded_as_through_the_engine(
    direct: DirectConnections,
) -> None:
    rows = await direct.fetch("""SELECT '["A", "B"]'::json AS j, '{"n": 1}'::jsonb AS b""")

    assert (rows[0]["j"], rows[0]["b"]) == (["A", "B"], {"n": 1})


async def test_one_connection_serves_look_ups_one_after_another(
    direct: DirectConnections,
) -> None:
    pids = {await pid_of(direct) for _ in range(5)}

    assert len(pids) == 1
    assert direct.idle == 1


async def test_more_concurrent_look_ups_than_connections_wait_for_one(
    direct: DirectConnections,
) -> None:
    sleepy = "SELECT pg_backend_pid() AS pid, pg_sleep(0.05)"
    answers = await asyncio.gather(*(direct.fetch(sleepy) for _ in range(12)))

    assert len({rows[0]["pid"] for rows in answers}) == 3
    assert direct.idle == 3


async def test_the_deadlines_reach_the_server(direct: DirectConnections) -> None:
    rows = await direct.fetch("SELECT current_setting('statement_timeout') AS timeout")

    assert rows[0]["timeout"] == "5s"


async def test_a_connection_the_server_closed_is_replaced_without_a_failure(
    postgres_url: str, direct: DirectConnections
) -> None:
    first = await pid_of(direct)
    assert await asked_apart(postgres_url, "SELECT pg_terminate_backend($1)", first)
    await asyncio.sleep(0.2)  # the server's goodbye reaches the client's event loop

    assert await pid_of(direct) != first


async def test_an_interrupted_statement_leaves_its_connection_unused(
    direct: DirectConnections,
) -> None:
    first = await pid_of(direct)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await direct.fetch("SELECT pg_sleep(5)")

    assert direct.idle == 0
    assert await pid_of(direct) != first


async def test_a_failing_statement_is_the_callers_error(direct: DirectConnections) -> None:
    with pytest.raises(asyncpg.UndefinedTableError):
        await direct.fetch("SELECT * FROM no_such_table")

    assert await pid_of(direct) > 0


async def test_options_of_the_url_that_asyncpg_does_not_take_are_left_out(
    postgres_url: str,
) -> None:
    url = f"{postgres_url}?prepared_statement_cache_size=10"
    connections = DirectConnections(url, size=1, deadlines=Deadlines.realtime(5.0))
    try:
        assert await pid_of(connections) > 0
    finally:
        await connections.close()


async def test_an_unreachable_server_is_an_outage(postgres_url: str) -> None:
    url = postgres_at(postgres_url, closed_port())
    connections = DirectConnections(url, size=1, deadlines=Deadlines.realtime(2.0))

    with pytest.raises(ConnectionRefusedError) as raised:
        await connections.fetch(PID)
    assert is_database_outage(raised.value)


async def test_closed_they_close_their_connections_and_refuse_more(
    postgres_url: str, direct: DirectConnections
) -> None:
    pid = await pid_of(direct)
    await direct.close()

    gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1"
    assert await asked_apart(postgres_url, gone, pid)
    with pytest.raises(asyncpg.InterfaceError):
        await direct.fetch(PID)
