"""db/bulk.py: statements compiled for a dialect, rows made ready for its driver."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Dialect, insert, literal_column
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import create_async_engine

from certcheck.db import bulk
from certcheck.db.tables import check_counts, signal_counts

_SIGNAL = (
    *("platform", "cert_no", "kind", "checks", "merchants", "evidence", "last_checked_at"),
    "first_merchant",
)
_PG = create_async_engine("postgresql+asyncpg://certcheck@localhost/none").dialect
_SQLITE = create_async_engine("sqlite+aiosqlite://").dialect  # neither engine connects
_AT = datetime(2026, 11, 22, 4, 0, 0, 123456, tzinfo=UTC)


class TestStatement:
    @pytest.mark.parametrize(("dialect", "placeholder"), [(_PG, "$7::"), (_SQLITE, "?")])
    def test_in_the_dialects_paramstyle(self, dialect: Dialect, placeholder: str) -> None:
        made = bulk.statement(insert(signal_counts), dialect, _SIGNAL)
        assert made.columns == _SIGNAL
        assert placeholder in made.sql

    def test_refuses_columns_in_another_order(self) -> None:
        with pytest.raises(ValueError, match="not the row's columns"):
            bulk.statement(insert(signal_counts), _SQLITE, tuple(reversed(_SIGNAL)))

    def test_refuses_a_bound_constant(self) -> None:
        """A constant would be one more positional parameter than the row has values."""
        stmt = sqlite.insert(check_counts)
        bound = stmt.on_conflict_do_update(set_={"checks": check_counts.c.checks + 1})
        literal = stmt.on_conflict_do_update(
            set_={"checks": check_counts.c.checks + literal_column("1")}
        )
        columns = tuple(check_counts.c.keys())
        with pytest.raises(ValueError, match="not the row's columns"):
            bulk.statement(bound, _SQLITE, columns)
        assert bulk.statement(literal, _SQLITE, columns).columns == columns


class TestRows:
    def test_values_go_through_their_types_bind_processors(self) -> None:
        """What conn.execute would send: on SQLite, UTC text for the time, text for the day."""
        row = ("shop", "2024010901234567", "MANY_MERCHANTS", 2, 1, "ids", _AT, "m-1")
        (sent,) = bulk.statement(insert(signal_counts), _SQLITE, _SIGNAL).rows([row])
        assert sent == (*row[:6], "2026-11-22 04:00:00.123456", "m-1")
        day = (date(2026, 11, 22), "shop", "", "verify", "VALID", "allow", 3)
        counts = bulk.statement(insert(check_counts), _SQLITE, check_counts.c.keys())
        assert counts.rows([day]) == [("2026-11-22", *day[1:])]

    def test_none_stays_none_and_postgresql_keeps_aware_times(self) -> None:
        made = bulk.statement(insert(signal_counts), _PG, _SIGNAL)
        (sent,) = made.rows([("shop", None, "k", 1, 0, "", _AT, None)])
        assert sent[1] is None
        assert sent[6] == _AT
        assert sent[6].tzinfo is not None

    def test_a_naive_time_is_refused_as_conn_execute_would(self) -> None:
        made = bulk.statement(insert(signal_counts), _SQLITE, _SIGNAL)
        with pytest.raises(ValueError, match="naive"):
            made.rows([("shop", "n", "k", 1, 0, "", _AT.replace(tzinfo=None), None)])

    def test_an_object_is_processed_again_only_after_another(self) -> None:
        seen: list[object] = []

        def process(value: object) -> str:
            seen.append(value)
            return f"<{value}>"

        made = bulk.Statement("INSERT", ("a", "b"), (None, process))
        first, second = ["x"], ["x"]  # equal, not the same object
        rows = [(1, first), (2, first), (3, None), (4, second), (5, first)]
        shown = "<['x']>"
        assert made.rows(rows) == [(1, shown), (2, shown), (3, None), (4, shown), (5, shown)]
        assert [id(value) for value in seen] == [id(first), id(second), id(first)]


class TestSqliteRuns:
    @pytest.mark.parametrize("count", [0, 1, 5, 128, 1_000, 1_537, 5_000])
    def test_inserts_every_row_in_order_in_few_statement_texts(self, count: int) -> None:
        made = bulk.statement(insert(signal_counts), _SQLITE, _SIGNAL)
        rows = made.rows(
            [("shop", f"{n:016d}", "MANY_MERCHANTS", n, 0, "", _AT, None) for n in range(count)]
        )
        runs = made.sqlite_runs(rows)
        lengths = [len(values) // len(_SIGNAL) for _, values in runs]
        assert sum(lengths) == count
        assert all(n & (n - 1) == 0 and n <= 512 for n in lengths)  # powers of two
        assert lengths == sorted(lengths, reverse=True)
        db = sqlite3.connect(":memory:")
        db.execute(
            "CREATE TABLE signal_counts (platform, cert_no, kind, checks, merchants, evidence, "
            "last_checked_at, first_merchant)"
        )
        for sql, values in runs:
            db.execute(sql, values)
        assert db.execute("SELECT * FROM signal_counts ORDER BY rowid").fetchall() == rows

    def test_stays_within_sqlites_bound_parameters(self) -> None:
        wide = bulk.Statement(
            "INSERT INTO t VALUES (" + ", ".join("?" * 200) + ")", ("c",) * 200, (None,) * 200
        )
        runs = wide.sqlite_runs([(0,) * 200] * 300)
        assert max(len(values) for _, values in runs) <= bulk.SQLITE_PARAMETERS
        assert sum(len(values) for _, values in runs) == 300 * 200

    def test_refuses_a_statement_that_is_not_a_single_row_insert(self) -> None:
        with pytest.raises(ValueError, match="single-row INSERT"):
            bulk.Statement("UPDATE t SET a = ?", ("a",), (None,)).sqlite_runs([(1,), (2,)])


class TestPerDialect:
    def test_builds_once_per_database_and_driver(self) -> None:
        built: list[str] = []

        def build(dialect: Dialect) -> str:
            built.append(dialect.name)
            return dialect.name

        another_sqlite = create_async_engine("sqlite+aiosqlite://").dialect
        for dialect in (_SQLITE, another_sqlite, _PG):
            bulk.per_dialect(build, dialect)
        assert built == ["sqlite", "postgresql"]
        another_pg = create_async_engine("postgresql+asyncpg://").dialect
        assert bulk.per_dialect(build, another_pg) == "postgresql"
        assert built == ["sqlite", "postgresql"]


class TestSqliteSteps:
    """Several statements in one call on aiosqlite's thread, inside the caller's transaction."""

    _STEPS: ClassVar[list[bulk.Step]] = [
        ("CREATE TEMPORARY TABLE t (n INTEGER PRIMARY KEY, word TEXT)", ()),
        ("INSERT INTO t VALUES (?, ?), (?, ?)", (1, "one", 2, "two")),
        ("UPDATE t SET word = word || '!' WHERE n = ?", (2,)),
        ("INSERT INTO t SELECT n + 10, word FROM t", ()),
    ]

    @staticmethod
    async def _rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, hidden: bool) -> list[Any]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'steps.db'}")
        try:
            async with engine.connect() as conn:
                connection = await bulk.driver(conn)
                calls: list[str] = []
                for name in ("execute", "execute_fetchall"):
                    method = getattr(connection, name)

                    async def counted(*args: Any, _method: Any = method, _name: str = name) -> Any:
                        calls.append(_name)
                        return await _method(*args)

                    setattr(connection, name, counted)
                if hidden:  # an aiosqlite without the method that queues a function
                    monkeypatch.setattr(bulk, "_AIOSQLITE_QUEUE", "_no_such_method")
                steps = TestSqliteSteps._STEPS
                try:
                    await bulk.sqlite_steps(connection, steps)
                finally:
                    for name in ("execute", "execute_fetchall"):
                        delattr(connection, name)
                # Only the fallback takes aiosqlite's own calls, one a step.
                assert calls == (["execute_fetchall"] * len(steps) if hidden else [])
                rows = (await conn.exec_driver_sql("SELECT n, word FROM t ORDER BY n")).all()
                return [tuple(row) for row in rows]
        finally:
            await engine.dispose()

    @pytest.mark.parametrize("hidden", [False, True])
    async def test_in_order_within_the_transaction(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hidden: bool
    ) -> None:
        assert await self._rows(tmp_path, monkeypatch, hidden=hidden) == [
            (1, "one"),
            (2, "two!"),
            (11, "one"),
            (12, "two!"),
        ]

    async def test_a_failing_step_raises_and_the_callers_rollback_undoes_the_rest(
        self, tmp_path: Path
    ) -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'steps.db'}")
        try:
            async with engine.begin() as conn:
                await conn.exec_driver_sql("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            twice = [("INSERT INTO t VALUES (?)", (1,)), ("INSERT INTO t VALUES (?)", (2,))] * 2
            with pytest.raises(sqlite3.IntegrityError):
                async with engine.begin() as conn:
                    await bulk.sqlite_steps(await bulk.driver(conn), twice)
            async with engine.connect() as conn:
                assert (await conn.exec_driver_sql("SELECT count(*) FROM t")).scalar() == 0
        finally:
            await engine.dispose()
