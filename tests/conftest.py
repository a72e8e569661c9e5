"""Shared fixtures: every API test runs once on SQLite and once on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import certcheck
from certcheck.app import create_app
from certcheck.config import Settings
from certcheck.db import migrate
from certcheck.db.engine import create_engine
from certcheck.db.tables import metadata
from certcheck.keys import KeyStore, Scope
from certcheck.registry.store import RegistryStore
from certcheck.snapshots.importer import ImportLimits, ImportResult, import_snapshot
from certcheck.snapshots.reader import SnapshotRow
from certcheck.verification.numbers import today_in_shanghai
from certcheck.verification.records import Certificate

POSTGRES_ADMIN_URL = os.environ.get(
    "CERTCHECK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
_T = TypeVar("_T")
IN_CI = os.environ.get("CI", "").lower() == "true"


def source_of(extension: Path) -> Path:
    """The .py a compiled module was built from (`ids.cpython-311-...so` -> `ids.py`)."""
    return extension.with_name(extension.name.split(".", 1)[0] + ".py")


def stale_extensions() -> list[str]:
    """Sources changed since an editable install compiled them (hatch_build.py): Python imports
    the extension, not the .py beside it, so the tests would run the old code."""
    package = Path(certcheck.__file__).parent
    stale = []
    for extension in package.rglob("*.so"):
        source = source_of(extension)
        if source.exists() and source.stat().st_mtime > extension.stat().st_mtime:
            stale.append(str(source.relative_to(package.parent)))
    return sorted(stale)


def pytest_sessionstart(session: pytest.Session) -> None:
    if stale := stale_extensions():
        raise pytest.UsageError(
            f"{', '.join(stale)} changed since it was compiled: install again "
            "(pip install -e '.[test]'), or with CERTCHECK_PURE_PYTHON=1 for plain Python"
        )


def today() -> date:
    return today_in_shanghai(datetime.now(UTC))


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    await migrate.upgrade(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of our own on the PostgreSQL server, migrated once, dropped at the end."""
    # Sync on purpose: it is requested lazily (only by PostgreSQL-parametrised tests), and
    # pytest cannot resolve an async fixture from inside another one.
    name = f"certcheck_test_{uuid.uuid4().hex[:12]}"
    run_sync(_admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    try:
        run_sync(_migrate(url))
        yield url
    finally:
        run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(statement: str) -> None:
    try:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        reason = f"PostgreSQL at {POSTGRES_ADMIN_URL} is not reachable: {exc}"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)")
        pytest.skip(reason)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "certcheck.db"
    run_sync(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a fresh SQLite file, or the PostgreSQL one emptied."""
    if request.param == "sqlite":
        path = tmp_path / "certcheck.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    run_sync(_emptied(url))
    return url


async def _emptied(url: str) -> None:
    # DELETE, not TRUNCATE: a test leaves a few rows, and TRUNCATE's new files for 20 tables
    # cost 135 ms a test against 3 ms (the suite runs ~1,000 tests on PostgreSQL).
    engine = create_engine(url)
    async with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(table.delete())
        sequences = await conn.scalars(
            text("SELECT oid::regclass::text FROM pg_class WHERE relkind = 'S'")
        )
        for sequence in sequences.all():
            await conn.execute(text("SELECT setval(:s, 1, false)"), {"s": sequence})
    await engine.dispose()


def run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine from a sync fixture, on a loop of its own (the tests' loop may be live)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


# The database deadline of tests that do not test deadlines (those set theirs explicitly).
# Late in a full run on a loaded 2-core machine, a first look-up on PostgreSQL took over the
# 2 s default twice in two runs (a key check answered 503); a functional test must not fail
# on the machine's stall. Cause not found yet: see the closing note of session 5.
FUNCTIONAL_DB_TIMEOUT = 10.0


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, max_registry_age=3600, db_timeout=FUNCTIONAL_DB_TIMEOUT
    )


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with its lifespan running (engine, store, poller)."""
    # asgi-lifespan's 5 s default is shorter than a shutdown may rightly take on a busy machine:
    # the last flush of check records alone may use 5 s (a 10k batch leaves 10k of them).
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://certcheck.test") as c:
            yield c


async def make_key(engine: AsyncEngine, *scopes: Scope, platform: str = "shop") -> str:
    _, key = await KeyStore(engine, cache_ttl=0).create(platform, frozenset(scopes))
    return key


@pytest.fixture
async def headers(engine: AsyncEngine) -> dict[str, str]:
    """Authorization for a key with every scope."""
    return {"Authorization": f"Bearer {await make_key(engine, *Scope)}"}


def rows_of(certs: Iterable[Certificate]) -> Iterator[SnapshotRow]:
    return (SnapshotRow(line=n, certificate=c) for n, c in enumerate(certs, 2))


async def load(
    engine: AsyncEngine, certs: Iterable[Certificate], *, force: bool = True
) -> ImportResult:
    return await import_snapshot(
        engine, rows_of(certs), source="test", limits=ImportLimits(force=force)
    )


@pytest.fixture
async def verify_only(engine: AsyncEngine) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_key(engine, Scope.VERIFY)}"}


@pytest.fixture
def revoke(engine: AsyncEngine) -> Callable[[dict[str, str]], Awaitable[None]]:
    async def revoke(headers: dict[str, str]) -> None:
        key_id = headers["Authorization"].split("_")[1]
        assert await KeyStore(engine, cache_ttl=0).revoke(key_id)

    return revoke


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many numbers each read of the registry database asked for (PostgreSQL's runs on
    the driver, out of SQLAlchemy's sight: counted where the store reads)."""
    seen: list[int] = []
    read = RegistryStore._read

    async def counted(store: RegistryStore, cert_nos: list[str]) -> list[Any]:
        seen.append(len(cert_nos))
        return await read(store, cert_nos)

    monkeypatch.setattr(RegistryStore, "_read", counted)
    return seen
