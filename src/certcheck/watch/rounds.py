"""One round of the watch processor, inside the transaction that holds the watch cursor.

A feed round takes the change entries after the cursor (a bounded batch), decides again every
watched listing carrying one of their numbers, writes the new decisions and one event per
decision change, and moves the cursor past the batch: all of it commits together or not at all.
An expiry pass does the same for the listings whose certificate's expiry date has passed since
the last pass (a certificate is in force on its expiry date, expired the day after).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from ulid import ULID

from certcheck.checking import Check, Checker
from certcheck.db.tables import certificates, changes, watch_events, watched_listings
from certcheck.verification.records import Verdict
from certcheck.watch import cursor
from certcheck.watch.deciding import CheckSource, produce_checks
from certcheck.watch.listings import listing_from_row
from certcheck.watch.records import WatchedListing

# Numbers per IN list: well below SQLite's limit on bound parameters.
_IN_CHUNK = 500
_w = watched_listings.c


async def feed_round(
    conn: AsyncConnection, checker: Checker, position: cursor.Position, batch: int, *, record: bool
) -> Counter[Verdict] | None:
    """Events by new decision; None when no change entry is past the cursor."""
    query = select(changes.c.id, changes.c.cert_no).where(changes.c.id > position.change_id)
    entries = (await conn.execute(query.order_by(changes.c.id).limit(batch))).all()
    if not entries:
        return None
    numbers = sorted({entry.cert_no for entry in entries})
    listings: list[WatchedListing] = []
    for start in range(0, len(numbers), _IN_CHUNK):
        chunk = numbers[start : start + _IN_CHUNK]
        rows = await conn.execute(select(watched_listings).where(_w.cert_no.in_(chunk)))
        listings.extend(listing_from_row(row._mapping) for row in rows)
    events = await decide_again(conn, checker, listings, record=record)
    await cursor.move(conn, change_id=entries[-1].id)
    return events


async def expiry_round(
    conn: AsyncConnection, checker: Checker, position: cursor.Position, today: date, *, record: bool
) -> Counter[Verdict]:
    """Listings whose certificate expired on a day from the last pass up to yesterday."""
    expires = certificates.c.expires_on
    query = (
        select(watched_listings)
        .join(certificates, certificates.c.cert_no == _w.cert_no)
        .where(expires >= position.expiry_day, expires < today)
    )
    listings = [listing_from_row(row._mapping) for row in await conn.execute(query)]
    events = await decide_again(conn, checker, listings, record=record)
    await cursor.move(conn, day=today)
    return events


async def decide_again(
    conn: AsyncConnection, checker: Checker, listings: Sequence[WatchedListing], *, record: bool
) -> Counter[Verdict]:
    """Decide `listings` against the registry as it is now; write what changed (and, with
    `record`, every check's record)."""
    if not listings:
        return Counter()
    # At least as new as the change entries being worked on: they committed before we read them.
    await checker.store.refresh()
    checks = await produce_checks(
        conn,
        checker,
        [(w.platform, w) for w in listings],
        source=CheckSource.CHANGE,
        record=record,
    )
    now = datetime.now(UTC)
    moved = [(w, c) for w, c in zip(listings, checks, strict=True) if _moved(w, c)]
    if not moved:
        return Counter()
    await conn.execute(_update_statement(), [_update(w, c, now) for w, c in moved])
    flipped = [(w, c) for w, c in moved if c.decision.verdict is not w.decision]
    if flipped:
        await write_events(conn, [_event(w, c, now) for w, c in flipped])
    return Counter(c.decision.verdict for _, c in flipped)


def _moved(listing: WatchedListing, check: Check) -> bool:
    return (check.decision.verdict, check.decision.reason) != (listing.decision, listing.reason)


def _update_statement() -> Any:
    return (
        update(watched_listings)
        .where(_w.platform == bindparam("b_platform"), _w.listing_id == bindparam("b_listing_id"))
        .values(
            decision=bindparam("b_decision"),
            reason=bindparam("b_reason"),
            since=bindparam("b_since"),
            check_id=bindparam("b_check_id"),
        )
    )


def _update(listing: WatchedListing, check: Check, now: datetime) -> dict[str, Any]:
    flipped = check.decision.verdict is not listing.decision
    return {
        "b_platform": listing.platform,
        "b_listing_id": listing.listing_id,
        "b_decision": check.decision.verdict.value,
        "b_reason": check.decision.reason.value,
        "b_since": now if flipped else listing.since,
        "b_check_id": check.check_id,
    }


def _event(listing: WatchedListing, check: Check, now: datetime) -> dict[str, Any]:
    return {
        "event_id": str(ULID()),
        "platform": listing.platform,
        "listing_id": listing.listing_id,
        "cert_no": listing.cert_no,
        "old_decision": listing.decision.value,
        "new_decision": check.decision.verdict.value,
        "reason": check.decision.reason.value,
        "check_id": check.check_id,
        "created_at": now,
    }


async def write_events(conn: AsyncConnection, events: list[dict[str, Any]]) -> None:
    await conn.execute(insert(watch_events), events)
