"""Reading a platform's events in order, the opaque cursor over them, and their retention.

A cursor is `w1.` and the base64url of the event's seq and a check bound to the platform, so a
cursor from elsewhere (another endpoint, another platform, a typo) is refused, not misread.
Events are written only under the exclusive watch cursor (watch/processor.py), one round after
another, so seqs become visible in order: a poller that resumes after the last seq it saw
neither misses nor repeats one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.tables import watch_events
from certcheck.errors import InvalidCursor
from certcheck.verification.records import Reason, Verdict
from certcheck.watch.records import StoredWatchEvent

_PREFIX = "w1."
_CHECK = b"certcheck watch events cursor v1"
_e = watch_events.c


def encode_cursor(platform: str, seq: int) -> str:
    raw = seq.to_bytes(8, "big")
    return _PREFIX + base64.urlsafe_b64encode(raw + _tag(platform, raw)).decode().rstrip("=")


def decode_cursor(platform: str, cursor: str) -> int:
    """The seq a cursor stands for; InvalidCursor when this service did not issue it."""
    if cursor.startswith(_PREFIX) and len(cursor) < 64:
        body = cursor[len(_PREFIX) :]
        try:
            data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            data = b""
        raw, tag = data[:8], data[8:]
        if len(data) == 16 and hmac.compare_digest(tag, _tag(platform, raw)):
            return int.from_bytes(raw, "big")
    raise InvalidCursor("since must be a `next` value from /v1/watch/events")


def _tag(platform: str, raw: bytes) -> bytes:
    return hmac.new(_CHECK, platform.encode() + b"\0" + raw, hashlib.sha256).digest()[:8]


async def events_after(
    engine: AsyncEngine, platform: str, seq: int, limit: int
) -> list[StoredWatchEvent]:
    """The platform's events after `seq`, oldest first."""
    query = (
        select(watch_events)
        .where(_e.platform == platform, _e.seq > seq)
        .order_by(_e.seq)
        .limit(limit)
    )
    async with engine.connect() as conn:
        return [event_from_row(row._mapping) for row in await conn.execute(query)]


def event_from_row(row: Any) -> StoredWatchEvent:
    return StoredWatchEvent(
        seq=row["seq"],
        event_id=row["event_id"],
        listing_id=row["listing_id"],
        cert_no=row["cert_no"],
        old_decision=Verdict(row["old_decision"]),
        new_decision=Verdict(row["new_decision"]),
        reason=Reason(row["reason"]),
        check_id=row["check_id"],
        created_at=row["created_at"],
    )


async def purge_events(engine: AsyncEngine, before: datetime) -> int:
    """Forget events recorded before `before`; how many went."""
    async with engine.begin() as conn:
        gone = await conn.execute(delete(watch_events).where(_e.created_at < before))
    return int(gone.rowcount or 0)
