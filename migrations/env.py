"""Alembic environment: async engines, or a connection handed in by certcheck.db.migrate."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from certcheck.config import DEFAULT_DATABASE_URL
from certcheck.db.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        # Every table: importing the db.tables package (not db.metadata) registers them all.
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


def _offline(url: str) -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
url = config.attributes.get("url") or os.environ.get("CERTCHECK_DATABASE_URL", DEFAULT_DATABASE_URL)
if context.is_offline_mode():
    _offline(url)
elif connection is not None:
    _run(connection)
else:
    asyncio.run(_run_async(url))
