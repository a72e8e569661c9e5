"""End to end: the sync against `certcheck fake-upstream` as a real server on loopback.

Each fault leaves the registry exactly as the pages applied before it made it, and the cursor
right after them. The sync runs in the test's process, wired from settings as in `serve`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.config import Settings
from certcheck.db.engine import create_engine
from certcheck.errors import SyncFailed
from certcheck.keys import Scope
from certcheck.sync.runs import SyncResult
from certcheck.sync.upstream import build_syncer, upstream_client
from certcheck.verification.records import Certificate, Status
from tests.conftest import load, make_key
from tests.e2e.servers import cli, free_port, running_server
from tests.e2e.upstream import Fakes, running_fake
from tests.factories import cert
from tests.feeds import assert_registry, cursor, entries, items_of, runs, stamp

pytestmark = pytest.mark.e2e

OLD = [cert(f"2024010901{n:06d}") for n in range(6)]
FAST = {
    "sync_page_size": 2,
    "sync_max_attempts": 2,
    "sync_backoff_base": 0.01,
    "sync_retry_after_max": 0.01,
    "sync_connect_timeout": 1.0,
    "sync_read_timeout": 2.0,
    "sync_page_timeout": 0.5,
}


def revoked(c: Certificate) -> Certificate:
    return c._replace(status=Status.REVOKED)


REVOKED = items_of(map(revoked, OLD))


async def sync_from(url: str, database_url: str, **settings: Any) -> SyncResult:
    config = Settings(database_url=database_url, upstream_url=url, **{**FAST, **settings})
    engine = create_engine(database_url)
    try:
        async with upstream_client(config) as http:
            return await build_syncer(config, engine, http).run()
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fakes]:
    fakes = Fakes(tmp_path_factory.mktemp("upstream"), REVOKED)
    yield fakes
    fakes.close()


class TestFaults:
    async def test_connection_refused(self, engine: AsyncEngine, database_url: str) -> None:
        await load(engine, OLD)

        with pytest.raises(SyncFailed) as failed:
            await sync_from(f"http://127.0.0.1:{free_port()}", database_url)

        assert "ConnectError" in failed.value.detail
        assert "gave up after 2 attempts" in failed.value.detail
        await assert_registry(engine, OLD)
        assert await cursor(engine) is None
        assert [(r["kind"], r["outcome"]) for r in await runs(engine)][-1] == ("sync", "failed")

    async def test_503_then_success(
        self, engine: AsyncEngine, database_url: str, tmp_path: Path
    ) -> None:
        await load(engine, OLD)

        with running_fake(tmp_path, REVOKED, "503@1") as fake:
            result = await sync_from(fake.base, database_url)
            # Read while it runs: it logs requests from its log thread, up to 50 ms later.
            served = fake.requests(at_least=4)

        assert (result.outcome, result.pages, result.totals.changed) == ("success", 3, 6)
        assert [page for page, _ in served] == [1, 1, 2, 3]
        await assert_registry(engine, list(map(revoked, OLD)))
        assert await cursor(engine) == stamp(5)
        assert len(await entries(engine)) == len(OLD) * 2  # the import's, then one each

    async def test_429_waits_as_long_as_retry_after_says(
        self, engine: AsyncEngine, database_url: str, tmp_path: Path
    ) -> None:
        await load(engine, OLD)

        with running_fake(tmp_path, REVOKED, "429:1@1") as fake:
            started = time.monotonic()
            await sync_from(fake.base, database_url, sync_retry_after_max=60)
            waited = time.monotonic() - started
            first = fake.requests(at_least=1)[0]

        # The backoff alone would have been 0.01 s, the cap on Retry-After 60 s.
        assert 1 <= waited < 30
        assert first == (1, "429")
        await assert_registry(engine, list(map(revoked, OLD)))

    @pytest.mark.parametrize(
        ("fault", "code", "reason", "page_2_requests"),
        [
            ("trickle:0.05@page2", "SYNC_FAILED", "no complete answer within 0.5 s", 2),
            ("truncate@page2", "SYNC_FAILED", "RemoteProtocolError", 2),
            ("invalid-json@page2", "SYNC_FAILED", "the page is not valid JSON", 1),
            ("bad-status@page2", "SYNC_REFUSED", "2 of 2 items are unreadable", 1),
            ("loop@page2", "SYNC_FAILED", "the feed loops", 1),
            ("as-of-back@page2", "SYNC_FAILED", "as_of went backwards", 1),
        ],
    )
    async def test_a_bad_second_page_keeps_the_first(
        self,
        engine: AsyncEngine,
        database_url: str,
        fakes: Fakes,
        fault: str,
        code: str,
        reason: str,
        page_2_requests: int,
    ) -> None:
        await load(engine, OLD)
        fake = fakes.get(fault)  # shared by both databases' runs: its log grows by one run
        served = len(fake.requests())

        started = time.monotonic()
        with pytest.raises(SyncFailed) as failed:
            await sync_from(fake.base, database_url)
        took = time.monotonic() - started

        assert (failed.value.code, reason in failed.value.detail) == (code, True)
        assert took < 20  # a trickled page takes over 20 s: the page timeout (0.5 s) cut it
        expected = [1] + [2] * page_2_requests
        logged = fake.requests(at_least=served + len(expected))
        assert [page for page, _ in logged[served:]] == expected
        await assert_registry(engine, [*map(revoked, OLD[:2]), *OLD[2:]])
        assert await cursor(engine) == stamp(1)
        assert (await entries(engine))[len(OLD) :] == [
            (c.cert_no, "valid", "revoked") for c in OLD[:2]
        ]

    async def test_a_snapshot_missing_most_of_the_registry_removes_nothing(
        self, engine: AsyncEngine, database_url: str, tmp_path: Path
    ) -> None:
        await load(engine, OLD)

        with running_fake(tmp_path, items_of([revoked(OLD[0])])) as fake:
            result = await sync_from(fake.base, database_url)

        assert (result.totals.added, result.totals.changed) == (0, 1)
        await assert_registry(engine, [revoked(OLD[0]), *OLD[1:]])
        assert (await entries(engine))[len(OLD) :] == [(OLD[0].cert_no, "valid", "revoked")]
        assert await cursor(engine) == stamp(0)


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CERTCHECK_DATABASE_URL": database_url, "HOME": str(tmp_path)}


class TestCommands:
    async def test_certcheck_sync(
        self, engine: AsyncEngine, env: dict[str, str], tmp_path: Path
    ) -> None:
        await load(engine, OLD)
        unset = cli(env, "sync")
        assert unset.returncode == 1
        assert unset.stderr.startswith("certcheck: UPSTREAM_NOT_CONFIGURED: set CERTCHECK_UPSTREAM")

        with running_fake(tmp_path, REVOKED[:3]) as fake:
            synced = cli({**env, "CERTCHECK_UPSTREAM_URL": fake.base}, "sync")
        failed = cli(
            {**env, "CERTCHECK_UPSTREAM_URL": fake.base, "CERTCHECK_SYNC_MAX_ATTEMPTS": "1"}, "sync"
        )

        assert synced.returncode == 0, synced.stderr
        assert synced.stdout.startswith("1 pages: added 0, changed 3; 0 items rejected; cursor ")
        assert failed.returncode == 1
        assert failed.stderr.startswith("certcheck: SYNC_FAILED: ConnectError")
        assert len(failed.stderr.strip().splitlines()) == 1
        await assert_registry(engine, [*map(revoked, OLD[:3]), *OLD[3:]])

    async def test_serve_syncs_every_interval(
        self, engine: AsyncEngine, env: dict[str, str], tmp_path: Path
    ) -> None:
        await load(engine, OLD)
        headers = {"Authorization": f"Bearer {await make_key(engine, Scope.VERIFY)}"}

        with running_fake(tmp_path, REVOKED[:1]) as fake:
            upstream = {"CERTCHECK_UPSTREAM_URL": fake.base, "CERTCHECK_SYNC_INTERVAL": "1"}
            with running_server({**env, **upstream}, tmp_path) as server:
                started = time.monotonic()
                reason = await _reason_within(server.base, OLD[0].cert_no, headers, seconds=60)
                took = time.monotonic() - started

        # Nothing but the periodic sync changes the registry here. Its timing (interval, then
        # the poll) is for the unit tests; a loaded machine may add seconds.
        assert reason == "REVOKED", f"not revoked within {took:.1f} s"
        assert (await runs(engine))[-1]["kind"] == "sync"

    async def test_serve_syncs_on_request_and_answers_from_it_at_once(
        self, engine: AsyncEngine, env: dict[str, str], tmp_path: Path
    ) -> None:
        await load(engine, OLD)
        headers = {"Authorization": f"Bearer {await make_key(engine, *Scope)}"}
        verify = {"cert_no": OLD[0].cert_no}

        with running_fake(tmp_path, REVOKED[:1]) as fake:
            upstream = {"CERTCHECK_UPSTREAM_URL": fake.base}
            with running_server({**env, **upstream}, tmp_path) as server:
                async with httpx.AsyncClient(base_url=server.base, headers=headers) as client:
                    before = await _verify_when_ready(client, verify)
                    synced = await client.post("/v1/admin/registry/sync")
                    after = (await client.post("/v1/verify", json=verify)).json()

        assert before["reason"] == "VALID"  # now in the server's cache
        assert synced.status_code == 200, synced.text
        assert {k: synced.json()[k] for k in ("outcome", "pages", "added", "changed")} == {
            "outcome": "success",
            "pages": 1,
            "added": 0,
            "changed": 1,
        }
        assert after["reason"] == "REVOKED"


async def _verify_when_ready(client: httpx.AsyncClient, body: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60  # the server polls the registry state about once a second
    while time.monotonic() < deadline:
        response = await client.post("/v1/verify", json=body)
        if response.status_code == 200:
            answer: dict[str, Any] = response.json()
            return answer
        await asyncio.sleep(0.1)
    raise AssertionError(f"the server never answered: {response.text}")


async def _reason_within(
    base: str, cert_no: str, headers: dict[str, str], *, seconds: float
) -> str | None:
    deadline = time.monotonic() + seconds
    reason: str | None = None
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        while time.monotonic() < deadline and reason != "REVOKED":
            response = await client.post("/v1/verify", json={"cert_no": cert_no})
            reason = str(response.json().get("reason"))
            await asyncio.sleep(0.1)
    return reason
