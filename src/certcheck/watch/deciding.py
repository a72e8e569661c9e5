"""Where the watch's checks are made: at upsert and when the processor decides listings again.

`produce_checks` is the one call site. Recording each check (check records, evidence) belongs
here, on `conn`: the transaction that writes the listings' decisions and their events.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from certcheck.checking import Check, Checker
from certcheck.verification.records import Listing


class CheckSource(enum.StrEnum):
    UPSERT = "watch_upsert"  # the decision stored when a platform puts a listing
    CHANGE = "watch_change"  # decided again after a registry change or an expiry date


async def produce_checks(
    conn: AsyncConnection,
    checker: Checker,
    listings: Sequence[tuple[str, Listing]],
    *,
    source: CheckSource,
) -> list[Check]:
    """The checks of `listings` ((platform, listing) pairs), in order, by the verify Checker."""
    del conn, source  # for the check records: written here, in the same transaction
    return await checker.check([listing for _, listing in listings])
