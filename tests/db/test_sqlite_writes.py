"""SQLite: a registry writer takes the write lock up front, so another connection's commit
cannot fail it with "database is locked" however the two interleave; and what the engine sets
up for every connection."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db import engine as engine_module
from certcheck.db.engine import create_engine
from certcheck.db.tables import certificates
from tests.conftest import load
from tests.factories import cert


@pytest.fixture
def path(sqlite_template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "certcheck.db"
    shutil.copy(sqlite_template, copy)
    with sqlite3.connect(copy) as db:
        db.execute("CREATE TABLE elsewhere (x INTEGER)")
    return copy


@pytest.fixture
async def engine(path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    yield engine
    await engine.dispose()


async def test_a_commit_between_the_imports_read_and_write_does_not_fail_it(
    engine: AsyncEngine, path: Path
) -> None:
    """The import reads the registry (rows it keeps) before its first write to it; a commit by
    anyone else in between made that first write fail at once with "database is locked", as
    SQLite cannot upgrade a read transaction whose snapshot is out of date, and no busy
    timeout helps (https://www.sqlite.org/lang_transaction.html, "Read transactions versus
    write transactions"). Job workers and key checks commit at any time."""
    others: list[str] = []

    def commit_elsewhere(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith("INSERT INTO registry_runs"):
            return
        try:
            with sqlite3.connect(path, timeout=0) as other:
                other.execute("INSERT INTO elsewhere VALUES (1)")
            others.append("committed")
        except sqlite3.OperationalError as exc:  # the import holds the write lock: it waits
            others.append(str(exc))

    event.listen(engine.sync_engine, "before_cursor_execute", commit_elsewhere)
    await load(engine, [cert(f"2024010901{i:06d}") for i in range(5)])
    event.remove(engine.sync_engine, "before_cursor_execute", commit_elsewhere)

    assert others == ["database is locked"]  # the other writer is the one that waits
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(certificates)) == 5


def test_sqlite_without_json_functions_is_refused_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The registry's look-up on SQLite expands its numbers with json_each (registry/store.py):
    # a SQLite without it must stop the service at startup, not fail every check.
    assert engine_module.sqlite_has_json()  # the SQLite these tests run on has it
    monkeypatch.setattr(engine_module, "sqlite_has_json", lambda: False)
    with pytest.raises(ValueError, match="JSON functions"):
        engine_module.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")


async def test_a_grown_wal_is_given_back_down_to_its_kept_size(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A burst grows the WAL file; once the log starts over it is cut back to the kept size.
    assert engine_module.WAL_KEPT_BYTES == 64 * 1024 * 1024
    monkeypatch.setattr(engine_module, "WAL_KEPT_BYTES", 64 * 1024)
    database, wal = tmp_path / "x.db", tmp_path / "x.db-wal"
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (x BLOB)")
            for _ in range(200):
                await conn.exec_driver_sql("INSERT INTO t VALUES (zeroblob(8192))")
        grown = wal.stat().st_size
        async with engine.begin() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        async with engine.begin() as conn:  # the next writer starts the log over
            await conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        kept = wal.stat().st_size  # before the last connection closes, which removes it
    finally:
        await engine.dispose()
    assert grown > 1024 * 1024
    assert kept <= 64 * 1024


async def test_values_sqlite3_would_adapt_are_bound_as_they_are(engine: AsyncEngine) -> None:
    """None and blobs skip sqlite3's adapter look-ups (engine._AS_IS) and still bind as NULL
    and BLOB, with the same bytes."""
    assert all((kind, sqlite3.PrepareProtocol) in sqlite3.adapters for kind in engine_module._AS_IS)
    blob = "证书".encode()
    async with engine.connect() as conn:
        result = await conn.exec_driver_sql(
            "SELECT typeof(?), typeof(?), ?, typeof(?), ?",
            (None, blob, blob, memoryview(blob), memoryview(blob)),
        )
        row = result.one()
    assert tuple(row) == ("null", "blob", blob, "blob", blob)
