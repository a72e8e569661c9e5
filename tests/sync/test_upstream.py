"""The sync wired from settings: the HTTP client it gets, and the periodic loop in `serve`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import cast

import pytest

from certcheck.config import Settings
from certcheck.errors import RegistryBusy, SyncFailed, UpstreamNotConfigured
from certcheck.sync.runs import SyncResult
from certcheck.sync.syncer import Syncer
from certcheck.sync.upstream import sync_periodically, upstream_client


class TestUpstreamClient:
    def test_needs_an_upstream_url(self) -> None:
        with pytest.raises(UpstreamNotConfigured) as refused:
            upstream_client(Settings())

        assert (refused.value.status, refused.value.code) == (409, "UPSTREAM_NOT_CONFIGURED")

    async def test_built_from_settings_alone(self) -> None:
        settings = Settings(
            upstream_url="https://feed.test/v2",
            upstream_token="t0ken",
            sync_connect_timeout=3,
            sync_read_timeout=7,
        )

        async with upstream_client(settings) as http:
            assert str(http.base_url) == "https://feed.test/v2/"
            assert http.headers["authorization"] == "Bearer t0ken"
            assert (http.timeout.connect, http.timeout.read) == (3, 7)
            assert http.follow_redirects is False

    async def test_no_token_no_authorization(self) -> None:
        async with upstream_client(Settings(upstream_url="https://feed.test")) as http:
            assert "authorization" not in http.headers


@dataclass
class ScriptedSyncer:
    """Stands in for a Syncer: each run raises or returns the next outcome of its script."""

    script: list[BaseException | None]
    recently: bool = False  # what started_within answers
    runs: list[float] = field(default_factory=list)
    asked: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def report_last_success(self) -> None:
        pass

    async def started_within(self, seconds: float) -> bool:
        self.asked += 1
        if self.recently and self.asked >= 3:
            self.done.set()
        return self.recently

    async def run(self) -> SyncResult:
        self.runs.append(asyncio.get_running_loop().time())
        outcome = self.script[min(len(self.runs), len(self.script)) - 1]
        if len(self.runs) >= len(self.script):
            self.done.set()
        if outcome is not None:
            raise outcome
        return SyncResult(outcome="success")


class TestSyncPeriodically:
    async def test_keeps_going_whatever_a_run_ends_with(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        syncer = ScriptedSyncer(
            [SyncFailed("HTTP 503; gave up"), RegistryBusy("busy"), RuntimeError("bug"), None]
        )

        with caplog.at_level(logging.INFO, "certcheck.sync.upstream"):
            loop = asyncio.create_task(sync_periodically(cast(Syncer, syncer), 0.01))
            await asyncio.wait_for(syncer.done.wait(), 5)
            assert not loop.done()
            loop.cancel()
            with pytest.raises(asyncio.CancelledError):
                await loop

        assert [r.getMessage() for r in caplog.records][:3] == [
            "periodic sync SYNC_FAILED: HTTP 503; gave up",
            "periodic sync skipped: another import or sync is running",
            "periodic sync failed unexpectedly",
        ]

    @pytest.mark.parametrize(("jitter", "share"), [(0.0, 0.8), (1.0, 1.0)])
    async def test_waits_80_to_100_percent_of_the_interval(
        self, jitter: float, share: float
    ) -> None:
        syncer = ScriptedSyncer([None, None, None])
        started = asyncio.get_running_loop().time()

        loop = asyncio.create_task(
            sync_periodically(cast(Syncer, syncer), 0.1, jitter=lambda: jitter)
        )
        await asyncio.wait_for(syncer.done.wait(), 5)
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop

        gaps = [b - a for a, b in zip([started, *syncer.runs], syncer.runs, strict=False)]
        assert all(share * 0.1 <= gap < share * 0.1 + 0.25 for gap in gaps), gaps

    async def test_skips_its_turn_when_another_process_synced_recently(self) -> None:
        syncer = ScriptedSyncer([None], recently=True)

        loop = asyncio.create_task(sync_periodically(cast(Syncer, syncer), 0.01))
        await asyncio.wait_for(syncer.done.wait(), 5)
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop

        assert (syncer.asked >= 3, syncer.runs) == (True, [])
