"""Forgetting the statistics and signals with the records they count (the database folds
them in as records are written: staged.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from certcheck.db.tables import check_counts, check_pairs, signal_counts, signal_merchants
from certcheck.verification.numbers import today_in_shanghai


async def purge(conn: AsyncConnection, cutoff: datetime) -> Sequence[int]:
    """Forget the figures of days that ended by `cutoff` and the signals of numbers not
    checked since; the rows deleted from each table."""
    first_kept = today_in_shanghai(cutoff)  # the days before it ended by `cutoff`
    s, m = signal_counts.c, signal_merchants.c
    stale = and_(s.platform == m.platform, s.cert_no == m.cert_no, s.kind == m.kind) & (
        s.last_checked_at < cutoff
    )
    deleted = []
    for statement in (
        delete(check_counts).where(check_counts.c.day < first_kept),
        delete(check_pairs).where(check_pairs.c.day < first_kept),
        delete(signal_merchants).where(exists(select(1).where(stale))),
        delete(signal_counts).where(s.last_checked_at < cutoff),
    ):
        deleted.append((await conn.execute(statement)).rowcount)
    return deleted
