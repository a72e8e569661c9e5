"""PostgreSQL's day partitions of check_records: made ahead (and on demand), dropped by purge.

A partition holds one UTC day, [00:00, next 00:00), and is named after it (`d20261122`) in the
schema `check_record_days`, out of the way of the application's tables. Each process remembers
the days it has seen made, so the write path asks the catalogue only on a new day.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

SCHEMA = "check_record_days"
AHEAD_DAYS = 2  # today and the next two days exist before a record needs them
# pg_advisory_xact_lock's key: the processes creating partitions take turns.
_LOCK = 0x63686B72  # "chkr"
_known: dict[str, set[date]] = {}


def _name(day: date) -> str:
    return f"d{day:%Y%m%d}"


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _start(day: date) -> str:
    return datetime.combine(day, time(), UTC).isoformat()


async def ensure(engine: AsyncEngine, days: Iterable[date]) -> None:
    """Create the partitions of `days` that do not exist yet; nothing to do on SQLite."""
    if engine.dialect.name != "postgresql":
        return
    known = _known.setdefault(engine.url.render_as_string(), set())
    missing = sorted(set(days) - known)
    if not missing:
        return
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
        existing = await _existing(conn)
        for day in missing:
            if day not in existing:
                # Names and bounds come from dates, never from input: nothing to escape.
                await conn.execute(
                    text(
                        f"CREATE TABLE {SCHEMA}.{_name(day)} PARTITION OF check_records "
                        f"FOR VALUES FROM ('{_start(day)}') TO ('{_start(day + timedelta(1))}')"
                    )
                )
    known.update(missing)


async def ahead(engine: AsyncEngine, now: datetime) -> None:
    today = day_of(now)
    await ensure(engine, (today + timedelta(n) for n in range(AHEAD_DAYS + 1)))


async def drop_before(engine: AsyncEngine, cutoff: datetime) -> list[date]:
    """Drop every partition whose day ended at or before `cutoff`; the days dropped."""
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
        old = sorted(d for d in await _existing(conn) if d + timedelta(1) <= day_of(cutoff))
        for day in old:
            await conn.execute(text(f"DROP TABLE {SCHEMA}.{_name(day)}"))
    _known.pop(engine.url.render_as_string(), None)
    return old


async def _existing(conn: AsyncConnection) -> set[date]:
    names = await conn.scalars(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE i.inhparent = 'check_records'::regclass AND n.nspname = :schema"
        ),
        {"schema": SCHEMA},
    )
    return {datetime.strptime(name[1:], "%Y%m%d").date() for name in names}
