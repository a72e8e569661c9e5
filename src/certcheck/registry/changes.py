"""Reading the change feed: status changes, appearances and disappearances, oldest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.tables import changes


@dataclass(frozen=True, slots=True)
class ChangeEntry:
    id: int
    cert_no: str
    old_status: str | None
    new_status: str | None
    changed_at: datetime


async def changes_since(engine: AsyncEngine, since: int, limit: int) -> list[ChangeEntry]:
    # Ids are the cursor. Only one writer (import or sync) runs at a time, under the registry
    # lock, so ids become visible in order and a poller never skips one.
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(changes).where(changes.c.id > since).order_by(changes.c.id).limit(limit)
        )
        return [
            ChangeEntry(
                id=r.id,
                cert_no=r.cert_no,
                old_status=r.old_status,
                new_status=r.new_status,
                changed_at=r.changed_at,
            )
            for r in rows
        ]
