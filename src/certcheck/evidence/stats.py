"""GET /v1/stats read from the aggregate tables (staged.py), never from the records.

Counters are summed per key; distinct listings and merchants are counted over the pair rows of
the range (one per listing and merchant pair, day and key combination), so they are exact for
any range and grouping, at the cost of reading those rows (docs/evidence.md).
"""

from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, CompoundSelect, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.tables import check_counts, check_pairs
from certcheck.errors import InvalidDateRange
from certcheck.evidence.tally import LISTING, MERCHANT

MAX_DAYS = 400  # a range of at most this many days, both ends included


class GroupBy(enum.StrEnum):
    DAY = "day"
    PRODUCT_CODE = "product_code"
    REASON = "reason"
    SOURCE = "source"


@dataclass(slots=True)
class Figures:
    checks: int = 0
    allow: int = 0
    block: int = 0
    review: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    listings: int = 0
    merchants: int = 0

    def add(self, decision: str, reason: str, checks: int) -> None:
        self.checks += checks
        setattr(self, decision, getattr(self, decision) + checks)
        self.by_reason[reason] = self.by_reason.get(reason, 0) + checks


@dataclass(frozen=True, slots=True)
class Stats:
    rows: list[tuple[str | None, Figures]]  # ascending keys; a null product code last
    total: Figures


def check_range(first: date, last: date) -> None:
    if first > last:
        raise InvalidDateRange(f"from ({first}) is after to ({last})")
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise InvalidDateRange(f"the range has {days} days; at most {MAX_DAYS}")


async def statistics(
    engine: AsyncEngine, first: date, last: date, group_by: GroupBy, platform: str | None
) -> Stats:
    """The figures of `platform`'s checks (None: every platform's) from `first` to `last`
    (China Standard Time days, both included), per `group_by` key."""
    check_range(first, last)
    c = check_counts.c
    key = _key(c, group_by)
    counted = select(key, c.decision, c.reason, func.sum(c.checks)).where(
        *_scope(c, first, last, platform)
    )
    seen = _members(first, last, platform, group_by).subquery()
    everyone = _members(first, last, platform, None).subquery()
    async with engine.connect() as conn:
        count_rows = await conn.execute(counted.group_by(key, c.decision, c.reason))
        member_rows = await conn.execute(
            select(seen.c.key, seen.c.kind, func.count()).group_by(seen.c.key, seen.c.kind)
        )
        total_rows = await conn.execute(
            select(everyone.c.kind, func.count()).group_by(everyone.c.kind)
        )
        return _assemble(count_rows.all(), member_rows.all(), total_rows.all())


def _members(
    first: date, last: date, platform: str | None, group_by: GroupBy | None
) -> CompoundSelect[Any]:
    """Each distinct (key, kind, platform, id) of the range: a listing (kind LISTING) or a
    merchant (MERCHANT) seen under the key; without `group_by`, under no key."""
    p = check_pairs.c
    keyed = [_key(p, group_by)] if group_by is not None else []
    where = _scope(p, first, last, platform)
    # Each side made distinct on its own, then put together: a listing and a merchant never
    # match (their kinds differ), and a UNION's dedupe over both sides' rows sorted them all
    # again (3-4x slower over a million rows, bench/README.md, twenty-sixth pass).
    return union_all(
        select(*keyed, literal(LISTING).label("kind"), p.platform, p.listing.label("member"))
        .distinct()
        .where(*where, p.sides != MERCHANT),
        select(*keyed, literal(MERCHANT).label("kind"), p.platform, p.merchant.label("member"))
        .distinct()
        .where(*where, p.sides != LISTING),
    )


def _key(columns: Any, group_by: GroupBy) -> ColumnElement[Any]:
    column: ColumnElement[Any] = getattr(columns, group_by.value)
    return column.label("key")


def _scope(
    columns: Any, first: date, last: date, platform: str | None
) -> list[ColumnElement[bool]]:
    where = [columns.day.between(first, last)]
    if platform is not None:
        where.append(columns.platform == platform)
    return where


def _assemble(count_rows: Any, member_rows: Any, total_rows: Any) -> Stats:
    figures: defaultdict[Any, Figures] = defaultdict(Figures)
    total = Figures()
    for key, decision, reason, checks in count_rows:
        figures[key].add(decision, reason, int(checks))
        total.add(decision, reason, int(checks))
    for key, kind, n in member_rows:
        if key in figures:
            _set_members(figures[key], kind, int(n))
    for kind, n in total_rows:
        _set_members(total, kind, int(n))
    rows = [(_key_text(key), figures[key]) for key in sorted(figures, key=_order)]
    for _, row in rows:
        row.by_reason = dict(sorted(row.by_reason.items()))
    total.by_reason = dict(sorted(total.by_reason.items()))
    return Stats(rows, total)


def _set_members(into: Figures, kind: str, n: int) -> None:
    if kind == LISTING:
        into.listings = n
    elif kind == MERCHANT:
        into.merchants = n


def _order(key: Any) -> tuple[bool, Any]:
    return (key == "", key)  # "" is a missing product code: after the codes


def _key_text(key: Any) -> str | None:
    if isinstance(key, date):
        return key.isoformat()
    return None if key == "" else str(key)
