"""The upstream sync wired from settings: its HTTP client, its Syncer, and the periodic loop.

The URL and token come from settings alone; the client is built by its owner (the app's
lifespan, or `certcheck sync`), handed in, and closed by that owner.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck import __version__
from certcheck.config import Settings
from certcheck.errors import RegistryBusy, SyncFailed, UpstreamNotConfigured
from certcheck.sync.feed import FeedClient, FeedLimits
from certcheck.sync.runs import SyncLimits
from certcheck.sync.syncer import Syncer

log = logging.getLogger(__name__)


def upstream_client(settings: Settings) -> httpx.AsyncClient:
    """The feed's HTTP client; raises UpstreamNotConfigured without CERTCHECK_UPSTREAM_URL."""
    if not settings.upstream_url:
        raise UpstreamNotConfigured("set CERTCHECK_UPSTREAM_URL to sync from the upstream feed")
    headers = {"Accept": "application/json", "User-Agent": f"certcheck/{__version__}"}
    if settings.upstream_token is not None:
        headers["Authorization"] = f"Bearer {settings.upstream_token.get_secret_value()}"
    return httpx.AsyncClient(
        base_url=settings.upstream_url,
        headers=headers,
        timeout=httpx.Timeout(settings.sync_read_timeout, connect=settings.sync_connect_timeout),
        follow_redirects=False,
    )


def build_syncer(
    settings: Settings,
    engine: AsyncEngine,
    http: httpx.AsyncClient,
    *,
    on_commit: Callable[[], Awaitable[object]] | None = None,
) -> Syncer:
    limits = FeedLimits(
        page_size=settings.sync_page_size,
        page_timeout=settings.sync_page_timeout,
        max_response_bytes=settings.sync_max_response_bytes,
        max_attempts=settings.sync_max_attempts,
        backoff_base=settings.sync_backoff_base,
        backoff_max=settings.sync_backoff_max,
        retry_after_max=settings.sync_retry_after_max,
    )
    return Syncer(
        engine,
        FeedClient(http, limits),
        source=f"upstream:{urlsplit(settings.upstream_url or '').hostname}",
        limits=SyncLimits(
            max_pages=settings.sync_max_pages,
            run_timeout=settings.sync_run_timeout,
            max_bad_share=settings.sync_max_bad_share,
            overlap=timedelta(seconds=settings.sync_overlap),
        ),
        on_commit=on_commit,
    )


async def sync_periodically(
    syncer: Syncer, interval: float, *, jitter: Callable[[], float] = random.random
) -> None:
    """Run for the life of the process: a sync about every `interval` seconds.

    Each wait is 80-100% of `interval`, so the timers of `serve --workers N` and of replicas
    drift apart; a timer skips its turn when any process started a sync within 80% of
    `interval`, so together they sync about as often as one would. The process that ran the
    last sync always runs the next: at most `interval` passes between one's end and the next.
    """
    try:
        await syncer.report_last_success()
    except (SQLAlchemyError, OSError) as exc:
        log.warning("could not read the last successful sync: %s", type(exc).__name__)
    while True:
        await asyncio.sleep(interval * (0.8 + 0.2 * jitter()))
        try:
            if await syncer.started_within(0.8 * interval):
                continue
            await syncer.run()
        except RegistryBusy:
            log.info("periodic sync skipped: another import or sync is running")
        except SyncFailed as exc:
            log.warning("periodic sync %s: %s", exc.code, exc.detail)
        except Exception:
            log.exception("periodic sync failed unexpectedly")
