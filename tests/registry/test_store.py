"""RegistryStore on SQLite and PostgreSQL: records, cache, freshness, other processes, outages."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import pytest
from sqlalchemy import event, make_url, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from certcheck.db.direct import DirectConnections
from certcheck.db.engine import Deadlines, create_engine
from certcheck.db.tables import registry_state
from certcheck.errors import RegistryStale, RegistryUnavailable
from certcheck.registry import store as store_module
from certcheck.registry.compact import compact as compact_once
from certcheck.registry.store import RegistryStore
from certcheck.snapshots.demo import demo_certificates
from certcheck.verification.records import Certificate, Status
from tests.conftest import load, today

UNKNOWN = "2024010999999999"


def make_store(
    engine: AsyncEngine,
    *,
    max_age: timedelta = timedelta(hours=1),
    cache_ttl: float = 60.0,
    direct: DirectConnections | None = None,
) -> RegistryStore:
    return RegistryStore(
        engine,
        cache_size=50_000,
        cache_ttl=cache_ttl,
        max_age=max_age,
        db_timeout=5.0,
        direct=direct,
    )


def revoke(cert: Certificate) -> Certificate:
    return cert._replace(status=Status.REVOKED, status_reason="test")


@pytest.fixture
def certs() -> list[Certificate]:
    return list(demo_certificates(50, today=today()))


@pytest.fixture
async def store(engine: AsyncEngine, certs: list[Certificate]) -> AsyncIterator[RegistryStore]:
    """On PostgreSQL, looking certificates up on connections of its own, as a server does."""
    await load(engine, certs)
    direct = None
    if engine.dialect.name == "postgresql":
        direct = DirectConnections(engine.url, size=2, deadlines=Deadlines.realtime(5.0))
    store = make_store(engine, direct=direct)
    await store.refresh()
    yield store
    if direct is not None:
        await direct.close()


@pytest.fixture
async def other_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The same database as `engine`, reached the way another worker process would."""
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@contextlib.asynccontextmanager
async def polling(store: RegistryStore, interval: float) -> AsyncIterator[None]:
    """The store's poll running in the background, as the app's lifespan runs it."""
    task = asyncio.create_task(store.poll(interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def within(seconds: float, ready: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + seconds
    while not await ready():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        await asyncio.sleep(0.02)


class DatabaseUses:
    """Connections taken from the engine's pool. A store given look-up connections of its
    own (PostgreSQL, db/direct.py) reads certificates on those: `reads` counts its reads."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine.pool, "checkout", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1


class Outage:
    """An engine on the test database whose connections the test can cut, as an outage would."""

    def __init__(self, database_url: str, tmp_path: Path) -> None:
        self.down = False
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite":
            path, gone = str(url.database), str(tmp_path / "gone" / "certcheck.db")

            async def connect() -> Any:
                return await aiosqlite.connect(gone if self.down else path)

        else:
            dsn = url.set(drivername="postgresql")

            async def connect() -> Any:
                target = dsn.set(port=1) if self.down else dsn
                return await asyncpg.connect(target.render_as_string(hide_password=False))

        self.engine = create_async_engine(url, async_creator=connect)

    async def cut(self) -> None:
        self.down = True
        await self.engine.dispose()  # open connections die with the server


@pytest.fixture
async def outage(database_url: str, tmp_path: Path) -> AsyncIterator[Outage]:
    outage = Outage(database_url, tmp_path)
    yield outage
    await outage.engine.dispose()


class TestLookup:
    async def test_returns_certificate_records(
        self, store: RegistryStore, certs: list[Certificate]
    ) -> None:
        found = await store.lookup([c.cert_no for c in certs[:5]])

        assert found == {c.cert_no: c for c in certs[:5]}
        assert all(type(c) is Certificate for c in found.values())

    async def test_unknown_numbers_are_none(
        self, store: RegistryStore, certs: list[Certificate]
    ) -> None:
        assert await store.lookup([UNKNOWN, certs[0].cert_no]) == {
            UNKNOWN: None,
            certs[0].cert_no: certs[0],
        }

    async def test_twelve_thousand_numbers_at_once(
        self, store: RegistryStore, certs: list[Certificate]
    ) -> None:
        # Known numbers spread over the whole request, so every SQLite chunk holds some.
        asked = [f"20240109{n:08d}" for n in range(12_000)]
        asked[::240] = [c.cert_no for c in certs]

        found = await store.lookup(asked)

        assert len(found) == 12_000
        assert {no: c for no, c in found.items() if c is not None} == {c.cert_no: c for c in certs}

    async def test_a_number_asked_twice_is_read_once(
        self, store: RegistryStore, certs: list[Certificate]
    ) -> None:
        found = await store.lookup([certs[0].cert_no, certs[0].cert_no])

        assert found == {certs[0].cert_no: certs[0]}
        assert (store.cache_hits, store.cache_misses) == (0, 1)

    async def test_a_store_never_refreshed_cannot_answer(
        self, engine: AsyncEngine, certs: list[Certificate]
    ) -> None:
        await load(engine, certs)

        with pytest.raises(RegistryUnavailable):
            await make_store(engine).lookup([certs[0].cert_no])

    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
    async def test_sqlite_reads_any_number_of_numbers_in_one_statement(
        self, engine: AsyncEngine, store: RegistryStore, certs: list[Certificate]
    ) -> None:
        # One statement is one snapshot: an import committed meanwhile cannot mix two
        # registries in one answer. More numbers than SQLite binds parameters (32,766).
        first, last = certs[0], certs[1]
        asked = [first.cert_no, *(f"20240109{n:08d}" for n in range(40_000)), last.cert_no]
        statements: list[str] = []
        event.listen(
            engine.sync_engine,
            "after_cursor_execute",
            lambda _conn, _cursor, sql, *_args: statements.append(sql),
        )

        found = await store.lookup(asked)

        assert len(statements) == 1
        assert "json_each" in statements[0]
        assert (found[first.cert_no], found[last.cert_no]) == (first, last)
        assert sum(cert is None for cert in found.values()) == 40_000

    async def test_concurrent_misses_share_reads(
        self, store: RegistryStore, certs: list[Certificate], reads: list[int]
    ) -> None:
        # Single checks whose numbers miss the cache while other look-ups are on their way
        # wait and go to the database together (registry/gather.py).
        asked = [[c.cert_no] for c in certs[:30]] + [[UNKNOWN]]
        answers = await asyncio.gather(*(store.lookup(nos) for nos in asked))

        assert answers == [{c.cert_no: c} for c in certs[:30]] + [{UNKNOWN: None}]
        assert sum(reads) == 31
        assert len(reads) <= 4

    async def test_a_big_look_up_reads_on_its_own(
        self, store: RegistryStore, certs: list[Certificate], reads: list[int]
    ) -> None:
        many = [f"20240109{i:08d}" for i in range(600)]
        alone, big = await asyncio.gather(
            store.lookup([certs[0].cert_no]), store.lookup([*many, certs[1].cert_no])
        )

        assert alone == {certs[0].cert_no: certs[0]}
        assert big[certs[1].cert_no] == certs[1]
        assert sorted(reads) == [1, 601]

    async def test_a_look_up_that_does_not_remember_uses_the_cache_but_leaves_it_as_it_was(
        self, store: RegistryStore, certs: list[Certificate], reads: list[int]
    ) -> None:
        await store.lookup([certs[0].cert_no])  # cached
        many = [c.cert_no for c in certs[:3]] + [UNKNOWN]

        found = await store.lookup(many, remember=False)

        assert found == {**{c.cert_no: c for c in certs[:3]}, UNKNOWN: None}
        assert reads == [1, 3]  # the cached number was not read again
        await store.lookup(many)  # nothing of the look-up above was kept: read again
        assert reads == [1, 3, 3]
        await store.lookup(many)
        assert reads == [1, 3, 3]

    async def test_a_big_look_up_makes_and_caches_its_certificates_between_other_requests(
        self, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A batch's 10,000 rows in one piece held the event loop for 70-120 ms.
        certs = list(demo_certificates(1_200, today=today()))
        await load(engine, certs)
        store = make_store(engine)
        await store.refresh()
        turns = 0
        made_in: set[int] = set()
        cached_in: set[int] = set()

        async def other_requests() -> None:
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        def compact(cert: Certificate) -> Certificate:
            made_in.add(turns)
            return compact_once(cert)

        class Recorded:  # the cache is compiled (hatch_build.py): its methods stay as they are
            def put(self, answers: dict[str, Certificate | None]) -> None:
                cached_in.add(turns)
                cache.put(answers)

            def __getattr__(self, name: str) -> Any:
                return getattr(cache, name)

        cache = store._cache
        monkeypatch.setattr(store_module, "compact", compact)
        monkeypatch.setattr(store, "_cache", Recorded())
        others = asyncio.create_task(other_requests())
        try:
            found = await store.lookup([c.cert_no for c in certs])
        finally:
            others.cancel()

        assert found == {c.cert_no: c for c in certs}
        assert len(made_in) >= 3  # 1,200 rows, 500 a turn
        assert len(cached_in) >= 3
        assert len(cache) == 1_200


class TestEnsureUsable:
    async def test_nothing_loaded(self, engine: AsyncEngine) -> None:
        store = make_store(engine)

        assert await store.refresh() is None
        with pytest.raises(RegistryUnavailable) as unavailable:
            store.ensure_usable()
        assert (unavailable.value.code, unavailable.value.status) == ("REGISTRY_UNAVAILABLE", 503)
        with pytest.raises(RegistryUnavailable):
            await store.lookup([UNKNOWN])

    async def test_a_fresh_registry(self, store: RegistryStore, certs: list[Certificate]) -> None:
        info = store.ensure_usable()

        assert (info.generation, info.certificates, info.source) == (1, 50, "test")
        assert sum(info.by_status.values()) == 50
        assert info.by_status["valid"] == sum(c.status is Status.VALID for c in certs)
        assert info.age(datetime.now(UTC)) < timedelta(seconds=30)

    async def test_age_is_measured_against_the_maximum(self, store: RegistryStore) -> None:
        refreshed = store.ensure_usable().refreshed_at

        assert store.ensure_usable(refreshed + timedelta(minutes=59)).generation == 1
        with pytest.raises(RegistryStale) as stale:
            store.ensure_usable(refreshed + timedelta(minutes=61))
        assert (stale.value.code, stale.value.status) == ("REGISTRY_STALE", 503)

    async def test_an_old_registry_is_stale(
        self, engine: AsyncEngine, store: RegistryStore, certs: list[Certificate]
    ) -> None:
        async with engine.begin() as conn:
            old = datetime.now(UTC) - timedelta(hours=2)
            await conn.execute(update(registry_state).values(refreshed_at=old))
        await store.refresh()

        with pytest.raises(RegistryStale, match="over the maximum age of 3600 s"):
            await store.lookup([certs[0].cert_no])


class TestCache:
    async def test_second_lookup_needs_no_database(
        self,
        engine: AsyncEngine,
        store: RegistryStore,
        certs: list[Certificate],
        reads: list[int],
    ) -> None:
        uses = DatabaseUses(engine)
        asked = [certs[0].cert_no, UNKNOWN]
        first = await store.lookup(asked)
        read, used = list(reads), uses.count

        assert await store.lookup(asked) == first
        assert read == [2]
        assert (reads, uses.count) == (read, used)
        assert (store.cache_hits, store.cache_misses) == (2, 2)

    async def test_cached_certificates_share_the_values_they_repeat(
        self, store: RegistryStore, certs: list[Certificate]
    ) -> None:
        # Read in two lookups, so every value came from the database separately.
        first = await store.lookup([c.cert_no for c in certs[:25]])
        second = await store.lookup([c.cert_no for c in certs[25:]])
        cached = [c for c in (*first.values(), *second.values()) if c is not None]
        holders: dict[str, list[str]] = {}
        for cert in cached:
            holders.setdefault(cert.holder, []).append(cert.holder)
        issued = [c.issued_on for c in cached if c.issued_on is not None]
        shared = [same for same in holders.values() if len(same) > 1]

        assert cached == certs  # the same values, held once
        assert shared, "the demo registry repeats holders"
        assert all(all(h is same[0] for h in same) for same in shared)
        assert all(day is next(d for d in issued if d == day) for day in issued)

    async def test_one_number_is_looked_up_as_lookup_does(
        self, store: RegistryStore, certs: list[Certificate], reads: list[int]
    ) -> None:
        """lookup_one (a verify's number) reads, caches and counts as lookup of one number."""
        assert await store.lookup_one(certs[0].cert_no) == certs[0]
        assert await store.lookup_one(UNKNOWN) is None
        assert reads == [1, 1]

        assert await store.lookup_one(certs[0].cert_no) == certs[0]
        assert await store.lookup_one(UNKNOWN) is None
        assert await store.lookup([certs[0].cert_no, UNKNOWN]) == {
            certs[0].cert_no: certs[0],
            UNKNOWN: None,
        }
        assert reads == [1, 1]
        assert (store.cache_hits, store.cache_misses) == (4, 2)

    async def test_answers_expire(self, engine: AsyncEngine, certs: list[Certificate]) -> None:
        await load(engine, certs)
        store = make_store(engine, cache_ttl=0.05)
        await store.refresh()
        await store.lookup([certs[0].cert_no])
        await asyncio.sleep(0.1)

        await store.lookup([certs[0].cert_no])

        assert (store.cache_hits, store.cache_misses) == (0, 2)

    async def test_a_lookup_that_reads_a_newer_generation_drops_the_cache(
        self, engine: AsyncEngine, store: RegistryStore, certs: list[Certificate]
    ) -> None:
        await store.lookup([certs[0].cert_no])
        await load(engine, [revoke(certs[0]), *certs[1:]])

        assert (await store.lookup([certs[1].cert_no]))[certs[1].cert_no] == certs[1]

        assert (await store.lookup([certs[0].cert_no]))[certs[0].cert_no] == revoke(certs[0])
        assert store.cache_hits == 0
        assert store.ensure_usable().generation == 1  # no refresh ran: the lookup noticed


class TestRefresh:
    async def test_the_importing_process_answers_at_once_after_refresh(
        self, engine: AsyncEngine, store: RegistryStore, certs: list[Certificate]
    ) -> None:
        await store.lookup([certs[0].cert_no])
        await load(engine, [revoke(certs[0]), *certs[1:]])

        assert (await store.refresh() or pytest.fail("no registry")).generation == 2
        assert await store.lookup([certs[0].cert_no]) == {certs[0].cert_no: revoke(certs[0])}

    async def test_the_registry_state_is_read(
        self, engine: AsyncEngine, store: RegistryStore, certs: list[Certificate]
    ) -> None:
        result = await load(engine, certs[:40])

        info = await store.refresh() or pytest.fail("no registry")

        assert (info.generation, info.certificates) == (result.generation, 40)
        assert info.by_status == dict(Counter(c.status.value for c in certs[:40]))
        assert store.info == info


class TestPoll:
    async def test_another_process_catches_up_through_its_poll(
        self,
        engine: AsyncEngine,
        other_engine: AsyncEngine,
        store: RegistryStore,
        certs: list[Certificate],
    ) -> None:
        other = make_store(other_engine)
        await other.refresh()
        assert await other.lookup([certs[0].cert_no]) == {certs[0].cert_no: certs[0]}

        async def answers_new() -> bool:
            return (await other.lookup([certs[0].cert_no]))[certs[0].cert_no] != certs[0]

        async with polling(other, 0.1):
            await load(engine, [revoke(certs[0]), *certs[1:]])
            await within(10.0, answers_new)
        assert other.ensure_usable().generation == 2

    async def test_keeps_trying_through_an_outage(
        self,
        engine: AsyncEngine,
        outage: Outage,
        certs: list[Certificate],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        await load(engine, certs)
        store = make_store(outage.engine)
        await outage.cut()

        async def failed_twice() -> bool:  # tried, failed, and tried again
            return caplog.text.count("registry poll failed: ") >= 2

        async with polling(store, 0.05):
            await within(10.0, failed_twice)
            assert (store.info, store.database_ok) == (None, False)
            outage.down = False

            async def refreshed() -> bool:
                return store.info is not None

            await within(10.0, refreshed)
        assert store.database_ok is True
        assert await store.lookup([certs[2].cert_no]) == {certs[2].cert_no: certs[2]}

    async def test_an_unexpected_error_does_not_stop_it(
        self,
        engine: AsyncEngine,
        store: RegistryStore,
        certs: list[Certificate],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        async with engine.begin() as conn:  # a state row this code cannot read
            await conn.execute(update(registry_state).values(by_status=None))

        async def caught_up() -> bool:
            return store.info is not None and store.info.generation == 2

        async with polling(store, 0.05):
            await asyncio.sleep(0.15)
            await load(engine, certs)
            await within(10.0, caught_up)
        assert "registry poll failed unexpectedly" in caplog.text


@contextlib.asynccontextmanager
async def realtime_store(
    database_url: str, pool_size: int = 10
) -> AsyncIterator[tuple[RegistryStore, AsyncEngine]]:
    """A store on an engine built as the service builds its real-time one; nothing cached
    for long, so every round of look-ups goes to the database."""
    realtime = create_engine(
        database_url,
        pool_size=pool_size,
        deadlines=Deadlines.realtime(5.0),
        single_statements=True,
    )
    try:
        store = make_store(realtime, cache_ttl=0.001)
        await store.refresh()
        yield store, realtime
    finally:
        await realtime.dispose()


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
class TestRealtimeEngine:
    async def test_a_connection_the_server_closed_is_replaced_without_a_failure(
        self, database_url: str, engine: AsyncEngine, certs: list[Certificate]
    ) -> None:
        # The real-time engine does not ping before each statement: a pooled connection that
        # the server ended (a restart, an administrator) must be noticed and replaced.
        await load(engine, certs)
        async with realtime_store(database_url) as (store, realtime):
            assert await store.lookup([certs[0].cert_no]) == {certs[0].cert_no: certs[0]}
            ended = await end_backends(realtime)
            await asyncio.sleep(0.2)  # the server's goodbye reaches the client's event loop

            assert ended >= 1
            assert await store.lookup([certs[1].cert_no]) == {certs[1].cert_no: certs[1]}
            assert store.database_ok is True

    async def test_more_concurrent_misses_than_connections_open_no_more_connections(
        self, database_url: str, engine: AsyncEngine, certs: list[Certificate]
    ) -> None:
        # A pool that opens extra connections for a burst and closes them as they come back
        # makes every burst of cache misses pay for new PostgreSQL backends (a fork and an
        # authentication each): the checks then wait on connecting, not on their look-ups.
        await load(engine, certs)
        connects = 0

        def connected(*_: object) -> None:
            nonlocal connects
            connects += 1

        async with realtime_store(database_url, pool_size=3) as (store, realtime):
            event.listen(realtime.sync_engine.pool, "connect", connected)
            for _ in range(4):
                answers = await asyncio.gather(
                    *(store.lookup([cert.cert_no]) for cert in certs[:20])
                )
                assert answers == [{cert.cert_no: cert} for cert in certs[:20]]
                await asyncio.sleep(0.01)  # the cache's entries expire: every round misses

            assert store.cache_misses == 80
            assert connects <= 2  # the refresh made the first of the three


async def end_backends(engine: AsyncEngine) -> int:
    """Terminate, from another session, the connection `engine` holds in its pool."""
    async with engine.connect() as conn:
        pid = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        return 1 if await admin.fetchval("SELECT pg_terminate_backend($1)", pid) else 0
    finally:
        await admin.close()


class TestDatabaseUnreachable:
    async def test_cached_answers_are_still_given(
        self, engine: AsyncEngine, outage: Outage, certs: list[Certificate]
    ) -> None:
        await load(engine, certs)
        store = make_store(outage.engine)
        await store.refresh()
        await store.lookup([certs[0].cert_no, UNKNOWN])
        await outage.cut()

        assert await store.lookup([certs[0].cert_no, UNKNOWN]) == {
            certs[0].cert_no: certs[0],
            UNKNOWN: None,
        }
        with pytest.raises(RegistryUnavailable, match="did not answer"):
            await store.lookup([certs[1].cert_no])
        assert store.database_ok is False
        assert (store.cache_hits, store.cache_misses) == (2, 3)
