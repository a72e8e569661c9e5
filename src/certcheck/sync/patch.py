"""Applying one validated feed page: certificates, change feed, generation, cursor, one commit.

Everything a page changes commits together, so a crash leaves either all of it (and the cursor
past it) or none of it (and the cursor before it): re-fetching a page is always safe, because
an item equal to what we hold changes nothing and adds no change-feed entry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BindParameter, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from certcheck.db.tables import certificates, changes, registry_state, sync_state
from certcheck.registry.rows import row_values
from certcheck.registry.state import count_run, write_state
from certcheck.sync.feedpage import FeedItem

_CHUNK = 1_000  # numbers per IN (...) lookup, well under SQLite's parameter limit


@dataclass(frozen=True, slots=True)
class Totals:
    added: int = 0
    changed: int = 0
    rejected: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.added + other.added,
            self.changed + other.changed,
            self.rejected + other.rejected,
        )


@dataclass(frozen=True, slots=True)
class PageMark:
    """What the commit records besides the certificates: where the feed stood, and the run."""

    now: datetime
    as_of: datetime
    cursor: datetime | None
    source: str
    run_id: int
    run_before: Totals  # the run's totals before this page
    rejected: int  # the page's items that could not be read


@dataclass
class _Diff:
    """The page against the registry: rows to insert, rows to update, change-feed entries."""

    added: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    by_status: Counter[str] = field(default_factory=Counter)


async def apply_page(
    conn: AsyncConnection, items: Sequence[FeedItem], mark: PageMark
) -> tuple[Totals, int]:
    """Commit the page; returns its counts and the registry's generation afterwards."""
    async with conn.begin():
        # The first statement writes: SQLite then holds its write lock before we read anything.
        await _move_cursor(conn, mark)
        latest = _latest(items)
        diff = _diff(latest, await _current(conn, latest))
        generation, by_status = await _state(conn)
        if diff.added or diff.changed:
            generation += 1
            await _write(conn, diff, mark.now, generation)
        by_status.update(diff.by_status)
        await write_state(
            conn,
            generation=generation,
            now=mark.now,
            as_of=mark.as_of,
            source=mark.source,
            by_status={status: n for status, n in by_status.items() if n > 0},
        )
        counts = Totals(len(diff.added), len(diff.changed), mark.rejected)
        await _count(conn, mark.run_id, mark.run_before + counts)
    return counts, generation


async def _count(conn: AsyncConnection, run_id: int, total: Totals) -> None:
    await count_run(
        conn, run_id, added=total.added, changed=total.changed, removed=0, rejected=total.rejected
    )


async def rewind_cursor(conn: AsyncConnection, cursor: datetime | None) -> None:
    """Put the cursor back (to where a run started) when what it passed may hide gaps."""
    async with conn.begin():
        await conn.execute(
            update(sync_state).where(sync_state.c.id == 1).values(cursor=cursor_text(cursor))
        )


def _diff(latest: Sequence[FeedItem], current: dict[str, tuple[str, str]]) -> _Diff:
    diff = _Diff()
    for item in latest:
        row = row_values(item.certificate)
        old_status, old_digest = current.get(row["cert_no"], (None, None))
        if old_digest == row["digest"]:
            continue
        (diff.added if old_status is None else diff.changed).append(row)
        # An entry for every change, the same status included (models, dates...): the listing
        # watch decides those listings again; GET /v1/changes shows status changes only.
        entry = {"cert_no": row["cert_no"], "old_status": old_status, "new_status": row["status"]}
        diff.entries.append(entry)
        if old_status != row["status"]:
            diff.by_status[row["status"]] += 1
            if old_status is not None:
                diff.by_status[old_status] -= 1
    return diff


def _latest(items: Iterable[FeedItem]) -> list[FeedItem]:
    """One item per number: the newest, the later one on a tie (the feed's own order)."""
    latest: dict[str, FeedItem] = {}
    for item in items:
        seen = latest.get(item.certificate.cert_no)
        if seen is None or item.updated_at >= seen.updated_at:
            latest[item.certificate.cert_no] = item
    return sorted(latest.values(), key=lambda i: (i.updated_at, i.certificate.cert_no))


async def _move_cursor(conn: AsyncConnection, mark: PageMark) -> None:
    values = {"cursor": cursor_text(mark.cursor), "as_of": mark.as_of, "updated_at": mark.now}
    moved = await conn.execute(update(sync_state).where(sync_state.c.id == 1), values)
    if moved.rowcount == 0:
        await conn.execute(insert(sync_state), {"id": 1, **values})


def cursor_text(cursor: datetime | None) -> str | None:
    return None if cursor is None else cursor.astimezone(UTC).isoformat(timespec="microseconds")


async def _current(conn: AsyncConnection, items: Sequence[FeedItem]) -> dict[str, tuple[str, str]]:
    """Status and digest of the page's numbers that the registry holds."""
    numbers = [item.certificate.cert_no for item in items]
    found: dict[str, tuple[str, str]] = {}
    c = certificates.c
    for start in range(0, len(numbers), _CHUNK):
        chunk = numbers[start : start + _CHUNK]
        rows = await conn.execute(select(c.cert_no, c.status, c.digest).where(c.cert_no.in_(chunk)))
        found.update((row.cert_no, (row.status, row.digest)) for row in rows)
    return found


async def _state(conn: AsyncConnection) -> tuple[int, Counter[str]]:
    row = (
        await conn.execute(select(registry_state.c.generation, registry_state.c.by_status))
    ).first()
    if row is not None:
        return int(row.generation), Counter(row.by_status)
    # No registry yet: start from whatever the table holds (nothing, unless restored by hand).
    counted = await conn.execute(
        select(certificates.c.status, func.count()).group_by(certificates.c.status)
    )
    return 0, Counter({status: int(count) for status, count in counted})


async def _write(conn: AsyncConnection, diff: _Diff, now: datetime, generation: int) -> None:
    if diff.added:
        await conn.execute(insert(certificates), diff.added)
    if diff.changed:
        rows = [
            {"b_cert_no": row["cert_no"], **{k: v for k, v in row.items() if k != "cert_no"}}
            for row in diff.changed
        ]
        key: BindParameter[str] = bindparam("b_cert_no")
        await conn.execute(update(certificates).where(certificates.c.cert_no == key), rows)
    if diff.entries:
        stamp = {"changed_at": now, "generation": generation}
        await conn.execute(insert(changes), [{**entry, **stamp} for entry in diff.entries])


async def read_cursor(conn: AsyncConnection) -> tuple[datetime | None, datetime | None]:
    """The stored cursor (newest `updated_at` applied) and the feed's last `as_of`."""
    async with conn.begin():
        row = (await conn.execute(select(sync_state.c.cursor, sync_state.c.as_of))).first()
    if row is None:
        return None, None
    cursor = None if row.cursor is None else datetime.fromisoformat(row.cursor)
    return cursor, row.as_of
