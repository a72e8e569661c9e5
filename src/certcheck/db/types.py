"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, String
from sqlalchemy.types import TypeDecorator, TypeEngine


def bytewise(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """Text compared byte by byte on PostgreSQL (collation "C"): sorts, groupings and key
    look-ups then compare with memcmp, not through the database's locale (3-5 % of what folding
    a job chunk's records cost PostgreSQL, bench/README.md, thirteenth pass). Any total order
    keeps the fold's upserts in one lock order in every writer; SQLite compares bytes already.
    Equal text is equal bytes under either, so counts and groupings do not change."""
    if isinstance(type_, String):
        return type_.with_variant(type(type_)(type_.length, collation="C"), "postgresql")
    return type_


# What no text column holds on both databases: a NUL character (PostgreSQL's text cannot) and
# a lone surrogate (not UTF-8).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> bool:
    """Whether a text column can hold `text` on both databases; no row is keyed by text it
    cannot hold, and on PostgreSQL a query naming such text fails instead of finding none."""
    return UNSTORABLE.search(text) is None


def first_unstorable(value: Any) -> tuple[list[str | int], str] | None:
    """The first string of a parsed JSON value, member names included, that no text column can
    hold, and where it is (a member name: where its object is); None when every one can."""
    stack: list[tuple[list[str | int], Any]] = [([], value)]
    while stack:
        loc, item = stack.pop()
        if isinstance(item, str):
            if not storable(item):
                return loc, item
        elif isinstance(item, dict):
            for name in item:
                if not storable(name):
                    return loc, name
            stack.extend(([*loc, name], member) for name, member in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend(([*loc, i], item[i]) for i in range(len(item) - 1, -1, -1))
    return None


# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out; SQLite keeps no offset, so we attach it on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], object] | None:
        if dialect.name == "sqlite":
            return _sqlite_text
        return super().bind_processor(dialect)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLAlchemy's default storage format for SQLite's DATETIME, as positional fields.
_SQLITE_FORMAT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


def _sqlite_text(value: datetime | None) -> str | None:
    """The text SQLite's DATETIME keeps for `value` in UTC, as the dialect makes it but in one
    step: through process_bind_param and then the dialect's processor it took 4.7 us, and a
    bulk write of check records binds one for every record (this: under 1 us)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    u = value.astimezone(UTC)
    return _SQLITE_FORMAT % (u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond)
