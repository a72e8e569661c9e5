"""Webhook delivery state in the database: which platforms have an event due, claiming one,
and recording how an attempt went.

A claim is a token written to the platform's webhook row with an expiry (a lease, renewed with
every acknowledgement); only its holder may move the row, and every write checks that the
position is still the one it read, so two processes never send the same event and a process
that died mid-delivery leaves the row to the next one once the lease runs out. On PostgreSQL
the claim is taken with FOR UPDATE SKIP LOCKED; on SQLite the claim is the transaction's first
statement and a write, so it queues for the single write lock rather than racing another.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.db.tables import watch_events, watch_webhooks
from certcheck.watch.events import event_from_row
from certcheck.watch.records import StoredWatchEvent

_h, _e = watch_webhooks.c, watch_events.c
_BACKOFF_CAP = 3_600.0  # seconds: a receiver back after a long outage is found within an hour


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    period: timedelta  # how long an event is retried before it is dead-lettered
    base: float  # seconds; the first retry comes within it

    def delay(self, failures: int) -> float:
        """Seconds before the next try after `failures` failed ones: exponential backoff with
        full jitter (AWS architecture blog), so receivers coming back are not hit in step."""
        ceiling = min(_BACKOFF_CAP, self.base * 2 ** min(failures - 1, 30))
        return random.uniform(0, ceiling)  # nosec B311 - jitter, not a secret


@dataclass(frozen=True, slots=True)
class Claim:
    platform: str
    token: str
    url: str
    secret: bytes
    registered_at: datetime  # a new registration (URL, secret) changes it
    delivered_seq: int
    attempts: int
    failing_since: datetime | None


_RETURNED = (_h.url, _h.secret, _h.registered_at, _h.delivered_seq, _h.attempts, _h.failing_since)


def _unclaimed(now: datetime) -> ColumnElement[bool]:
    return or_(_h.claimed_until.is_(None), _h.claimed_until < now)


async def due(engine: AsyncEngine, now: datetime, *, skip: set[str], limit: int) -> list[str]:
    """Platforms with an event waiting and due, unclaimed, longest waiting first."""
    waiting = exists().where(_e.platform == _h.platform, _e.seq > _h.delivered_seq)
    query = (
        select(_h.platform)
        .where(_h.next_attempt_at <= now, _unclaimed(now), waiting)
        .order_by(_h.next_attempt_at)
        .limit(limit + len(skip))
    )
    async with engine.connect() as conn:
        platforms = [str(p) for p in await conn.scalars(query)]
    return [p for p in platforms if p not in skip][:limit]


async def claim(
    engine: AsyncEngine, platform: str, token: str, now: datetime, lease: timedelta
) -> Claim | None:
    """Claim the platform's deliveries; None when another holds them or none is due."""
    free = (
        select(_h.platform)
        .where(_h.platform == platform, _h.next_attempt_at <= now, _unclaimed(now))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        update(watch_webhooks)
        .where(_h.platform == free)
        .values(claimed_by=token, claimed_until=now + lease)
        .returning(*_RETURNED)
    )
    async with engine.begin() as conn:
        row = (await conn.execute(statement)).first()
    return None if row is None else _claim(platform, token, row)


def _claim(platform: str, token: str, row: Any) -> Claim:
    return Claim(
        platform=platform,
        token=token,
        url=row.url,
        secret=bytes(row.secret),
        registered_at=row.registered_at,
        delivered_seq=int(row.delivered_seq),
        attempts=int(row.attempts),
        failing_since=row.failing_since,
    )


async def next_event(engine: AsyncEngine, claim: Claim) -> StoredWatchEvent | None:
    query = (
        select(watch_events)
        .where(_e.platform == claim.platform, _e.seq > claim.delivered_seq)
        .order_by(_e.seq)
        .limit(1)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return None if row is None else event_from_row(row._mapping)


def _held(claim: Claim) -> ColumnElement[bool]:
    return and_(
        _h.platform == claim.platform,
        _h.claimed_by == claim.token,
        _h.delivered_seq == claim.delivered_seq,
    )


async def acknowledged(
    engine: AsyncEngine, claim: Claim, event: StoredWatchEvent, now: datetime, lease: timedelta
) -> Claim | None:
    """The event is done; the claim goes on (renewed), None when it was lost meanwhile."""
    statement = (
        update(watch_webhooks)
        .where(_held(claim))
        .values(
            delivered_seq=event.seq,
            attempts=0,
            failing_since=None,
            next_attempt_at=now,
            claimed_until=now + lease,
        )
        .returning(*_RETURNED)
    )
    async with engine.begin() as conn:
        row = (await conn.execute(statement)).first()
    return None if row is None else _claim(claim.platform, claim.token, row)


async def failed(
    engine: AsyncEngine, claim: Claim, event: StoredWatchEvent, now: datetime, policy: RetryPolicy
) -> int:
    """Record a failed attempt and give the claim up; how many events were dead-lettered.

    The event is dead-lettered once it has failed for the retry period, and with it every
    pending event recorded at least that long ago: they waited behind it as long, and without
    this a receiver that stays down would hold each later event back a whole period more."""
    first = claim.failing_since or now
    async with engine.begin() as conn:
        if now - first >= policy.period:
            dead_to, dead = await _dead_letters(conn, claim, event, now - policy.period)
            values: dict[str, Any] = {
                "delivered_seq": dead_to,
                "dead_lettered": _h.dead_lettered + dead,
                "attempts": 0,
                "failing_since": None,
                "next_attempt_at": now,
            }
        else:
            dead = 0
            delay = timedelta(seconds=policy.delay(claim.attempts + 1))
            values = {
                "attempts": claim.attempts + 1,
                "failing_since": first,
                "next_attempt_at": now + delay,
            }
        # A registration that replaced the URL meanwhile starts the event afresh: leave it be.
        same = _h.registered_at == claim.registered_at
        done = await conn.execute(
            update(watch_webhooks)
            .where(_held(claim), same)
            .values(**values, claimed_by=None, claimed_until=None)
        )
    if done.rowcount != 1:
        await release(engine, claim)
        return 0
    return dead


async def _dead_letters(
    conn: AsyncConnection, claim: Claim, event: StoredWatchEvent, cutoff: datetime
) -> tuple[int, int]:
    """The seq the platform's position moves to, and how many events that gives up."""
    pending = and_(_e.platform == claim.platform, _e.seq > claim.delivered_seq)
    oldest = await conn.scalar(select(func.max(_e.seq)).where(pending, _e.created_at <= cutoff))
    dead_to = max(event.seq, int(oldest or 0))
    dead = await conn.scalar(select(func.count()).where(pending, _e.seq <= dead_to))
    return dead_to, int(dead or 0)


async def release(engine: AsyncEngine, claim: Claim) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(watch_webhooks)
            .where(_h.platform == claim.platform, _h.claimed_by == claim.token)
            .values(claimed_by=None, claimed_until=None)
        )


@dataclass(frozen=True, slots=True)
class Backlog:
    pending: int
    failing: int
    oldest: datetime | None


async def backlog(engine: AsyncEngine) -> Backlog:
    """Every registered webhook's backlog together, for the metrics."""
    joined = watch_events.join(
        watch_webhooks, and_(_e.platform == _h.platform, _e.seq > _h.delivered_seq)
    )
    async with engine.connect() as conn:
        pending, oldest = (
            await conn.execute(select(func.count(), func.min(_e.created_at)).select_from(joined))
        ).one()
        failing = await conn.scalar(
            select(func.count()).select_from(watch_webhooks).where(_h.failing_since.is_not(None))
        )
    return Backlog(int(pending or 0), int(failing or 0), oldest)
