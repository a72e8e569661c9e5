"""Syncer on SQLite and PostgreSQL against the fake upstream in process (httpx.ASGITransport).

Faults of the connection itself (refused, trickling, truncated) are in tests/e2e/test_sync.py,
against a real server process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.tables import registry_runs, sync_state
from certcheck.errors import RegistryBusy, SyncFailed
from certcheck.registry.changes import changes_since
from certcheck.registry.lock import registry_writer
from certcheck.registry.store import RegistryStore
from certcheck.sync.fake_upstream import FakeUpstream, parse_fault
from certcheck.sync.feed import FeedClient, FeedLimits, rfc3339
from certcheck.sync.runs import SyncLimits
from certcheck.sync.syncer import Syncer
from certcheck.verification.records import Certificate, Status
from tests.conftest import load
from tests.factories import cert
from tests.feeds import assert_registry, cursor, entries, items_of, runs, stamp, state

OLD = [cert(f"2024010901{n:06d}") for n in range(6)]


def revoked(c: Certificate) -> Certificate:
    return c._replace(status=Status.REVOKED, status_reason="failed sampling")


@dataclasses.dataclass
class Upstream:
    """The fake upstream in process, recording the query of every request."""

    app: FakeUpstream
    queries: list[dict[str, str]] = dataclasses.field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        query = parse_qs(scope["query_string"].decode())
        self.queries.append({k: v[-1] for k, v in query.items()})
        await self.app(scope, receive, send)


def upstream(items: list[dict[str, Any]], *faults: str) -> Upstream:
    return Upstream(FakeUpstream(items, [parse_fault(f) for f in faults]))


def syncer(
    engine: AsyncEngine,
    fake: Upstream,
    *,
    on_commit: Callable[[], Awaitable[object]] | None = None,
    **limits: Any,
) -> Syncer:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="http://up.test")
    feed = FeedLimits(page_size=2, max_attempts=2, backoff_base=0.001, retry_after_max=0.001)
    client = FeedClient(http, feed)
    run_limits = SyncLimits(**{"overlap": timedelta(seconds=10), **limits})
    return Syncer(engine, client, source="upstream:test", limits=run_limits, on_commit=on_commit)


async def failing(sync: Syncer, code: str = "SYNC_FAILED") -> SyncFailed:
    with pytest.raises(SyncFailed) as failed:
        await sync.run()
    assert failed.value.code == code
    return failed.value


class TestSyncRun:
    async def test_a_first_sync_fills_an_empty_registry(self, engine: AsyncEngine) -> None:
        fake = upstream(items_of(OLD[:5]))

        result = await syncer(engine, fake).run()

        assert (result.outcome, result.pages, result.totals.added) == ("success", 3, 5)
        await assert_registry(engine, OLD[:5])
        assert await entries(engine) == [(c.cert_no, None, "valid") for c in OLD[:5]]
        assert await cursor(engine) == result.cursor == stamp(4)
        assert (await state(engine))["generation"] == result.generation == 3
        assert "updated_since" not in fake.queries[0]
        assert [q.get("page_token") for q in fake.queries] == [None, "o2", "o4"]

    async def test_changes_apply_on_top_of_an_import(self, engine: AsyncEngine) -> None:
        await load(engine, OLD)
        renamed = OLD[2]._replace(holder="Renamed Co.")
        new = cert("2024010901999999")
        changed = [revoked(OLD[0]), revoked(OLD[1]), renamed, new]

        result = await syncer(engine, upstream(items_of(changed))).run()

        assert (result.totals.added, result.totals.changed) == (1, 3)
        await assert_registry(engine, [*changed[:3], *OLD[3:], new])
        assert (await entries(engine))[len(OLD) :] == [
            (OLD[0].cert_no, "valid", "revoked"),
            (OLD[1].cert_no, "valid", "revoked"),
            (OLD[2].cert_no, "valid", "valid"),  # for the listing watch, not GET /v1/changes
            (new.cert_no, None, "valid"),
        ]
        listed = await changes_since(engine, 0, 1000)
        assert OLD[2].cert_no not in {e.cert_no for e in listed[len(OLD) :]}
        assert len(listed) == len(OLD) + 3
        stored = await state(engine)
        assert (stored["generation"], stored["source"]) == (3, "upstream:test")

    async def test_a_second_run_asks_from_the_cursor_and_changes_nothing(
        self, engine: AsyncEngine
    ) -> None:
        await syncer(engine, upstream(items_of(OLD[:3]))).run()
        before = (await entries(engine), await state(engine))
        fake = upstream(items_of(OLD[:3]))

        result = await syncer(engine, fake).run()

        assert fake.queries[0]["updated_since"] == rfc3339(stamp(2) - timedelta(seconds=10))
        assert (result.totals.added, result.totals.changed, result.pages) == (0, 0, 1)
        after = await state(engine)
        assert await entries(engine) == before[0]
        assert after["generation"] == before[1]["generation"]
        assert after["refreshed_at"] > before[1]["refreshed_at"]  # still proves freshness

    async def test_after_an_import_the_next_sync_reads_the_whole_feed(
        self, engine: AsyncEngine
    ) -> None:
        items = items_of([revoked(OLD[0]), *OLD[1:3]])
        await syncer(engine, upstream(items)).run()
        await load(engine, OLD[:3])  # a snapshot from before the revocation
        assert await cursor(engine) is None
        fake = upstream(items)

        await syncer(engine, fake).run()

        assert "updated_since" not in fake.queries[0]
        await assert_registry(engine, [revoked(OLD[0]), *OLD[1:3]])

    async def test_the_newest_of_one_number_wins(self, engine: AsyncEngine) -> None:
        items = [*items_of([OLD[0]]), *items_of([revoked(OLD[0])], first=1)]

        await syncer(engine, upstream(items)).run()

        await assert_registry(engine, [revoked(OLD[0])])
        assert await entries(engine) == [(OLD[0].cert_no, None, "revoked")]

    async def test_the_store_answers_from_each_commit_at_once(self, engine: AsyncEngine) -> None:
        store = RegistryStore(
            engine, cache_size=10, cache_ttl=60, max_age=timedelta(1), db_timeout=2
        )
        await load(engine, OLD)
        await store.refresh()
        assert (await store.lookup([OLD[0].cert_no]))[OLD[0].cert_no] == OLD[0]

        await syncer(engine, upstream(items_of([revoked(OLD[0])])), on_commit=store.refresh).run()

        assert (await store.lookup([OLD[0].cert_no]))[OLD[0].cert_no] == revoked(OLD[0])


class TestBadItems:
    async def test_a_few_are_skipped_and_reported(self, engine: AsyncEngine) -> None:
        await load(engine, OLD)
        fake = upstream(items_of([revoked(c) for c in OLD]), "bad-status:1@page2")

        result = await syncer(engine, fake, max_bad_share=0.5).run()

        await assert_registry(
            engine, [revoked(OLD[0]), revoked(OLD[1]), OLD[2], *map(revoked, OLD[3:])]
        )
        assert result.totals.rejected == 1
        assert result.errors == [
            "page 2 item 1: status 'no-such-status' is not a known label "
            "(valid, suspended, revoked, cancelled, expired or a Chinese equivalent)"
        ]
        assert (await runs(engine))[-1]["rejected_rows"] == 1
        assert await cursor(engine) == stamp(5)

    async def test_too_many_refuse_the_page_and_keep_the_ones_before(
        self, engine: AsyncEngine
    ) -> None:
        await load(engine, OLD)
        fake = upstream(items_of([revoked(c) for c in OLD]), "bad-status@page2")

        failed = await failing(syncer(engine, fake), "SYNC_REFUSED")

        assert "page 2: 2 of 2 items are unreadable, over the limit of 1%" in failed.detail
        await assert_registry(engine, [revoked(OLD[0]), revoked(OLD[1]), *OLD[2:]])
        assert await cursor(engine) == stamp(1)
        assert (await runs(engine))[-1]["outcome"] == "refused"


class TestFeedFaults:
    @pytest.mark.parametrize(
        ("fault", "reason"),
        [
            ("loop@page2", "page 2: the next page token was already used: the feed loops"),
            ("as-of-back@page2", "page 2: as_of went backwards"),
            ("invalid-json@page2", "the page is not valid JSON"),
            ("503@page2", "HTTP 503; gave up after 2 attempts"),
        ],
    )
    async def test_the_run_stops_after_the_pages_it_applied(
        self, engine: AsyncEngine, fault: str, reason: str
    ) -> None:
        await load(engine, OLD)

        failed = await failing(syncer(engine, upstream(items_of(map(revoked, OLD)), fault)))

        assert reason in failed.detail
        await assert_registry(engine, [revoked(OLD[0]), revoked(OLD[1]), *OLD[2:]])
        assert await cursor(engine) == stamp(1)
        run = (await runs(engine))[-1]
        assert (run["kind"], run["outcome"], run["changed"]) == ("sync", "failed", 2)
        assert reason in run["error"]

    async def test_as_of_older_than_the_last_run_applies_nothing(self, engine: AsyncEngine) -> None:
        await syncer(engine, upstream(items_of(OLD[:2]))).run()
        async with engine.begin() as conn:  # as if the last run had seen a later as_of
            stored = (await state(engine))["as_of"]
            await conn.execute(update(sync_state).values(as_of=stored + timedelta(hours=1)))

        failed = await failing(syncer(engine, upstream(items_of(map(revoked, OLD[:2])))))

        assert "page 1: as_of went backwards" in failed.detail
        await assert_registry(engine, OLD[:2])
        assert await cursor(engine) == stamp(1)

    async def test_more_pages_than_the_cap_fail_and_the_next_run_goes_on(
        self, engine: AsyncEngine
    ) -> None:
        await load(engine, OLD)
        items = items_of(map(revoked, OLD))

        failed = await failing(syncer(engine, upstream(items), max_pages=2))

        assert "more than 2 pages" in failed.detail
        await assert_registry(engine, [*map(revoked, OLD[:4]), *OLD[4:]])
        assert await cursor(engine) == stamp(3)
        await syncer(engine, upstream(items), max_pages=2).run()
        await assert_registry(engine, list(map(revoked, OLD)))

    async def test_items_out_of_order_put_the_cursor_back(self, engine: AsyncEngine) -> None:
        await load(engine, OLD)
        await syncer(engine, upstream(items_of(OLD[:1]))).run()
        items = items_of(map(revoked, OLD[:4]), first=10)
        shuffled = [items[2], items[3], items[0], items[1]]

        failed = await failing(syncer(engine, upstream(shuffled)))

        assert "not in updated_at order" in failed.detail
        await assert_registry(engine, [*OLD[:2], *map(revoked, OLD[2:4]), *OLD[4:]])
        assert await cursor(engine) == stamp(0)

    async def test_an_interrupted_run_resumes_and_loses_nothing(self, engine: AsyncEngine) -> None:
        await load(engine, OLD)
        items = items_of(map(revoked, OLD))
        await failing(syncer(engine, upstream(items, "503@page2")))
        fake = upstream(items)

        await syncer(engine, fake).run()

        assert fake.queries[0]["updated_since"] < items[1]["updated_at"]
        await assert_registry(engine, list(map(revoked, OLD)))
        assert (await entries(engine))[len(OLD) :] == [(c.cert_no, "valid", "revoked") for c in OLD]


class TestRuns:
    async def test_a_run_shows_as_running_until_it_ends(self, engine: AsyncEngine) -> None:
        seen: list[str] = []

        async def look() -> None:
            seen.append((await runs(engine))[-1]["outcome"])

        await syncer(engine, upstream(items_of(OLD[:3])), on_commit=look).run()

        assert seen == ["running", "running"]
        assert [(r["outcome"], r["added"]) for r in await runs(engine)] == [("success", 3)]

    async def test_a_run_left_running_by_a_dead_process_is_closed(
        self, engine: AsyncEngine
    ) -> None:
        await failing(syncer(engine, upstream(items_of(OLD), "503@page2")))
        async with engine.begin() as conn:
            await conn.execute(update(registry_runs).values(outcome="running", finished_at=None))

        await syncer(engine, upstream(items_of(OLD))).run()

        assert [r["outcome"] for r in await runs(engine)] == ["interrupted", "success"]

    async def test_knows_when_any_process_last_started_one(self, engine: AsyncEngine) -> None:
        sync = syncer(engine, upstream(items_of(OLD[:1])))
        assert not await sync.started_within(3600)

        await sync.run()

        assert await sync.started_within(3600)
        assert not await sync.started_within(0)

    async def test_runs_are_counted_in_metrics(self, engine: AsyncEngine) -> None:
        def runs_counted(outcome: str) -> float:
            labels = {"kind": "sync", "outcome": outcome}
            return REGISTRY.get_sample_value("certcheck_registry_runs_total", labels) or 0.0

        before = runs_counted("success"), runs_counted("refused")

        await syncer(engine, upstream(items_of(OLD[:1]))).run()
        await failing(syncer(engine, upstream(items_of(OLD), "bad-status")), "SYNC_REFUSED")

        assert (runs_counted("success"), runs_counted("refused")) == (before[0] + 1, before[1] + 1)
        last = REGISTRY.get_sample_value("certcheck_sync_last_success_timestamp_seconds")
        assert last is not None
        assert time.time() - last < 60

    async def test_a_restarted_process_reports_the_last_success_from_the_runs(
        self, engine: AsyncEngine
    ) -> None:
        await syncer(engine, upstream(items_of(OLD[:1]))).run()
        async with engine.begin() as conn:
            await conn.execute(
                update(registry_runs).values(finished_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
            )
        await failing(syncer(engine, upstream(items_of(OLD), "bad-status")), "SYNC_REFUSED")

        await syncer(engine, upstream([])).report_last_success()

        last = REGISTRY.get_sample_value("certcheck_sync_last_success_timestamp_seconds")
        assert last == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()


class TestOneWriterAtATime:
    async def test_a_sync_while_another_writer_holds_the_lock(self, engine: AsyncEngine) -> None:
        async with registry_writer(engine):
            with pytest.raises(RegistryBusy) as busy:
                await syncer(engine, upstream(items_of(OLD))).run()

        assert (busy.value.status, busy.value.code) == (409, "SYNC_IN_PROGRESS")
        assert await runs(engine) == []
        await syncer(engine, upstream(items_of(OLD))).run()  # released afterwards

    async def test_an_import_while_a_sync_runs(self, engine: AsyncEngine) -> None:
        outcomes: list[str] = []

        async def import_meanwhile() -> None:
            try:
                await load(engine, OLD)
            except RegistryBusy as exc:
                outcomes.append(exc.code)

        await syncer(engine, upstream(items_of(OLD[:2])), on_commit=import_meanwhile).run()

        assert outcomes == ["SYNC_IN_PROGRESS"]
        await assert_registry(engine, OLD[:2])

    async def test_two_syncs_at_once(self, engine: AsyncEngine) -> None:
        started = asyncio.Event()
        release = asyncio.Event()

        async def hold() -> None:
            started.set()
            await release.wait()

        first = asyncio.create_task(
            syncer(engine, upstream(items_of(OLD[:1])), on_commit=hold).run()
        )
        await asyncio.wait_for(started.wait(), 10)
        with pytest.raises(RegistryBusy):
            await syncer(engine, upstream(items_of(OLD))).run()
        release.set()

        assert (await asyncio.wait_for(first, 10)).outcome == "success"
        await assert_registry(engine, OLD[:1])
