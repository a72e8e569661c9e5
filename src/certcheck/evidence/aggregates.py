"""Folding a Tally into the statistics and signal tables, and forgetting them with the records.

Upserts (INSERT ... ON CONFLICT) in the transaction that writes the records, so the figures
and the records they count commit together. Rows go in primary-key order: two processes
folding at once on PostgreSQL lock the same counters in the same order and cannot deadlock.
The rows are made ready for the driver in a worker thread (`ready`, called by store.py) and
sent with the driver's executemany (db/bulk.py): `fold` does no per-row work on the loop.
"""

from __future__ import annotations

import asyncio
import heapq
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Dialect, String, and_, case, delete, exists, func, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from certcheck.db import bulk
from certcheck.db.tables import check_counts, check_members, signal_counts, signal_merchants
from certcheck.evidence.tally import EVIDENCE_IDS, CountKey, Member, SignalKey, Tally
from certcheck.verification.numbers import today_in_shanghai

_ID_WIDTH = 27  # a ULID and the space after it
_EVIDENCE_CHARS = EVIDENCE_IDS * _ID_WIDTH - 1
_COUNT_COLUMNS = (*CountKey._fields, "checks")
_SIGNAL_COLUMNS = (*SignalKey._fields, "checks", "merchants", "evidence", "last_checked_at")
_MERCHANTS_AT = _SIGNAL_COLUMNS.index("merchants")
_MERCHANT_COLUMNS = (*SignalKey._fields, "merchant_id")
_K = TypeVar("_K", bound=tuple[Any, ...])


@dataclass(frozen=True, slots=True)
class _Statements:
    """The upserts of one dialect, compiled once (bulk.per_dialect)."""

    counts: bulk.Statement
    members: bulk.Statement
    signals: bulk.Statement
    merchants: bulk.Statement  # RETURNING the keys of the merchants new to their signal

    @classmethod
    def of(cls, dialect: Dialect) -> _Statements:
        # Both dialects spell the upsert alike; only the construct's home differs.
        insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        counts = insert(check_counts)
        signals = insert(signal_counts)
        s, excluded, m = signal_counts.c, signals.excluded, signal_merchants.c
        merchants = insert(signal_merchants).on_conflict_do_nothing()
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
                insert(check_members).on_conflict_do_nothing(), dialect, Member._fields
            ),
            signals=bulk.statement(
                signals.on_conflict_do_update(
                    index_elements=SignalKey._fields,
                    set_={
                        "checks": s.checks + excluded.checks,
                        "merchants": s.merchants + excluded.merchants,
                        # The batch's ids before the older ones; ids are of one width, so
                        # cutting at 20 ids' worth of characters keeps whole ids. Constants
                        # are literal: a bound one would be a parameter of every row.
                        "evidence": func.substr(
                            excluded.evidence + literal_column("' '", String) + s.evidence,
                            literal_column("1"),
                            literal_column(str(_EVIDENCE_CHARS)),
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
            merchants=bulk.statement(
                merchants.returning(m.platform, m.cert_no, m.kind), dialect, _MERCHANT_COLUMNS
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
    """A tally's rows, in primary-key order and ready for the driver: made by `ready` in a
    worker thread, so folding does no per-row work on the event loop."""

    statements: _Statements
    counts: list[tuple[Any, ...]]
    members: list[tuple[Any, ...]]
    merchants: list[tuple[Any, ...]]  # SQLite: one parameter set, the JSON array
    signals: list[tuple[Any, ...]]  # their `merchants` 0 until the new merchants are known


def ready(tally: Tally, dialect: Dialect) -> Ready:
    """CPU only: call it in a worker thread."""
    st = bulk.per_dialect(_Statements.of, dialect)
    merchants = st.merchants.rows(
        (*key, merchant) for key, merchant in _in_order(tally.signal_merchants)
    )
    return Ready(
        statements=st,
        counts=st.counts.rows((*key, n) for key, n in _in_order(tally.counts.items())),
        members=st.members.rows(_in_order(tally.members)),
        merchants=(
            merchants
            if dialect.name == "postgresql" or not merchants
            else [(_json_array(merchants),)]
        ),
        signals=st.signals.rows(
            (*key, delta.checks, 0, " ".join(delta.evidence), delta.last_checked_at)
            for key, delta in _in_order(tally.signals.items())
        ),
    )


# The work above runs in a thread, but holds the GIL (so the event loop's thread waits) for
# the whole of any one call into C: sorting 20,000 keys or serialising 10,000 rows at once
# takes 10-60 ms on a busy machine. In runs of this many, the interpreter can switch between.
_RUN = 1_000


def _in_order(items: Iterable[_K]) -> Iterator[_K]:
    """`items` sorted; heapq.merge is Python, so the GIL can pass between two items."""
    listed = list(items)
    return heapq.merge(*(sorted(listed[at : at + _RUN]) for at in range(0, len(listed), _RUN)))


def _json_array(rows: Sequence[tuple[Any, ...]]) -> str:
    parts = (
        json.dumps(rows[at : at + _RUN], ensure_ascii=False)[1:-1]
        for at in range(0, len(rows), _RUN)
    )
    return f"[{','.join(parts)}]"


async def fold(conn: AsyncConnection, ready: Ready) -> None:
    """Add a tally, made `ready`, to the aggregates, inside `conn`'s transaction."""
    st = ready.statements
    await bulk.executemany(conn, st.counts, ready.counts)
    await bulk.executemany(conn, st.members, ready.members)
    signals = ready.signals
    new = await _new_merchants(conn, ready)
    if new:
        signals = await asyncio.to_thread(_with_merchants, signals, new)
    await bulk.executemany(conn, st.signals, signals)


async def _new_merchants(conn: AsyncConnection, ready: Ready) -> Sequence[Sequence[Any]]:
    """Insert the merchants; the keys of those that were new, one per merchant. Only rows
    this transaction inserted come back: a merchant another process inserted first (on
    PostgreSQL, this waits for its commit) counts there and not here."""
    if not ready.merchants:
        return []
    driver = await bulk.driver(conn)
    if conn.dialect.name == "postgresql":
        found: Sequence[Sequence[Any]] = await driver.fetchmany(
            ready.statements.merchants.sql, ready.merchants
        )
        return found
    async with driver.execute(_SQLITE_MERCHANTS, ready.merchants[0]) as cursor:
        rows: Sequence[Sequence[Any]] = await cursor.fetchall()
    return rows


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
