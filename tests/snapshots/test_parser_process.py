"""A large snapshot parsed in a second process (imports into SQLite): the same records, errors and
failures as parsing in process, and no process left behind however the read ends."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import io
import os
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.tables import certificates, changes
from certcheck.snapshots import parser_process
from certcheck.snapshots.demo import demo_certificates
from certcheck.snapshots.importer import ImportLimits, ImportResult, import_snapshot
from certcheck.snapshots.parser_process import Chunk, parsed_in_child, worth_a_process
from certcheck.snapshots.reader import (
    ReadLimits,
    SnapshotError,
    SnapshotFormat,
    detect_format,
    iter_snapshot,
)
from certcheck.snapshots.writer import write_snapshot
from certcheck.verification.records import Status

TODAY = date(2026, 11, 23)
LIMITS = ReadLimits()


def snapshot(tmp_path: Path, name: str, *, count: int = 300) -> Path:
    """A snapshot file with something wrong on a few of its rows: repeats, unreadable rows with
    and without a readable number, and (CSV) a ragged row and a quoted line break."""
    certs = list(demo_certificates(count, today=TODAY))
    certs[40] = certs[40]._replace(holder="Line one\nline two Co.")
    plain = tmp_path / name.removesuffix(".gz")
    write_snapshot(plain, [*certs, certs[7]])
    text = plain.read_text(encoding="utf-8")
    if plain.suffix == ".csv":
        text += f"{certs[9].cert_no},valid\n"  # ragged: its number is kept
        text += f"{certs[11].cert_no},no-such-status,Holder Co.,,,,,,,,,\n"
        text += "12345,valid,Holder Co.,,,,,,,,,\n"
    else:
        text += '{"cert_no": "' + certs[9].cert_no + '", "status": "unheard of"}\n'
        text += "{not json\n"
        text += '["an", "array"]\n'
    data = text.encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def fmt_of(path: Path) -> SnapshotFormat:
    return detect_format(filename=path.name)


def in_process(path: Path, *, postgres: bool) -> list[Any]:
    with path.open("rb") as stream:
        rows = iter_snapshot(stream, fmt_of(path), today=TODAY, limits=LIMITS)
        return list(rows.records(postgres=postgres))


def child_chunks(stream: BinaryIO, path: Path) -> AsyncGenerator[Chunk, None]:
    return parsed_in_child(stream, fmt_of(path), today=TODAY, limits=LIMITS, postgres=True)


async def take_all(chunks: AsyncGenerator[Chunk, None], taken: list[Chunk]) -> None:
    async for chunk in chunks:
        taken.append(chunk)


async def from_child(path: Path, *, postgres: bool) -> list[Any]:
    taken: list[Any] = []
    with path.open("rb") as stream:
        chunks = parsed_in_child(
            stream, fmt_of(path), today=TODAY, limits=LIMITS, postgres=postgres
        )
        async for chunk in chunks:
            taken += chunk
    return taken


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[asyncio.subprocess.Process]:
    """Every parser process started, to see that each has ended (the real ones, only noted)."""
    started: list[asyncio.subprocess.Process] = []
    spawn = asyncio.create_subprocess_exec

    async def noted(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        child = await spawn(*args, **kwargs)
        started.append(child)
        return child

    monkeypatch.setattr(asyncio, "create_subprocess_exec", noted)
    return started


class TestWorthAProcess:
    def test_a_large_regular_file_is(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        path = tmp_path / "s.csv"
        path.write_bytes(b"x" * 1000)
        monkeypatch.setattr(parser_process, "PROCESS_FROM_BYTES", 1000)
        with path.open("rb") as stream:
            assert worth_a_process(stream)
            stream.seek(1)  # only what is left to read counts
            assert not worth_a_process(stream)

    def test_a_small_file_is_not(self, tmp_path: Path) -> None:
        path = tmp_path / "s.csv"
        path.write_bytes(b"x" * 1000)
        with path.open("rb") as stream:
            assert not worth_a_process(stream)

    def test_what_is_not_a_regular_file_is_not(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(parser_process, "PROCESS_FROM_BYTES", 0)
        assert not worth_a_process(io.BytesIO(b"x" * 1000))
        read, write = os.pipe()
        with os.fdopen(read, "rb") as stream, os.fdopen(write, "wb"):
            assert not worth_a_process(stream)


class TestParsedInChild:
    @pytest.mark.parametrize("name", ["s.csv", "s.csv.gz", "s.jsonl", "s.jsonl.gz"])
    @pytest.mark.parametrize("postgres", [True, False])
    async def test_gives_what_parsing_in_process_gives(
        self, tmp_path: Path, name: str, postgres: bool, children: list[Any]
    ) -> None:
        path = snapshot(tmp_path, name)
        expected = in_process(path, postgres=postgres)

        assert await from_child(path, postgres=postgres) == expected
        assert sum(type(item) is not tuple for item in expected) == 3
        assert [child.returncode for child in children] == [0]

    async def test_sends_the_rows_in_frames(self, tmp_path: Path) -> None:
        path = snapshot(tmp_path, "s.csv", count=2500)
        with path.open("rb") as stream:
            sizes = [len(chunk) async for chunk in child_chunks(stream, path)]
        assert sizes == [1000, 1000, 504]

    @pytest.mark.parametrize(
        "data",
        [
            pytest.param(b"number,state\n1,valid\n", id="header"),
            pytest.param(b"cert_no,status,holder\n" + b"\xff\xfe\n" * 3, id="utf-8"),
        ],
    )
    async def test_an_unusable_file_raises_what_in_process_raises(
        self, tmp_path: Path, data: bytes, children: list[Any]
    ) -> None:
        path = tmp_path / "s.csv"
        path.write_bytes(data)
        with pytest.raises(SnapshotError) as there:
            in_process(path, postgres=True)

        with pytest.raises(SnapshotError) as here:
            await from_child(path, postgres=True)
        assert str(here.value) == str(there.value)
        assert [child.returncode for child in children] == [0]

    async def test_broken_gzip_part_way_raises_after_the_rows_before_it(
        self, tmp_path: Path
    ) -> None:
        whole = snapshot(tmp_path, "s.csv.gz", count=3000).read_bytes()
        path = tmp_path / "cut.csv.gz"
        path.write_bytes(whole[: len(whole) // 2])
        taken: list[Chunk] = []
        with path.open("rb") as stream, pytest.raises(SnapshotError, match="broken gzip"):
            await take_all(child_chunks(stream, path), taken)
        assert taken

    @pytest.fixture
    async def midway(
        self, tmp_path: Path, children: list[Any]
    ) -> AsyncIterator[AsyncGenerator[Chunk, None]]:
        """A child's frames of a file of 20,000 rows, the first one taken."""
        path = snapshot(tmp_path, "s.csv", count=20_000)
        with path.open("rb") as stream:
            chunks = child_chunks(stream, path)
            assert len(await anext(chunks)) == 1000
            yield chunks
            await chunks.aclose()

    async def test_closing_early_ends_the_child(
        self, midway: AsyncGenerator[Chunk, None], children: list[asyncio.subprocess.Process]
    ) -> None:
        await midway.aclose()

        (child,) = children
        assert child.returncode is not None
        with pytest.raises(ProcessLookupError):
            os.kill(child.pid, 0)

    async def test_a_child_that_dies_fails_the_read(
        self, midway: AsyncGenerator[Chunk, None], children: list[asyncio.subprocess.Process]
    ) -> None:
        children[0].kill()
        with pytest.raises(RuntimeError, match=r"parser process stopped \(exit status -9\)"):
            await take_all(midway, [])


async def imported(engine: AsyncEngine, path: Path) -> ImportResult:
    with path.open("rb") as stream:
        rows = iter_snapshot(stream, fmt_of(path), today=TODAY)
        return await import_snapshot(
            engine, rows, source="test", limits=ImportLimits(max_error_share=0.05)
        )


async def contents(engine: AsyncEngine) -> tuple[list[Any], list[Any]]:
    c = changes.c
    async with engine.connect() as conn:
        registry = (await conn.execute(select(certificates).order_by(certificates.c.cert_no))).all()
        feed = (
            await conn.execute(
                select(c.cert_no, c.old_status, c.new_status, c.generation).order_by(
                    c.generation, c.cert_no
                )
            )
        ).all()
    return list(registry), list(feed)


class TestImportThroughChild:
    """On SQLite the importer takes a large file's records from the child: the same result,
    registry and feed as parsing in process, on a first import (straight into the registry) and
    a later one (staged and diffed)."""

    @pytest.mark.parametrize("name", ["s.csv.gz", "s.jsonl"])
    async def test_imports_what_parsing_in_process_imports(
        self,
        engine: AsyncEngine,
        tmp_path: Path,
        name: str,
        monkeypatch: pytest.MonkeyPatch,
        children: list[Any],
    ) -> None:
        first = snapshot(tmp_path, name)
        later_dir = tmp_path / "later"
        later_dir.mkdir()
        later = snapshot(later_dir, name, count=310)

        runs = []
        for threshold in (1 << 62, 0):  # in process, then through the child
            monkeypatch.setattr(parser_process, "PROCESS_FROM_BYTES", threshold)
            results = [await imported(engine, first), await imported(engine, later)]
            runs.append((results, await contents(engine)))
            async with engine.begin() as conn:
                for table in (changes, certificates):
                    await conn.execute(table.delete())

        (here, here_tables), (there, there_tables) = runs
        # PostgreSQL inserts in its own process: its imports parse in process, whatever the size.
        postgres = engine.dialect.name == "postgresql"
        assert len(children) == (0 if postgres else 2)
        assert [r.rows for r in here] == [300, 310]
        assert [r.rejected for r in here] == [4, 4]
        assert [dataclasses.replace(r, generation=0) for r in there] == [
            dataclasses.replace(r, generation=0) for r in here
        ]
        assert there_tables[0] == here_tables[0]
        assert [f[:3] for f in there_tables[1]] == [f[:3] for f in here_tables[1]]
        assert {row.status for row in here_tables[0]} >= {Status.VALID.value}
