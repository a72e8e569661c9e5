"""UTCDateTime binds on SQLite the text SQLAlchemy's own DATETIME would: SQLite compares the
times of every range query (records by check id, retention) as that text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

from certcheck.db.types import UTCDateTime

_SQLITE = sqlite.dialect()
_dialects_own = DateTime().dialect_impl(_SQLITE).bind_processor(_SQLITE)
_ours = UTCDateTime().bind_processor(_SQLITE)

_aware = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(-timedelta(hours=5))]),
)


@given(_aware)
def test_sqlite_text_is_the_dialects_own(moment: datetime) -> None:
    assert _dialects_own is not None
    assert _ours is not None
    assert _ours(moment) == _dialects_own(moment.astimezone(UTC).replace(tzinfo=None))


def test_sqlite_text_of_a_whole_second_keeps_its_microseconds() -> None:
    assert _ours is not None
    at = datetime(2026, 12, 4, 7, 30, tzinfo=timezone(timedelta(hours=8)))
    assert _ours(at) == "2026-12-03 23:30:00.000000"


def test_none_binds_as_none_and_a_naive_time_is_refused() -> None:
    assert _ours is not None
    assert _ours(None) is None
    with pytest.raises(ValueError, match="naive"):
        _ours(datetime(2026, 12, 4))


def test_postgresql_binds_the_aware_time_in_utc() -> None:
    dialect = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
    process = UTCDateTime().bind_processor(dialect)
    at = datetime(2026, 12, 4, 7, 30, tzinfo=timezone(timedelta(hours=8)))
    bound = at if process is None else process(at)
    assert isinstance(bound, datetime)
    assert bound == at
    assert bound.tzinfo == UTC
