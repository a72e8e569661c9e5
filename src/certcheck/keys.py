"""API keys: each belongs to one platform and carries scopes; only a digest of it is stored.

A key reads `cc_<id>_<secret>`. The id finds the row; the secret is compared in constant time
against its SHA-256 digest (the secret is 256 random bits, so a slow hash would add nothing).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from cachetools import TTLCache
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.tables import api_keys


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


_PREFIX = "cc"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(token: str) -> tuple[str, str] | None:
    parts = token.split("_")
    if len(parts) != 3 or parts[0] != _PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class KeyStore:
    def __init__(self, engine: AsyncEngine, *, cache_ttl: float) -> None:
        self._engine = engine
        # Revocation reaches every process within cache_ttl seconds.
        self._cache: TTLCache[str, _KeyRow | None] = TTLCache(10_000, max(cache_ttl, 0.001))

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
        return result.rowcount > 0

    async def authenticate(self, token: str) -> Principal | None:
        parts = _split(token)
        if parts is None:
            return None
        key_id, secret = parts
        if key_id in self._cache:
            row = self._cache[key_id]
        else:
            row = await self._load(key_id)
            self._cache[key_id] = row
        if row is None or not hmac.compare_digest(row.secret_hash, _digest(secret)):
            return None
        return row.principal

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
