"""KeyStore: the key cache, its expiry, the database deadline and trust during an outage."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.engine import create_engine
from certcheck.errors import RegistryUnavailable
from certcheck.keys import KeyStore, Scope
from tests.outage import Outage, closed_port, silent_port

TTL = 5.0
STALE = 300.0


class Clock:
    """A timer the test moves; with `tick`, every reading also moves it (time passes)."""

    def __init__(self, now: float = 1_000.0, tick: float = 0.0) -> None:
        self.now = now
        self.tick = tick

    def __call__(self) -> float:
        now = self.now
        self.now += self.tick
        return now


async def new_key(engine: AsyncEngine, *scopes: Scope) -> tuple[str, str]:
    return await KeyStore(engine, cache_ttl=0).create("shop", frozenset(scopes or Scope))


async def confirmed(engine: AsyncEngine) -> tuple[str, str, Clock, KeyStore]:
    """A new key (id, token) and a store with the cache TTL whose clock the test moves, in
    which the database has just confirmed the key."""
    key_id, token = await new_key(engine)
    clock = Clock()
    keys = KeyStore(engine, cache_ttl=TTL, timer=clock)
    assert await keys.authenticate(token) is not None
    return key_id, token, clock, keys


class TestCache:
    async def test_an_entry_expiring_during_the_lookup_is_loaded_again(
        self, engine: AsyncEngine
    ) -> None:
        # Every reading of the clock moves it by one: try each reading at which the cached
        # entry can expire, so the expiry falls between any two steps of authenticate().
        _, token = await new_key(engine)
        for readings_before_expiry in range(-2, 6):
            clock = Clock()
            keys = KeyStore(engine, cache_ttl=TTL, timer=clock)
            assert await keys.authenticate(token) is not None  # cached at the clock's start
            clock.now = 1_000.0 + TTL - readings_before_expiry
            clock.tick = 1.0
            principal = await keys.authenticate(token)
            assert principal is not None, readings_before_expiry
            assert principal.platform == "shop"

    async def test_a_revoked_key_works_until_the_ttl_then_is_refused(
        self, engine: AsyncEngine
    ) -> None:
        key_id, token, clock, keys = await confirmed(engine)
        assert await KeyStore(engine, cache_ttl=0).revoke(key_id)  # another process revokes
        clock.now += TTL - 0.1
        assert await keys.authenticate(token) is not None
        clock.now += 0.2
        assert await keys.authenticate(token) is None

    async def test_revoking_in_this_process_takes_effect_at_once(self, engine: AsyncEngine) -> None:
        key_id, token = await new_key(engine)
        keys = KeyStore(engine, cache_ttl=TTL, timer=Clock())
        assert await keys.authenticate(token) is not None
        assert await keys.revoke(key_id)
        assert await keys.authenticate(token) is None

    async def test_a_wrong_secret_for_a_cached_key_is_refused(self, engine: AsyncEngine) -> None:
        _, token = await new_key(engine)
        keys = KeyStore(engine, cache_ttl=TTL, timer=Clock())
        assert await keys.authenticate(token) is not None
        assert await keys.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None

    async def test_the_fast_path_refuses_every_token_authenticate_refuses(
        self, engine: AsyncEngine
    ) -> None:
        # `cached` skips the token's pattern: only a cached id and its genuine secret pass.
        key_id, token, _, keys = await confirmed(engine)
        secret = token.removeprefix(f"cc_{key_id}_")
        near = [
            f"{key_id}_{secret}",  # no prefix
            f"cd_{key_id}_{secret}",
            f"CC_{key_id}_{secret}",
            f"cc_{key_id.upper()}_{secret}",
            f"cc_{key_id}_{secret}_",
            f"cc_{key_id}_{secret}x",
            f"cc_{key_id}_{secret[:-1]}",
            f"cc_{key_id}__{secret}",
            f"cc__{key_id}_{secret}",
            f"cc_{key_id}",
        ]
        assert keys.cached(token) is not None
        for hostile in near:
            assert keys.cached(hostile) is None, hostile
            assert await keys.authenticate(hostile) is None, hostile

    async def test_unknown_ids_push_the_oldest_entries_out_beyond_the_size(
        self, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("certcheck.keys._CACHE_SIZE", 3)
        _, token, _, keys = await confirmed(engine)
        for n in range(2):
            assert await keys.authenticate(f"cc_{n:012x}_secret") is None
        assert keys.cached(token) is not None  # three entries: still held
        assert await keys.authenticate(f"cc_{2:012x}_secret") is None
        assert keys.cached(token) is None  # the first one in went first
        assert await keys.authenticate(token) is not None  # looked up again
        assert keys.cached(token) is not None


class TestRefreshAhead:
    """`cached` (the fast lane's look-up) renews a key in use past half its TTL, once, in the
    background; what the database says then replaces the entry."""

    async def test_a_key_in_use_does_not_expire(self, engine: AsyncEngine) -> None:
        _, token, clock, keys = await confirmed(engine)  # confirmed at 1,000
        clock.now += TTL * 0.4
        assert keys.cached(token) is not None
        await keys.refreshed()  # nothing started before half the TTL
        clock.now += TTL * 0.2  # 0.6 TTL: the look-up starts, the answer is the cached one
        assert keys.cached(token) is not None
        await keys.refreshed()
        clock.now += TTL * 0.6  # past the first entry's expiry, within the renewed one's
        principal = keys.cached(token)
        assert principal is not None
        assert principal.platform == "shop"
        await keys.close()

    async def test_only_one_look_up_at_a_time_and_none_before_half_the_ttl(
        self, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _, token, clock, keys = await confirmed(engine)
        loads: list[str] = []
        load = keys._load

        async def counted(key_id: str) -> object:
            loads.append(key_id)
            return await load(key_id)

        monkeypatch.setattr(keys, "_load", counted)
        clock.now += TTL * 0.49
        assert all(keys.cached(token) is not None for _ in range(50))
        await keys.refreshed()
        assert loads == []
        clock.now += TTL * 0.02
        assert all(keys.cached(token) is not None for _ in range(50))
        await keys.refreshed()
        assert len(loads) == 1
        await keys.close()

    async def test_a_revocation_found_by_the_refresh_takes_effect_before_the_ttl(
        self, engine: AsyncEngine
    ) -> None:
        key_id, token, clock, keys = await confirmed(engine)
        assert await KeyStore(engine, cache_ttl=0).revoke(key_id)  # another process revokes
        clock.now += TTL * 0.6
        assert keys.cached(token) is not None  # still trusted, as before: within the TTL
        await keys.refreshed()
        assert keys.cached(token) is None
        assert await keys.authenticate(token) is None
        await keys.close()

    async def test_close_cancels_a_look_up_in_flight(self, engine: AsyncEngine) -> None:
        _, token, clock, keys = await confirmed(engine)
        clock.now += TTL * 0.6
        assert keys.cached(token) is not None  # starts a look-up, not yet run
        await keys.close()
        clock.now += TTL * 0.6  # the first entry expired, and no look-up renewed it
        assert keys.cached(token) is None


class TestDatabaseDeadline:
    async def test_a_database_that_never_answers_is_given_up_on_after_db_timeout(self) -> None:
        with silent_port() as port:
            engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/none")
            keys = KeyStore(engine, cache_ttl=TTL, db_timeout=0.2)
            started = time.monotonic()
            try:
                with pytest.raises(RegistryUnavailable, match="TimeoutError"):
                    await keys.authenticate("cc_0123456789ab_secret")
            finally:
                await engine.dispose()
        assert time.monotonic() - started < 2.0

    async def test_a_refused_connection_is_registry_unavailable(self) -> None:
        engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/none")
        try:
            with pytest.raises(RegistryUnavailable):
                await KeyStore(engine, cache_ttl=TTL).authenticate("cc_0123456789ab_secret")
        finally:
            await engine.dispose()


class TestStaleIfError:
    """While the database is away, a key it confirmed recently stays trusted, for a while."""

    @pytest.fixture
    async def outage(self, database_url: str, tmp_path: Path) -> Outage:
        return Outage(database_url, tmp_path)

    async def test_a_confirmed_key_outlives_the_ttl_up_to_the_bound(self, outage: Outage) -> None:
        async with outage.running():
            engine = create_engine(outage.url)
            try:
                _, token = await new_key(engine)
                clock = Clock()
                keys = KeyStore(engine, cache_ttl=TTL, stale_if_error=STALE, timer=clock)
                assert await keys.authenticate(token) is not None
                await outage.start()
                await engine.dispose()
                for elapsed in (TTL + 1, STALE / 2, STALE):
                    clock.now = 1_000.0 + elapsed
                    assert await keys.authenticate(token) is not None
                clock.now = 1_000.0 + STALE + 0.1
                with pytest.raises(RegistryUnavailable):
                    await keys.authenticate(token)
            finally:
                await engine.dispose()

    async def test_zero_turns_it_off_and_unknown_keys_are_never_trusted(
        self, outage: Outage
    ) -> None:
        async with outage.running():
            engine = create_engine(outage.url)
            try:
                _, token = await new_key(engine)
                _, never_seen = await new_key(engine)
                clock = Clock()
                keys = KeyStore(engine, cache_ttl=TTL, stale_if_error=0, timer=clock)
                trusting = KeyStore(engine, cache_ttl=TTL, stale_if_error=STALE, timer=clock)
                assert await keys.authenticate(token) is not None
                assert await trusting.authenticate(token) is not None
                await outage.start()
                await engine.dispose()
                clock.now += TTL + 1
                with pytest.raises(RegistryUnavailable):
                    await keys.authenticate(token)
                with pytest.raises(RegistryUnavailable):
                    await trusting.authenticate(never_seen)
            finally:
                await engine.dispose()

    async def test_a_key_found_revoked_is_not_trusted_in_the_next_outage(
        self, outage: Outage
    ) -> None:
        async with outage.running():
            engine = create_engine(outage.url)
            try:
                key_id, token = await new_key(engine)
                clock = Clock()
                keys = KeyStore(engine, cache_ttl=TTL, stale_if_error=STALE, timer=clock)
                assert await keys.authenticate(token) is not None
                assert await KeyStore(engine, cache_ttl=0).revoke(key_id)  # another process
                clock.now += TTL + 1
                assert await keys.authenticate(token) is None
                await outage.start()
                await engine.dispose()
                clock.now += TTL + 1
                with pytest.raises(RegistryUnavailable):
                    await keys.authenticate(token)
            finally:
                await engine.dispose()


async def test_hostile_tokens_never_reach_the_database() -> None:
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/none")
    keys = KeyStore(engine, cache_ttl=TTL)
    hostile = ["", "cc__x", "cc_a_b_c", "cc_0123\x00_abc", "cc_é_abc", "cc_ab_" + "a" * 100_000]
    try:
        for token in hostile:
            assert await keys.authenticate(token) is None, token[:20]
    finally:
        await engine.dispose()
