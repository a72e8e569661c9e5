"""API keys: each belongs to one platform and carries scopes; only a digest of it is stored.

A key reads `cc_<id>_<secret>`. The id finds the row; the secret is compared in constant time
against its SHA-256 digest (the secret is 256 random bits, so a slow hash would add nothing).

A verified key is trusted for `cache_ttl` seconds before it is looked up again (so a revocation
elsewhere takes effect within that). A key the fast lane sees past half of that is looked up
again in the background, once, so that a key in steady use never expires under load.

While the database cannot be reached, a key it confirmed less than `stale_if_error` seconds ago
stays trusted, so cached answers keep coming; a key it has never confirmed gets
RegistryUnavailable, since nobody can tell whether it is genuine.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cachetools import LRUCache
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.deadline import Deadline
from certcheck.db.outage import is_database_outage
from certcheck.db.tables import api_keys
from certcheck.errors import RegistryUnavailable

log = logging.getLogger(__name__)


class Scope(enum.StrEnum):
    VERIFY = "verify"
    BATCH = "batch"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    platform: str
    scopes: frozenset[Scope]


@dataclass(frozen=True, slots=True)
class _KeyRow:
    secret_hash: str
    principal: Principal | None  # None once revoked


@dataclass(frozen=True, slots=True)
class _Confirmed:
    row: _KeyRow
    at: float  # the store's timer when the database last confirmed the key


# A cached key: (expires, its row or None for an unknown id, when the database confirmed it
# genuine or None).
_Entry = tuple[float, _KeyRow | None, float | None]
_CACHE_SIZE = 10_000


_PREFIX = "cc"
_TOKEN_START = f"{_PREFIX}_"
# What create() makes (12 hex digits, url-safe base64 without "_"), with room to grow. Anything
# else is refused before it reaches the database: no NUL byte or 100 KB string in a query.
_TOKEN = re.compile(r"cc_([0-9a-z]{1,32})_([A-Za-z0-9-]{1,256})")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(token: str) -> tuple[str, str] | None:
    match = _TOKEN.fullmatch(token)
    return None if match is None else (match[1], match[2])


class KeyStore:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        cache_ttl: float,
        stale_if_error: float = 0.0,
        timer: Callable[[], float] = time.monotonic,
        db_timeout: float = 2.0,
        deadline: Deadline | None = None,
    ) -> None:
        self._engine = engine
        # The app shares the registry store's deadline: one memory of an outage for both.
        postgres = engine.dialect.name == "postgresql"
        self._deadline = deadline or Deadline(db_timeout, abandon=postgres)
        self._timer = timer
        self._ttl = max(cache_ttl, 0.001)
        # Read once from the settings (CERTCHECK_KEY_STALE_IF_ERROR), not passed on each request.
        self._stale_if_error = stale_if_error
        # Revocation reaches every process within cache_ttl seconds. Every entry lives one TTL,
        # so insertion order is expiry order (as in registry/cache.py). Not cachetools'
        # TTLCache: its get() cost 1.1 us, on every request the fast lane answers, where one
        # dict look-up and one clock reading do (bench/README.md, twenty-third pass).
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        # Keys the database confirmed, kept for a database outage; only genuine keys get here,
        # so unknown ids sent by anyone cannot push them out.
        self._confirmed: LRUCache[str, _Confirmed] = LRUCache(_CACHE_SIZE)
        self._refreshing: dict[str, asyncio.Task[None]] = {}  # by key id, one at a time each

    async def create(self, platform: str, scopes: frozenset[Scope]) -> tuple[str, str]:
        """A new key: (key id, the full key). The full key is shown once and never stored."""
        if not platform.strip() or not scopes:
            raise ValueError("a key needs a platform and at least one scope")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32).replace("_", "-")
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(api_keys).values(
                    id=key_id,
                    platform=platform.strip(),
                    scopes=" ".join(sorted(s.value for s in scopes)),
                    secret_hash=_digest(secret),
                    created_at=datetime.now(UTC),
                )
            )
        return key_id, f"{_PREFIX}_{key_id}_{secret}"

    async def revoke(self, key_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        self._cache.pop(key_id, None)
        self._confirmed.pop(key_id, None)
        return result.rowcount > 0

    async def authenticate(self, token: str) -> Principal | None:
        """The key's principal; None for an unknown or revoked key.

        Raises RegistryUnavailable when the database does not answer within the deadline
        and did not confirm this key within the last `stale_if_error` seconds.
        """
        parts = _split(token)
        if parts is None:
            return None
        key_id, secret = parts
        entry = self._cache.get(key_id)  # an unknown id is cached too, its row None
        if entry is None or entry[0] < self._timer():
            row = await self._lookup(key_id)
        else:
            row = entry[1]
        if row is None or not hmac.compare_digest(row.secret_hash, _digest(secret)):
            return None
        return row.principal

    def cached(self, token: str) -> Principal | None:
        """The key's principal when the cache holds it confirmed; None when only
        `authenticate` can tell (not cached, unknown, revoked, or a wrong secret)."""
        # Without _split's pattern: only a cached id gets further, and only the genuine secret
        # has the digest it holds (authenticate checks the pattern before the database).
        if not token.startswith(_TOKEN_START):
            return None
        key_id, _, secret = token[len(_TOKEN_START) :].partition("_")
        entry = self._cache.get(key_id)
        now = self._timer()
        if entry is None or entry[0] < now:
            return None
        row = entry[1]
        if row is None or not hmac.compare_digest(row.secret_hash, _digest(secret)):
            return None
        confirmed_at = entry[2]
        if confirmed_at is not None and now - confirmed_at >= self._ttl / 2:
            self._refresh_ahead(key_id)
        return row.principal

    def _refresh_ahead(self, key_id: str) -> None:
        """Past half the TTL since the database last confirmed it (`cached` asks, on every
        request), look the key up again in the background, once. Left to expire, it sent
        every request in flight at that moment out of the fast lane to look it up on its own:
        a ~100 ms tail every TTL under load. What the database then says replaces the entry,
        so a revocation still takes effect within the TTL."""
        if key_id in self._refreshing:
            return
        refresh = asyncio.get_running_loop().create_task(self._refresh(key_id))
        self._refreshing[key_id] = refresh

    async def _refresh(self, key_id: str) -> None:
        try:
            await self._lookup(key_id)
        except RegistryUnavailable as exc:
            # The request path says so on its own when it needs the database; not per try here.
            log.debug("key %s not refreshed: %s", key_id, exc.detail)
        except Exception:
            log.exception("key %s not refreshed", key_id)
        finally:
            self._refreshing.pop(key_id, None)

    async def refreshed(self) -> None:
        """Wait for the background look-ups started so far."""
        await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    async def close(self) -> None:
        """Cancel the background look-ups (at shutdown, before the engine goes)."""
        for refresh in list(self._refreshing.values()):
            refresh.cancel()
        await self.refreshed()

    async def _lookup(self, key_id: str) -> _KeyRow | None:
        try:
            row = await self._deadline.call(lambda: self._load(key_id))
        except Exception as exc:
            if not is_database_outage(exc):
                raise  # a bug: the 500 handler logs it
            return self._stale(key_id, exc)
        if row is not None and row.principal is not None:
            confirmed = self._confirmed[key_id] = _Confirmed(row, self._timer())
            self._keep(key_id, row, confirmed.at)
        else:
            self._keep(key_id, row, None)
            self._confirmed.pop(key_id, None)  # revoked or deleted: refused from now on
        return row

    def _keep(self, key_id: str, row: _KeyRow | None, confirmed_at: float | None) -> None:
        now = self._timer()
        cache = self._cache
        cache.pop(key_id, None)  # to the back: the order stays the order of expiry
        cache[key_id] = (now + self._ttl, row, confirmed_at)
        while cache:
            first = next(iter(cache))
            if len(cache) <= _CACHE_SIZE and cache[first][0] >= now:
                break
            del cache[first]

    def _stale(self, key_id: str, exc: Exception) -> _KeyRow:
        """The key as the database last confirmed it, if that was recent enough."""
        confirmed = self._confirmed.get(key_id)
        if confirmed is None or self._timer() - confirmed.at > self._stale_if_error:
            name = type(exc).__name__
            raise RegistryUnavailable(
                f"API keys cannot be checked now: the database did not answer ({name})"
            ) from exc
        if self._timer() - confirmed.at + self._ttl <= self._stale_if_error:
            # Ask the database again after cache_ttl, not on every request: a database that
            # hangs would otherwise cost each request db_timeout seconds.
            self._keep(key_id, confirmed.row, confirmed.at)
        return confirmed.row

    async def _load(self, key_id: str) -> _KeyRow | None:
        async with self._engine.connect() as conn:
            row = (
                (await conn.execute(select(api_keys).where(api_keys.c.id == key_id)))
                .mappings()
                .first()
            )
        if row is None:
            return None
        principal = (
            None
            if row["revoked_at"] is not None
            else Principal(
                key_id=key_id,
                platform=row["platform"],
                scopes=frozenset(Scope(s) for s in row["scopes"].split()),
            )
        )
        return _KeyRow(secret_hash=row["secret_hash"], principal=principal)
