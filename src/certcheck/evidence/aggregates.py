"""Folding a Tally into the statistics and signal tables, and forgetting them with the records.

Upserts (INSERT ... ON CONFLICT) in the transaction that writes the records, so the figures
and the records they count commit together. Rows go in primary-key order: two processes
folding at once on PostgreSQL lock the same counters in the same order and cannot deadlock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, case, delete, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from certcheck.db.tables import check_counts, check_members, signal_counts, signal_merchants
from certcheck.evidence.tally import EVIDENCE_IDS, SignalKey, Tally
from certcheck.verification.numbers import today_in_shanghai

_ID_WIDTH = 27  # a ULID and the space after it
_EVIDENCE_CHARS = EVIDENCE_IDS * _ID_WIDTH - 1
_COUNT_KEY = ["day", "platform", "product_code", "source", "reason", "decision"]
_SIGNAL_KEY = ["platform", "cert_no", "kind"]


def _insert(conn: AsyncConnection, table: Table) -> Any:
    # Both dialects spell the upsert alike; only the construct's home differs.
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def fold(conn: AsyncConnection, tally: Tally) -> None:
    """Add `tally` to the aggregates, inside `conn`'s transaction."""
    if tally.counts:
        stmt = _insert(conn, check_counts)
        rows = [{**_row(key), "checks": n} for key, n in sorted(tally.counts.items())]
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=_COUNT_KEY,
                set_={"checks": check_counts.c.checks + stmt.excluded.checks},
            ),
            rows,
        )
    if tally.members:
        members = [_row(m) for m in sorted(tally.members)]
        await conn.execute(_insert(conn, check_members).on_conflict_do_nothing(), members)
    if tally.signals:
        await _fold_signals(conn, tally)


def _row(key: Any) -> dict[str, Any]:
    return {f.name: getattr(key, f.name) for f in fields(key)}


async def _fold_signals(conn: AsyncConnection, tally: Tally) -> None:
    new_merchants = await _new_merchants(conn, tally)
    stmt = _insert(conn, signal_counts)
    s, excluded = signal_counts.c, stmt.excluded
    rows = [
        {
            "platform": key.platform,
            "cert_no": key.cert_no,
            "kind": key.kind,
            "checks": delta.checks,
            "merchants": new_merchants[key],
            "evidence": " ".join(delta.evidence),
            "last_checked_at": delta.last_checked_at,
        }
        for key, delta in sorted(tally.signals.items())
    ]
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=_SIGNAL_KEY,
            set_={
                "checks": s.checks + excluded.checks,
                "merchants": s.merchants + excluded.merchants,
                # The batch's ids before the older ones; ids are of one width, so cutting at
                # 20 ids' worth of characters keeps whole ids.
                "evidence": func.substr(excluded.evidence + " " + s.evidence, 1, _EVIDENCE_CHARS),
                "last_checked_at": case(
                    (excluded.last_checked_at > s.last_checked_at, excluded.last_checked_at),
                    else_=s.last_checked_at,
                ),
            },
        ),
        rows,
    )


async def _new_merchants(conn: AsyncConnection, tally: Tally) -> Counter[SignalKey]:
    """Insert the merchants; how many were new to each signal (returned rows are the new)."""
    found: Counter[SignalKey] = Counter()
    if not tally.signal_merchants:
        return found
    m = signal_merchants.c
    rows = [
        {"platform": k.platform, "cert_no": k.cert_no, "kind": k.kind, "merchant_id": merchant}
        for k, merchant in sorted(tally.signal_merchants)
    ]
    stmt = (
        _insert(conn, signal_merchants)
        .on_conflict_do_nothing()
        .returning(m.platform, m.cert_no, m.kind)
    )
    result = await conn.execute(stmt, rows)
    for platform, cert_no, kind in result.all():
        found[SignalKey(platform, cert_no, kind)] += 1
    return found


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
        delete(check_members).where(check_members.c.day < first_kept),
        delete(signal_merchants).where(exists(select(1).where(stale))),
        delete(signal_counts).where(s.last_checked_at < cutoff),
    ):
        deleted.append((await conn.execute(statement)).rowcount)
    return deleted
