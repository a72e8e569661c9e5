"""SQLite: folding a Tally into the statistics and signal tables; on both databases,
forgetting them with the records.

Upserts (INSERT ... ON CONFLICT) in the transaction that writes the records, so the figures
and the records they count commit together. The rows are made ready for the driver in a
worker thread (`ready`, called by store.py), so `fold` does no per-row work on the event loop:
the driver's executemany of ready rows (db/bulk.py). PostgreSQL counts a batch's figures itself
from the rows it is sent (staged.py): there the database runs on a core of its own.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect, String, and_, case, delete, exists, func, literal_column, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from certcheck.db import bulk
from certcheck.db.tables import check_counts, check_members, signal_counts, signal_merchants
from certcheck.evidence.tally import EVIDENCE_CHARS, CountKey, Member, SignalKey, Tally
from certcheck.verification.numbers import today_in_shanghai

_COUNT_COLUMNS = (*CountKey._fields, "checks")
_SIGNAL_COLUMNS = (*SignalKey._fields, "checks", "merchants", "evidence", "last_checked_at")
_MERCHANTS_AT = _SIGNAL_COLUMNS.index("merchants")
_MERCHANT_COLUMNS = (*SignalKey._fields, "merchant_id")
_KEY = ", ".join(SignalKey._fields)


@dataclass(frozen=True, slots=True)
class _SqliteStatements:
    """SQLite's upserts, compiled once (bulk.per_dialect)."""

    counts: bulk.Statement
    members: bulk.Statement
    signals: bulk.Statement

    @classmethod
    def of(cls, dialect: Dialect) -> _SqliteStatements:
        counts = sqlite.insert(check_counts)
        signals = sqlite.insert(signal_counts)
        s, excluded = signal_counts.c, signals.excluded
        return cls(
            counts=bulk.statement(
                counts.on_conflict_do_update(
                    index_elements=CountKey._fields,
                    set_={"checks": check_counts.c.checks + counts.excluded.checks},
                ),
                dialect,
                _COUNT_COLUMNS,
            ),
            members=bulk.statement(
                sqlite.insert(check_members).on_conflict_do_nothing(), dialect, Member._fields
            ),
            signals=bulk.statement(
                signals.on_conflict_do_update(
                    index_elements=SignalKey._fields,
                    set_={
                        "checks": s.checks + excluded.checks,
                        "merchants": s.merchants + excluded.merchants,
                        # As staged.py's. Constants are literal: a bound one would be a
                        # parameter of every row.
                        "evidence": func.substr(
                            excluded.evidence + literal_column("' '", String) + s.evidence,
                            literal_column("1"),
                            literal_column(str(EVIDENCE_CHARS)),
                        ),
                        "last_checked_at": case(
                            (
                                excluded.last_checked_at > s.last_checked_at,
                                excluded.last_checked_at,
                            ),
                            else_=s.last_checked_at,
                        ),
                    },
                ),
                dialect,
                _SIGNAL_COLUMNS,
            ),
        )


# sqlite3's executemany drops what RETURNING gives, so SQLite gets every merchant in one
# statement: a JSON array of [platform, cert_no, kind, merchant_id] read by json_each.
# ("WHERE true": without it SQLite would read ON CONFLICT as a join's ON.)
_SQLITE_MERCHANTS = (
    "INSERT INTO signal_merchants (platform, cert_no, kind, merchant_id) "
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]'), json_extract(value, '$[3]') FROM json_each(?) WHERE true "
    "ON CONFLICT DO NOTHING RETURNING platform, cert_no, kind"
)


@dataclass(frozen=True, slots=True)
class Ready:
    """Each statement's rows, ready for the driver."""

    counts: list[tuple[Any, ...]]
    members: list[tuple[Any, ...]]
    merchants: str | None  # the JSON array _SQLITE_MERCHANTS reads
    signals: list[tuple[Any, ...]]  # their `merchants` 0 until the new merchants are known


def ready(tally: Tally, dialect: Dialect) -> Ready:
    """A tally as SQLite's driver takes it. CPU only: call it in a worker thread."""
    counts = [(*key, n) for key, n in tally.counts.items()]
    st = bulk.per_dialect(_SqliteStatements.of, dialect)
    merchants = [(*key, merchant) for key, merchant in tally.signal_merchants]
    return Ready(
        counts=st.counts.rows(counts),
        members=st.members.rows(tally.members),
        merchants=_json_array(merchants) if merchants else None,
        signals=st.signals.rows(
            (*key, d.checks, 0, " ".join(d.evidence), d.last_checked_at)
            for key, d in tally.signals.items()
        ),
    )


_RUN = 1_000  # rows per json.dumps call: the GIL can pass between two


def _json_array(rows: Sequence[tuple[Any, ...]]) -> str:
    parts = (
        json.dumps(rows[at : at + _RUN], ensure_ascii=False)[1:-1]
        for at in range(0, len(rows), _RUN)
    )
    return f"[{','.join(parts)}]"


async def fold(conn: AsyncConnection, ready: Ready) -> None:
    """Add a tally, made `ready`, to the aggregates, inside `conn`'s transaction."""
    driver = await bulk.driver(conn)
    st = bulk.per_dialect(_SqliteStatements.of, conn.dialect)
    await bulk.executemany(conn, st.counts, ready.counts)
    await bulk.executemany(conn, st.members, ready.members)
    signals = ready.signals
    if ready.merchants is not None:
        async with driver.execute(_SQLITE_MERCHANTS, (ready.merchants,)) as cursor:
            new: Sequence[Sequence[Any]] = await cursor.fetchall()
        if new:
            signals = await asyncio.to_thread(_with_merchants, signals, new)
    await bulk.executemany(conn, st.signals, signals)


def _with_merchants(
    signals: list[tuple[Any, ...]], new: Sequence[Sequence[Any]]
) -> list[tuple[Any, ...]]:
    """The signal rows with their new merchants counted. CPU only: a worker thread."""
    found = Counter(tuple(key) for key in new)
    width = len(SignalKey._fields)
    return [
        (*row[:_MERCHANTS_AT], found[row[:width]], *row[_MERCHANTS_AT + 1 :])
        if row[:width] in found
        else row
        for row in signals
    ]


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
