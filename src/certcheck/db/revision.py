"""Whether a database is at the schema this code needs, asked without loading Alembic.

Every command that works on a prepared database asks this first. Loading Alembic to find its
newest script (and with it mako, pygments and every dialect's migration support) cost each
command a tenth of a second, more than the question itself: the revision is written here, and
tests/db/test_migrations.py fails, naming the new one, until a new migration updates it.
"""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

HEAD = "7c1e4b9a2f60"  # the newest script in migrations/versions

# Alembic's own bookkeeping table, as Alembic makes it: read here, never written.
_versions = Table("alembic_version", MetaData(), Column("version_num", String(32)))


def _applied(sync: Connection) -> set[str]:
    if not inspect(sync).has_table(_versions.name):
        return set()
    return set(sync.scalars(select(_versions.c.version_num)))


async def pending(engine: AsyncEngine) -> bool:
    """True when the database is not at HEAD: empty, behind, or migrated by a newer release."""
    async with engine.connect() as connection:
        return await connection.run_sync(_applied) != {HEAD}


async def upgrade_if_pending(engine: AsyncEngine) -> bool:
    """Apply the migrations when the database needs them; True when it did.

    `serve` asks at every start, and a server keeps what it imports: Alembic, with mako and
    pygments, held ~10 MiB in every worker (bench/README.md, twenty-eighth pass) to learn, on
    all but a first start, that there was nothing to do."""
    if not await pending(engine):
        return False
    from certcheck.db import migrate

    await migrate.upgrade(engine)
    return True
