"""registry_writer: one writer at a time across processes, never waited for, never left held."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.engine import create_engine
from certcheck.errors import RegistryBusy
from certcheck.registry.lock import registry_writer
from tests.conftest import run_sync

HOLDER = """
import asyncio, sys
from certcheck.db.engine import create_engine
from certcheck.registry.lock import registry_writer

async def main():
    async with registry_writer(create_engine(sys.argv[1])):
        print("locked", flush=True)
        await asyncio.sleep(60)

asyncio.run(main())
"""


class TestRegistryWriter:
    async def test_a_second_writer_is_refused_at_once(self, engine: AsyncEngine) -> None:
        async with registry_writer(engine):
            with pytest.raises(RegistryBusy) as busy:
                async with registry_writer(engine):
                    pass  # pragma: no cover

        assert (busy.value.status, busy.value.code) == (409, "SYNC_IN_PROGRESS")

    async def test_another_engine_on_the_same_database_is_refused(
        self, engine: AsyncEngine, database_url: str
    ) -> None:
        other = create_engine(database_url)
        try:
            async with registry_writer(engine):
                with pytest.raises(RegistryBusy):
                    async with registry_writer(other):
                        pass  # pragma: no cover
            async with registry_writer(other):
                pass  # free again once the first one is done
        finally:
            await other.dispose()

    async def test_released_when_the_holder_fails(self, engine: AsyncEngine) -> None:
        with pytest.raises(ZeroDivisionError):
            async with registry_writer(engine):
                _ = 1 / 0

        async with registry_writer(engine) as conn:
            assert not conn.in_transaction()

    def test_released_when_the_holding_process_dies(self, database_url: str) -> None:
        command = [sys.executable, "-c", textwrap.dedent(HOLDER), database_url]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as holder:
            try:
                assert holder.stdout is not None
                assert holder.stdout.readline().strip() == "locked"
                assert _try_lock(database_url) == "busy"
            finally:
                holder.kill()  # no clean-up code runs: the server or kernel must release it

        # The kernel closes the dead process's file and socket; PostgreSQL notices within moments.
        deadline = time.monotonic() + 5
        while _try_lock(database_url) == "busy" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _try_lock(database_url) == "free"


def _try_lock(database_url: str) -> str:
    async def attempt() -> str:
        engine = create_engine(database_url)
        try:
            async with registry_writer(engine):
                return "free"
        except RegistryBusy:
            return "busy"
        finally:
            await engine.dispose()

    return run_sync(attempt())
