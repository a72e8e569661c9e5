"""Where the watch's checks are made: at upsert and when the processor decides listings again.

`produce_checks` is the one call site, and it records each check (evidence/) on `conn`, the
transaction that writes the listings' decisions and their events: a round that rolls back
leaves no record of checks whose decisions it did not keep, and one that commits leaves all.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from certcheck.checking import Check, Checker
from certcheck.evidence import store as check_records
from certcheck.evidence.records import Checked, Requested, Source
from certcheck.verification.records import Listing


class CheckSource(enum.StrEnum):
    UPSERT = "watch_upsert"  # the decision stored when a platform puts a listing
    CHANGE = "watch_change"  # decided again after a registry change or an expiry date


# A check record's `source` is one of verify, batch and job: an upload of watched listings is
# the platform's batch call; a decision made again after a registry change is a re-check the
# service ran for the platform, with no job of the platform's behind it (job_id null).
_RECORDED_AS = {CheckSource.UPSERT: Source.BATCH, CheckSource.CHANGE: Source.JOB}


class Watched(Protocol):
    @property
    def listing_id(self) -> str: ...
    @property
    def merchant_id(self) -> str | None: ...
    @property
    def listing(self) -> Listing: ...


async def produce_checks(
    conn: AsyncConnection,
    checker: Checker,
    listings: Sequence[tuple[str, Watched]],
    *,
    source: CheckSource,
    record: bool,
) -> list[Check]:
    """The checks of `listings` ((platform, listing) pairs), in order, by the verify Checker;
    with `record`, their check records written on `conn`. The caller has made the day's
    check-record partition before its transaction began (evidence.store.prepare)."""
    checks = await checker.check([watched.listing for _, watched in listings])
    if record:
        recorded_as = _RECORDED_AS[source]
        items = [
            Checked(check, _requested(watched), recorded_as, platform)
            for (platform, watched), check in zip(listings, checks, strict=True)
        ]
        await check_records.write(conn, await asyncio.to_thread(check_records.batch_of, items))
    return checks


def _requested(watched: Watched) -> Requested:
    return Requested.of(watched.listing, watched.listing_id, watched.merchant_id)
