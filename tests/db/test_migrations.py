"""The Alembic migrations against the tables in code, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db import migrate, revision
from certcheck.db.engine import create_engine
from certcheck.db.tables import metadata
from tests.conftest import POSTGRES_ADMIN_URL, run_sync

TABLES = {"alembic_version", *metadata.tables}


def drift(sync: Connection) -> list[Any]:
    context = MigrationContext.configure(
        sync, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


def table_names(sync: Connection) -> set[str]:
    return set(inspect(sync).get_table_names())


async def run(engine: AsyncEngine, step: Callable[[Config, str], None], target: str) -> None:
    """An Alembic command on a connection of ours, as certcheck.db.migrate runs it."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: step(migrate.alembic_config(sync), target))


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database no migration has touched: a new SQLite file, or a throwaway PostgreSQL one."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    # The session database is shared by every test, so it cannot be downgraded; this reuses its
    # fixture only to skip (or fail in CI) the same way when the server is not there.
    session_url = make_url(request.getfixturevalue("postgres_url"))
    name = f"certcheck_migrations_{uuid.uuid4().hex[:12]}"
    run_sync(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield session_url.set(database=name).render_as_string(hide_password=False)
    finally:
        run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def empty_engine(empty_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(empty_database_url)
    yield engine
    await engine.dispose()


class TestUpgrade:
    async def test_the_migrated_schema_matches_the_tables_in_code(
        self, engine: AsyncEngine
    ) -> None:
        async with engine.connect() as conn:
            assert await conn.run_sync(drift) == []
            assert await conn.run_sync(table_names) == TABLES
        assert await revision.pending(engine) is False

    async def test_an_empty_database_is_brought_to_head(self, empty_engine: AsyncEngine) -> None:
        assert await revision.pending(empty_engine) is True

        await migrate.upgrade(empty_engine)

        assert await revision.pending(empty_engine) is False
        async with empty_engine.connect() as conn:
            assert await conn.run_sync(table_names) == TABLES
            assert await conn.run_sync(drift) == []

    async def test_serve_migrates_only_a_database_that_needs_it(
        self, empty_engine: AsyncEngine
    ) -> None:
        assert await revision.upgrade_if_pending(empty_engine) is True
        assert await revision.pending(empty_engine) is False
        async with empty_engine.connect() as conn:
            assert await conn.run_sync(table_names) == TABLES

        assert await revision.upgrade_if_pending(empty_engine) is False


def test_the_revision_the_code_needs_is_the_newest_migration() -> None:
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert head == revision.HEAD, f"a new migration: set HEAD in certcheck/db/revision.py to {head}"


class TestDowngrade:
    async def test_a_database_one_migration_behind_is_not_ready(
        self, empty_engine: AsyncEngine
    ) -> None:
        await migrate.upgrade(empty_engine)
        await run(empty_engine, command.downgrade, "-1")

        assert await revision.pending(empty_engine) is True
        await migrate.upgrade(empty_engine)
        assert await revision.pending(empty_engine) is False

    async def test_down_to_base_and_up_again(self, empty_engine: AsyncEngine) -> None:
        await migrate.upgrade(empty_engine)

        await run(empty_engine, command.downgrade, "base")
        async with empty_engine.connect() as conn:
            assert await conn.run_sync(table_names) == {"alembic_version"}
        assert await revision.pending(empty_engine) is True

        await run(empty_engine, command.upgrade, "head")
        async with empty_engine.connect() as conn:
            assert await conn.run_sync(table_names) == TABLES
            assert await conn.run_sync(drift) == []


class TestSignalFirstMerchant:
    """3f8a61c2d9e5 moves each signal's first merchant into its row and back."""

    async def test_merchants_move_and_are_counted_the_same(self, empty_engine: AsyncEngine) -> None:
        await run(empty_engine, command.upgrade, "9d3b6e1f4a28")
        async with empty_engine.begin() as conn:
            for cert_no, merchants in (
                ("2024010901234567", ["m-2", "m-1"]),
                ("2024010901234568", []),
            ):
                await conn.execute(
                    text(
                        "INSERT INTO signal_counts (platform, cert_no, kind, checks, merchants, "
                        "evidence, last_checked_at) VALUES ('shop', :n, 'MANY_MERCHANTS', 3, :m, "
                        "'', '2026-12-05 00:00:00+00:00')"
                    ),
                    {"n": cert_no, "m": len(merchants)},
                )
                for merchant in merchants:
                    await conn.execute(
                        text(
                            "INSERT INTO signal_merchants (platform, cert_no, kind, merchant_id) "
                            "VALUES ('shop', :n, 'MANY_MERCHANTS', :m)"
                        ),
                        {"n": cert_no, "m": merchant},
                    )

        await run(empty_engine, command.upgrade, "3f8a61c2d9e5")

        async with empty_engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT cert_no, merchants, first_merchant FROM signal_counts ORDER BY 1")
            )
            assert [tuple(r) for r in rows] == [
                ("2024010901234567", 2, "m-1"),
                ("2024010901234568", 0, None),
            ]
            others = await conn.execute(text("SELECT cert_no, merchant_id FROM signal_merchants"))
            assert [tuple(r) for r in others] == [("2024010901234567", "m-2")]

        await run(empty_engine, command.downgrade, "9d3b6e1f4a28")

        async with empty_engine.connect() as conn:
            back = await conn.execute(
                text("SELECT cert_no, merchant_id FROM signal_merchants ORDER BY 2")
            )
            assert [tuple(r) for r in back] == [
                ("2024010901234567", "m-1"),
                ("2024010901234567", "m-2"),
            ]


class TestCheckPairs:
    """7c1e4b9a2f60 turns each membership row into a pair with one side, and back."""

    async def test_members_become_pairs_with_the_same_distinct_counts(
        self, empty_engine: AsyncEngine
    ) -> None:
        await run(empty_engine, command.upgrade, "3f8a61c2d9e5")
        members = [("L", "sku-1"), ("L", ""), ("M", "m-1"), ("M", "sku-1")]
        async with empty_engine.begin() as conn:
            for kind, member in members:
                await conn.execute(
                    text(
                        "INSERT INTO check_members (day, platform, kind, member, product_code, "
                        "reason, source) VALUES ('2026-12-06', 'shop', :k, :m, '0901', 'VALID', "
                        "'verify')"
                    ),
                    {"k": kind, "m": member},
                )

        await run(empty_engine, command.upgrade, "7c1e4b9a2f60")

        async with empty_engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT sides, listing, merchant FROM check_pairs ORDER BY 1, 2, 3")
            )
            assert [tuple(r) for r in rows] == [
                ("L", "", ""),
                ("L", "sku-1", ""),
                ("M", "", "m-1"),
                ("M", "", "sku-1"),
            ]

        await run(empty_engine, command.downgrade, "3f8a61c2d9e5")

        async with empty_engine.connect() as conn:
            back = await conn.execute(text("SELECT kind, member FROM check_members ORDER BY 1, 2"))
            assert [tuple(r) for r in back] == sorted(members)
