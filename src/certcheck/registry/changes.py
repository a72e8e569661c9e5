"""Reading the change feed: status changes, appearances and disappearances, oldest first.

The feed also holds an entry for each certificate whose record changed under the same status
(models, manufacturer, expiry...): the listing watch decides those listings again. GET
/v1/changes lists status changes only, as its contract says, so `changes_since` leaves them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.tables import changes


@dataclass(frozen=True, slots=True)
class ChangeEntry:
    id: int
    cert_no: str
    old_status: str | None
    new_status: str | None
    changed_at: datetime


_status_moved = or_(
    changes.c.old_status.is_(None),
    changes.c.new_status.is_(None),
    changes.c.old_status != changes.c.new_status,
)


async def changes_since(engine: AsyncEngine, since: int, limit: int) -> list[ChangeEntry]:
    # Ids are the cursor. Only one writer (import or sync) runs at a time, under the registry
    # lock, so ids become visible in order and a poller never skips one.
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(changes)
            .where(changes.c.id > since, _status_moved)
            .order_by(changes.c.id)
            .limit(limit)
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
