"""A platform's webhook: registered with a new secret each time, its delivery state, removed.

Delivery starts after the newest event the platform has when it first registers: events are
written under the watch cursor one round after another, so every event committed before the
registration has a smaller seq and every later one a larger (watch/events.py). A second
registration replaces the URL and the secret but keeps the position: the events still pending
go to the new URL, at once, each with a fresh retry period.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.tables import watch_events, watch_webhooks
from certcheck.watch import addresses

SECRET_PREFIX = "whsec_"  # nosec B105 - the prefix Standard Webhooks gives secrets, not one
# Standard Webhooks asks for 24 to 64 bytes; 32 is SHA-256's output size, all the strength
# HMAC-SHA256 can use.
_SECRET_BYTES = 32

_h, _e = watch_webhooks.c, watch_events.c


@dataclass(frozen=True, slots=True)
class Registered:
    url: str
    secret: str  # "whsec_" and the base64 of the HMAC key: shown once, never again


@dataclass(frozen=True, slots=True)
class WebhookState:
    url: str
    pending: int  # events not yet acknowledged (nor dead-lettered)
    failing_since: datetime | None  # the first failed attempt of the oldest pending event
    dead_lettered: int


def encode_secret(key: bytes) -> str:
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


async def register(
    engine: AsyncEngine, platform: str, url: str, *, allow_private: bool
) -> Registered:
    """Register or replace the platform's webhook; WebhookUrlRefused for a URL we won't call."""
    await addresses.check(url, allow_private=allow_private)
    key = secrets.token_bytes(_SECRET_BYTES)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        newest = await conn.scalar(
            select(func.coalesce(func.max(_e.seq), 0)).where(_e.platform == platform)
        )
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        statement = insert(watch_webhooks).values(
            platform=platform,
            url=url,
            secret=key,
            registered_at=now,
            delivered_seq=int(newest or 0),
            attempts=0,
            failing_since=None,
            next_attempt_at=now,
            dead_lettered=0,
        )
        replaced = {
            "url": url,
            "secret": key,
            "registered_at": now,
            "attempts": 0,
            "failing_since": None,
            "next_attempt_at": now,
        }
        await conn.execute(
            statement.on_conflict_do_update(index_elements=[_h.platform], set_=replaced)
        )
    return Registered(url, encode_secret(key))


async def state(engine: AsyncEngine, platform: str) -> WebhookState | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(_h.url, _h.delivered_seq, _h.failing_since, _h.dead_lettered).where(
                    _h.platform == platform
                )
            )
        ).first()
        if row is None:
            return None
        pending = await conn.scalar(
            select(func.count())
            .select_from(watch_events)
            .where(_e.platform == platform, _e.seq > row.delivered_seq)
        )
    return WebhookState(row.url, int(pending or 0), row.failing_since, int(row.dead_lettered))


async def remove(engine: AsyncEngine, platform: str) -> bool:
    """Stop delivering to the platform; False when it had no webhook."""
    async with engine.begin() as conn:
        gone = await conn.execute(delete(watch_webhooks).where(_h.platform == platform))
    return bool(gone.rowcount)
