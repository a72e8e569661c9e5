"""The watch cursor row: taken by each transaction that must not interleave with the processor.

The processor holds it exclusively while it decides listings again and moves it past the change
entries it covered, in the same transaction as its events. Upserts and deletes hold it shared:
they wait for a round in progress, and every change entry past the cursor they see is one the
processor has yet to decide, so it will see their rows. On PostgreSQL this is a row lock (FOR
UPDATE / FOR SHARE); on SQLite, whose single writer serialises all writes, a write to the row
taken first thing in the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.db.tables import changes, watch_cursors
from certcheck.verification.numbers import today_in_shanghai

FEED = "feed"
_c = watch_cursors.c


@dataclass(frozen=True, slots=True)
class Position:
    change_id: int  # every change entry up to this one has been decided again
    expiry_day: date  # the Shanghai day of the last expiry pass


async def hold(conn: AsyncConnection, *, exclusive: bool) -> Position:
    """Lock the cursor for the rest of `conn`'s transaction; creates it on first use."""
    if conn.dialect.name == "sqlite":
        # A write first: it takes SQLite's one write lock before anything is read.
        await conn.execute(update(watch_cursors).where(_c.name == FEED).values(name=_c.name))
    query = select(_c.change_id, _c.expiry_day).where(_c.name == FEED)
    locked = query.with_for_update(read=not exclusive)
    row = (await conn.execute(locked)).first()
    if row is None:
        await _create(conn)
        row = (await conn.execute(locked)).one()
    return Position(row.change_id, row.expiry_day)


async def peek(engine: AsyncEngine) -> tuple[Position | None, int]:
    """The cursor (None before its first use) and the newest change entry, without a lock."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(_c.change_id, _c.expiry_day))).first()
        newest = await conn.scalar(select(func.coalesce(func.max(changes.c.id), 0)))
    return (None if row is None else Position(row.change_id, row.expiry_day)), int(newest or 0)


async def move(
    conn: AsyncConnection, *, change_id: int | None = None, day: date | None = None
) -> None:
    values: dict[str, object] = {"updated_at": datetime.now(UTC)}
    if change_id is not None:
        values["change_id"] = change_id
    if day is not None:
        values["expiry_day"] = day
    await conn.execute(update(watch_cursors).where(_c.name == FEED).values(**values))


async def _create(conn: AsyncConnection) -> None:
    """Start after the newest change entry: no listing was watched before the cursor existed."""
    newest = await conn.scalar(select(func.coalesce(func.max(changes.c.id), 0)))
    now = datetime.now(UTC)
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    await conn.execute(
        insert(watch_cursors)
        .values(
            name=FEED,
            change_id=int(newest or 0),
            expiry_day=today_in_shanghai(now),
            updated_at=now,
        )
        .on_conflict_do_nothing()
    )
