"""Watched listings: bulk upsert with the decision of the moment, read one, stop watching one.

An upsert is one transaction per batch: it holds the watch cursor shared (watch/cursor.py),
decides the batch with the verify Checker, and writes it with one INSERT .. ON CONFLICT DO
UPDATE. `since` moves only when the decision does. An upsert records no event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.checking import Check, Checker
from certcheck.db.tables import watched_listings
from certcheck.db.types import storable
from certcheck.evidence import store as check_records
from certcheck.verification.records import Listing, Reason, Verdict
from certcheck.watch import cursor
from certcheck.watch.deciding import CheckSource, produce_checks
from certcheck.watch.records import WatchedListing, WatchInput

_w = watched_listings.c


async def upsert(
    engine: AsyncEngine,
    checker: Checker,
    platform: str,
    inputs: Sequence[WatchInput],
    *,
    record: bool,
) -> None:
    """Watch `inputs` (the last one wins for a listing_id), each with its current decision;
    with `record`, each decision's check record is written with it."""
    latest = list({item.listing_id: item for item in inputs}.values())
    if not latest:
        return
    if record:
        await check_records.prepare(engine, [datetime.now(UTC)])
    async with engine.begin() as conn:
        await cursor.hold(conn, exclusive=False)
        # Taken after the cursor: every change the processor has passed is in what we read.
        await checker.store.refresh()
        checks = await produce_checks(
            conn,
            checker,
            [(platform, item) for item in latest],
            source=CheckSource.UPSERT,
            record=record,
        )
        now = datetime.now(UTC)
        rows = [
            _row(platform, item, check, now) for item, check in zip(latest, checks, strict=True)
        ]
        await conn.execute(_upsert_statement(conn), rows)


def _row(platform: str, item: WatchInput, check: Check, now: datetime) -> dict[str, Any]:
    return {
        "platform": platform,
        "listing_id": item.listing_id,
        "cert_no": check.cert_no,
        "cert_no_sent": item.cert_no,
        "product_code": item.product_code,
        "model": item.model,
        "manufacturer": item.manufacturer,
        "merchant_id": item.merchant_id,
        "decision": check.decision.verdict.value,
        "reason": check.decision.reason.value,
        "since": now,
        "check_id": check.check_id,
        "updated_at": now,
    }


def _upsert_statement(conn: AsyncConnection) -> Any:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(watched_listings)
    new = statement.excluded
    kept = {"platform", "listing_id", "since"}
    changed: dict[str, Any] = {
        c.name: new[c.name] for c in watched_listings.columns if c.name not in kept
    }
    changed["since"] = case((_w.decision == new.decision, _w.since), else_=new.since)
    return statement.on_conflict_do_update(
        index_elements=[_w.platform, _w.listing_id], set_=changed
    )


def _key(platform: str, listing_id: str) -> Any:
    return and_(_w.platform == platform, _w.listing_id == listing_id)


async def get_listing(engine: AsyncEngine, platform: str, listing_id: str) -> WatchedListing | None:
    if not storable(listing_id):
        return None
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(watched_listings).where(_key(platform, listing_id)))
        ).first()
    return None if row is None else listing_from_row(row._mapping)


async def delete_listing(engine: AsyncEngine, platform: str, listing_id: str) -> bool:
    """Stop watching; False when it was not watched. A round in progress finishes first."""
    if not storable(listing_id):
        return False
    async with engine.begin() as conn:
        await cursor.hold(conn, exclusive=False)
        gone = await conn.execute(delete(watched_listings).where(_key(platform, listing_id)))
    return bool(gone.rowcount)


def listing_from_row(row: Mapping[Any, Any]) -> WatchedListing:
    return WatchedListing(
        platform=row["platform"],
        listing_id=row["listing_id"],
        cert_no=row["cert_no"],
        cert_no_sent=row["cert_no_sent"],
        listing=Listing(
            cert_no=row["cert_no_sent"],
            product_code=row["product_code"],
            model=row["model"],
            manufacturer=row["manufacturer"],
        ),
        decision=Verdict(row["decision"]),
        reason=Reason(row["reason"]),
        since=row["since"],
        check_id=row["check_id"],
        merchant_id=row["merchant_id"],
    )


async def count_watched(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(watched_listings)) or 0)
