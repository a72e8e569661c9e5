"""The database a command works on: opened only once `certcheck db upgrade` has prepared it.

A command run too early fails with one line saying so, and leaves no empty SQLite file behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.config import Settings
from certcheck.db import revision
from certcheck.db.engine import create_engine


@contextlib.asynccontextmanager
async def open_database(settings: Settings, *, migrated: bool = True) -> AsyncIterator[AsyncEngine]:
    """The database; with `migrated`, one that `certcheck db upgrade` has prepared."""
    if migrated:
        _require_sqlite_file(settings.database_url)
    engine = create_engine(settings.database_url, pool_size=2)
    try:
        if migrated and await revision.pending(engine):
            raise click.ClickException(
                f"the database {shown(settings.database_url)} is not at the newest schema: "
                "run `certcheck db upgrade` first"
            )
        yield engine
    finally:
        await engine.dispose()


def shown(url: str) -> str:
    """The database URL without its password, for a message."""
    return make_url(url).render_as_string(hide_password=True)


def _require_sqlite_file(url: str) -> None:
    # Connecting would create an empty file, which the next command would then trip over.
    database = make_url(url).database if url.startswith("sqlite") else None
    if database not in (None, "", ":memory:") and not Path(str(database)).is_file():
        raise click.ClickException(
            f"no database at {database} (CERTCHECK_DATABASE_URL): run `certcheck db upgrade` first"
        )
