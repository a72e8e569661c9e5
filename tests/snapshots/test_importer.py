"""import_snapshot on SQLite and PostgreSQL: what an import reports, writes, refuses and leaves."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.db.tables import certificates, changes, registry_runs, registry_state
from certcheck.errors import ImportRefused, RegistryBusy
from certcheck.registry import state
from certcheck.registry.changes import changes_since
from certcheck.snapshots import importer, staging
from certcheck.snapshots.demo import demo_certificates
from certcheck.snapshots.importer import ImportLimits, ImportResult, import_snapshot
from certcheck.snapshots.reader import RowError, SnapshotRow
from certcheck.verification.records import Certificate, Status
from tests.conftest import load, rows_of, today

Feed = list[tuple[str, str | None, str | None, int]]


def demo(count: int) -> list[Certificate]:
    # The same seed: demo(n)[:k] == demo(k), so a longer list adds certificates to a shorter one.
    return list(demo_certificates(count, today=today()))


@pytest.fixture
def old() -> list[Certificate]:
    return demo(200)


def flip(cert: Certificate) -> Certificate:
    new = Status.SUSPENDED if cert.status is Status.VALID else Status.VALID
    return cert._replace(status=new)


async def registry(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    """Every row of the certificates table, every column but the digest."""
    fields = [c for c in certificates.c if c.name != "digest"]
    async with engine.connect() as conn:
        rows = (await conn.execute(select(*fields))).mappings()
        return {row["cert_no"]: dict(row) for row in rows}


def as_rows(certs: Iterable[Certificate]) -> dict[str, dict[str, Any]]:
    """What `registry` must read back for these certificates (no conversion code of ours)."""
    return {
        c.cert_no: {**c._asdict(), "status": c.status.value, "models": list(c.models)}
        for c in certs
    }


async def feed(engine: AsyncEngine) -> Feed:
    c = changes.c
    query = select(c.cert_no, c.old_status, c.new_status, c.generation).order_by(c.id)
    async with engine.connect() as conn:
        return [
            (r.cert_no, r.old_status, r.new_status, r.generation) for r in await conn.execute(query)
        ]


async def generation(engine: AsyncEngine) -> int | None:
    async with engine.connect() as conn:
        return await conn.scalar(select(registry_state.c.generation))


async def last_run(engine: AsyncEngine) -> dict[str, Any]:
    query = select(registry_runs).order_by(registry_runs.c.id.desc()).limit(1)
    async with engine.connect() as conn:
        return dict((await conn.execute(query)).mappings().one())


async def outcomes(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list(
            await conn.scalars(select(registry_runs.c.outcome).order_by(registry_runs.c.id))
        )


async def run_import(
    engine: AsyncEngine, items: Iterable[SnapshotRow | RowError], **limits: Any
) -> ImportResult:
    return await import_snapshot(engine, iter(items), source="test", limits=ImportLimits(**limits))


async def assert_untouched(engine: AsyncEngine, certs: Sequence[Certificate], before: Feed) -> None:
    assert await registry(engine) == as_rows(certs)
    assert await feed(engine) == before
    assert await generation(engine) == 1


class TestImportSnapshot:
    async def test_first_import_adds_everything(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        result = await load(engine, old, force=False)

        assert (result.added, result.changed, result.removed) == (200, 0, 0)
        assert (result.generation, result.certificates, result.rows) == (1, 200, 200)
        assert await registry(engine) == as_rows(old)
        async with engine.connect() as conn:
            row = (await conn.execute(select(registry_state))).mappings().one()
        assert row["generation"] == 1
        assert row["certificates"] == 200
        assert row["source"] == "test"
        assert row["by_status"] == dict(Counter(c.status.value for c in old))
        assert row["refreshed_at"] == row["as_of"]
        assert sorted(await feed(engine)) == sorted((c.cert_no, None, c.status, 1) for c in old)

    async def test_second_import_applies_exactly_the_differences(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        await load(engine, old, force=False)
        moved = [flip(c) for c in old[5:10]]
        renamed = [c._replace(holder=c.holder + " (renamed)") for c in old[10:13]]
        added = demo(207)[200:]
        new = [*old[:5], *moved, *renamed, *old[13:185], *added]  # old[185:] removed: 7.5%

        result = await load(engine, new, force=False)

        assert (result.added, result.changed, result.removed) == (7, 8, 15)
        assert (result.generation, result.certificates, result.rows) == (2, 192, 192)
        assert await registry(engine) == as_rows(new)
        expected = [
            *((c.cert_no, o.status, c.status, 2) for o, c in zip(old[5:10], moved, strict=True)),
            *((c.cert_no, None, c.status, 2) for c in added),
            *((c.cert_no, c.status, None, 2) for c in old[185:]),
        ]
        # Field-only changes (the renamed holders) are feed entries under the same status, for
        # the listing watch; GET /v1/changes (changes_since) lists status changes only.
        edited = [(c.cert_no, c.status, c.status, 2) for c in renamed]
        assert sorted(e for e in await feed(engine) if e[3] == 2) == sorted([*expected, *edited])
        listed = await changes_since(engine, 0, 1000)
        assert len(listed) == len(old) + len(expected)  # the first import's, then these

    async def test_same_snapshot_again_changes_nothing_but_the_generation(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        await load(engine, old, force=False)
        before = await feed(engine)

        result = await load(engine, old, force=False)

        assert (result.added, result.changed, result.removed, result.generation) == (0, 0, 0, 2)
        assert await feed(engine) == before
        assert await registry(engine) == as_rows(old)

    async def test_records_a_successful_run(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        await load(engine, old, force=False)
        await load(engine, [*old[1:], *demo(203)[200:]], force=False)

        run = await last_run(engine)
        assert (run["kind"], run["source"], run["outcome"]) == ("import", "test", "success")
        assert (run["added"], run["changed"], run["removed"], run["rejected_rows"]) == (3, 0, 1, 0)
        assert run["started_at"] <= run["finished_at"]
        assert run["error"] is None

    async def test_generation_continues_from_the_stored_one(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        await load(engine, old, force=False)
        async with engine.begin() as conn:
            await conn.execute(update(registry_state).values(generation=41))

        assert (await load(engine, old[:190], force=False)).generation == 42
        assert {e[3] for e in await feed(engine)} == {1, 42}


class TestRemovalLimit:
    async def test_removing_up_to_the_share_is_accepted(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        await load(engine, old, force=False)

        result = await load(engine, old[20:], force=False)  # exactly 10%

        assert (result.removed, result.certificates) == (20, 180)

    async def test_removing_more_is_refused_and_changes_nothing(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        await load(engine, old, force=False)
        before = await feed(engine)

        with pytest.raises(ImportRefused) as refused:
            await load(engine, [flip(c) for c in old[21:]], force=False)

        assert (refused.value.code, refused.value.status) == ("TOO_MANY_REMOVALS", 409)
        assert "remove 21 of 200" in refused.value.detail
        await assert_untouched(engine, old, before)
        assert await outcomes(engine) == ["success", "refused"]
        assert (await last_run(engine))["error"] == refused.value.detail

    async def test_a_lower_limit_is_honoured(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        await load(engine, old, force=False)

        with pytest.raises(ImportRefused, match="remove 11 of 200"):
            await run_import(engine, rows_of(old[11:]), max_removed_share=0.05)

    async def test_force_accepts_it(self, engine: AsyncEngine, old: list[Certificate]) -> None:
        await load(engine, old, force=False)

        result = await load(engine, old[150:], force=True)

        assert (result.removed, result.generation) == (150, 2)
        assert await registry(engine) == as_rows(old[150:])
        assert len([e for e in await feed(engine) if e[2] is None]) == 150


class TestRowErrors:
    async def test_duplicates_keep_the_first_line_and_report_the_later(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        early = old[150]._replace(holder="Earliest line wins Co.")
        late = old[3]._replace(holder="Later line loses Co.")

        result = await load(engine, [early, *old, late])  # lines 2, 3..202, 203

        assert result.errors == [
            RowError(line=153, message=f"{old[150].cert_no} appears on an earlier line too"),
            RowError(line=203, message=f"{old[3].cert_no} appears on an earlier line too"),
        ]
        assert (result.rejected, result.rows, result.added) == (2, 200, 200)
        rows = await registry(engine)
        assert rows[early.cert_no] == as_rows([early])[early.cert_no]
        assert rows[late.cert_no] == as_rows([old[3]])[late.cert_no]
        assert len(await feed(engine)) == 200

    async def test_a_few_bad_rows_are_reported_and_skipped(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        bad = [RowError(line=300, message="bad status"), RowError(line=301, message="no holder")]

        result = await run_import(engine, [*rows_of(old), *bad])  # 2 of 202: under 1%

        assert (result.rejected, result.errors, result.certificates) == (2, bad, 200)
        assert (await last_run(engine))["rejected_rows"] == 2

    async def test_too_many_bad_rows_are_refused(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        await load(engine, old, force=False)
        before = await feed(engine)
        bad = [RowError(line=n, message="bad status") for n in (7, 8, 9)]

        with pytest.raises(ImportRefused) as refused:
            await run_import(engine, [*bad, *rows_of(map(flip, old))])  # 3 of 203: over 1%

        assert (refused.value.code, refused.value.status) == ("TOO_MANY_BAD_ROWS", 422)
        assert "line 7: bad status" in refused.value.detail
        await assert_untouched(engine, old, before)
        assert await outcomes(engine) == ["success", "refused"]
        assert (await last_run(engine))["rejected_rows"] == 3

    async def test_nothing_but_bad_rows_is_refused(self, engine: AsyncEngine) -> None:
        with pytest.raises(ImportRefused) as refused:
            await run_import(engine, [RowError(line=2, message="bad status")])

        assert refused.value.code == "TOO_MANY_BAD_ROWS"
        assert await generation(engine) is None

    async def test_empty_snapshot_is_refused(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        await load(engine, old, force=False)
        before = await feed(engine)

        with pytest.raises(ImportRefused) as refused:
            await load(engine, [], force=True)

        assert (refused.value.code, refused.value.status) == ("EMPTY_SNAPSHOT", 422)
        await assert_untouched(engine, old, before)


class TestUnreadableRowsKeepTheirCertificate:
    """A row whose number can be read but whose other fields cannot leaves that certificate."""

    async def test_a_bad_status_keeps_the_old_record_and_adds_no_change(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        await load(engine, old, force=False)
        before = await feed(engine)
        target = old[5]
        bad = RowError(line=7, message="status is not a known label", cert_no=target.cert_no)
        after = (SnapshotRow(n + 2, c) for n, c in enumerate(old[6:], 6))
        items: list[SnapshotRow | RowError] = [*rows_of(old[:5]), bad, *after]

        result = await run_import(engine, items)

        assert (result.rejected, result.errors, result.kept) == (1, [bad], 1)
        assert (result.removed, result.changed, result.added) == (0, 0, 0)
        assert await registry(engine) == as_rows(old)
        assert await feed(engine) == before  # no removal, no change-feed entry at all

    async def test_a_readable_row_of_the_same_number_wins(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        await load(engine, old, force=False)
        bad = RowError(line=300, message="holder is required", cert_no=old[0].cert_no)

        result = await run_import(engine, [*rows_of([flip(old[0]), *old[1:]]), bad])

        assert (result.kept, result.changed, result.rejected) == (0, 1, 1)
        assert (await registry(engine))[old[0].cert_no]["status"] == flip(old[0]).status.value

    async def test_an_unknown_number_is_not_added(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        await load(engine, old[:150], force=False)
        bad = RowError(line=300, message="holder is required", cert_no=old[199].cert_no)

        result = await run_import(engine, [*rows_of(old[:150]), bad])

        assert (result.kept, result.added, result.certificates) == (0, 0, 150)


class UploadBroken(Exception):
    pass


def broken_after(count: int, items: Iterable[SnapshotRow]) -> Iterator[SnapshotRow]:
    for n, item in enumerate(items):
        if n == count:
            raise UploadBroken("connection reset by peer")
        yield item


class TestInterruptedImport:
    async def test_failing_input_leaves_the_old_registry(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        await load(engine, old, force=False)
        before = await feed(engine)
        new = [flip(c) for c in demo(7_000)]

        # More rows than one staging batch are written before the input breaks.
        with pytest.raises(UploadBroken):
            await run_import(engine, broken_after(6_000, rows_of(new)), force=True)

        await assert_untouched(engine, old, before)
        assert await outcomes(engine) == ["success", "failed"]
        assert (await last_run(engine))["error"] == "UploadBroken"
        # Nothing staged by the broken import leaks into the next one on the same connection.
        result = await load(engine, old[:190], force=False)
        assert (result.removed, result.added, result.generation) == (10, 0, 2)
        assert await registry(engine) == as_rows(old[:190])


@dataclasses.dataclass
class CommitGate:
    """Holds an import after it has written everything, just before it commits."""

    reached: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    release: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> CommitGate:
    gate = CommitGate()

    async def write_state_then_wait(conn: AsyncConnection, **values: Any) -> None:
        await state.write_state(conn, **values)
        gate.reached.set()
        await gate.release.wait()

    monkeypatch.setattr(importer, "write_state", write_state_then_wait)
    return gate


class TestConcurrentImport:
    async def test_readers_see_the_old_registry_until_commit(
        self, engine: AsyncEngine, old: list[Certificate], gate: CommitGate
    ) -> None:
        gate.release.set()
        await load(engine, old, force=False)
        gate.release.clear()
        new = [*map(flip, old[:100]), *old[100:190], *demo(250)[200:]]

        running = asyncio.create_task(load(engine, new, force=False))
        await asyncio.wait_for(gate.reached.wait(), 10)
        assert await registry(engine) == as_rows(old)
        assert await generation(engine) == 1
        gate.release.set()
        await asyncio.wait_for(running, 10)

        assert await registry(engine) == as_rows(new)
        assert await generation(engine) == 2

    async def test_a_second_import_is_refused_while_one_runs(
        self, engine: AsyncEngine, old: list[Certificate], gate: CommitGate
    ) -> None:
        first = asyncio.create_task(load(engine, old, force=False))
        await asyncio.wait_for(gate.reached.wait(), 10)

        with pytest.raises(RegistryBusy) as busy:
            await load(engine, old[:10])
        assert (busy.value.code, busy.value.status) == ("SYNC_IN_PROGRESS", 409)

        gate.release.set()
        assert (await asyncio.wait_for(first, 10)).generation == 1
        assert await registry(engine) == as_rows(old)
        # The refused attempt is no run of its own: the last run is the one that held the lock.
        assert await outcomes(engine) == ["success"]


class TestChangesSince:
    async def test_pages_through_the_feed_oldest_first(
        self, engine: AsyncEngine, old: list[Certificate]
    ) -> None:
        await load(engine, old[:4], force=False)
        await load(engine, [flip(old[0]), *old[1:3]], force=True)

        first = await changes_since(engine, 0, 5)
        rest = await changes_since(engine, first[-1].id, 5)

        assert [e.id for e in first + rest] == list(range(1, 7))
        entries = [(e.cert_no, e.old_status, e.new_status) for e in first + rest]
        assert entries[4:] == [
            (old[0].cert_no, old[0].status, flip(old[0]).status),
            (old[3].cert_no, old[3].status, None),
        ]
        assert sorted(entries[:4]) == sorted((c.cert_no, None, c.status) for c in old[:4])
        assert first[0].changed_at.tzinfo is UTC
        assert first[0].changed_at < rest[-1].changed_at
        assert await changes_since(engine, rest[-1].id, 5) == []


class TestFirstImport:
    """Into an empty registry the rows go straight into the certificates table, nothing staged;
    what the import reports, writes and refuses is what staging would have given."""

    @staticmethod
    def mixed(old: list[Certificate]) -> list[SnapshotRow | RowError]:
        """Rows to trip every check staging makes: repeats before and after read errors, and
        unreadable rows whose number can and cannot be read."""
        rows: list[SnapshotRow | RowError] = list(rows_of(old[:150]))
        rows += [
            SnapshotRow(152, old[7]._replace(holder="Later line loses Co.")),
            RowError(line=153, message="status is not a known label", cert_no=old[150].cert_no),
            RowError(line=154, message="holder is required"),
            RowError(line=155, message="holder is required", cert_no=old[2].cert_no),
        ]
        rows += [SnapshotRow(n, c) for n, c in enumerate(old[151:], 156)]
        rows.append(SnapshotRow(300, flip(old[160])))
        return rows

    async def test_stages_nothing(self, engine: AsyncEngine, old: list[Certificate]) -> None:
        statements: list[str] = []

        def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", seen)
        try:
            await load(engine, old, force=False)
            first = list(statements)
            await load(engine, old, force=False)  # not a first import: staged
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", seen)

        assert first
        assert not [s for s in first if "import_staging" in s]
        assert [s for s in statements[len(first) :] if "import_staging" in s]
        assert await registry(engine) == as_rows(old)

    # A COPY of 7 rows: on PostgreSQL each slice is a segment of its own, its feed entries
    # written while the next slices are made.
    @pytest.mark.parametrize("copy_rows", [50_000, 7])
    async def test_reports_and_writes_what_staging_would(
        self,
        engine: AsyncEngine,
        old: list[Certificate],
        monkeypatch: pytest.MonkeyPatch,
        copy_rows: int,
    ) -> None:
        monkeypatch.setattr(staging, "_COPY_ROWS", copy_rows)
        straight = await run_import(engine, self.mixed(old), max_error_share=0.05)
        written = (await registry(engine), sorted(await feed(engine)))
        async with engine.begin() as conn:
            for table in (changes, certificates, registry_state):
                await conn.execute(table.delete())

        async def never_empty(_conn: AsyncConnection) -> bool:
            return False

        monkeypatch.setattr(importer, "_registry_is_empty", never_empty)
        staged = await run_import(engine, self.mixed(old), max_error_share=0.05)

        assert straight == staged
        assert (await registry(engine), sorted(await feed(engine))) == written
        assert (straight.rows, straight.rejected, straight.added, straight.kept) == (199, 5, 199, 0)
        assert [e.line for e in straight.errors] == [153, 154, 155, 152, 300]

    async def test_its_feed_entries_carry_the_registrys_refreshed_at(
        self, engine: AsyncEngine, old: list[Certificate], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(staging, "_COPY_ROWS", 7)  # entries written by several statements
        await load(engine, old, force=False)

        entries = await changes_since(engine, 0, len(old) + 1)
        async with engine.connect() as conn:
            refreshed = await conn.scalar(select(registry_state.c.refreshed_at))
        assert len(entries) == len(old)
        assert {e.changed_at for e in entries} == {refreshed}

    async def test_readers_see_an_empty_registry_until_commit(
        self, engine: AsyncEngine, old: list[Certificate], gate: CommitGate
    ) -> None:
        running = asyncio.create_task(load(engine, old, force=False))
        await asyncio.wait_for(gate.reached.wait(), 10)
        assert await registry(engine) == {}
        assert await feed(engine) == []
        assert await generation(engine) is None
        gate.release.set()
        await asyncio.wait_for(running, 10)

        assert await registry(engine) == as_rows(old)
        assert await generation(engine) == 1

    @pytest.mark.parametrize("copy_rows", [50_000, 500])
    async def test_failing_input_leaves_it_empty(
        self, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, copy_rows: int
    ) -> None:
        monkeypatch.setattr(staging, "_COPY_ROWS", copy_rows)
        new = demo(7_000)

        # More rows than one load batch are written before the input breaks.
        with pytest.raises(UploadBroken):
            await run_import(engine, broken_after(6_000, rows_of(new)))

        assert await registry(engine) == {}
        assert await feed(engine) == []
        assert await outcomes(engine) == ["failed"]
        result = await load(engine, new[:300], force=False)
        assert (result.added, result.generation) == (300, 1)
        assert await registry(engine) == as_rows(new[:300])
