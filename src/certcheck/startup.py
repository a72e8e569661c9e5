"""The lifespan's steps: each makes one resource and registers its undoing on the exit stack,
so a step that fails at startup undoes the ones before it and shutdown undoes them all."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.api.recheck import RecheckLines
from certcheck.checking import Checker
from certcheck.config import Settings
from certcheck.db import revision
from certcheck.db.deadline import Deadline, settle
from certcheck.db.direct import DirectConnections
from certcheck.db.engine import Deadlines, create_engine
from certcheck.db.outage import is_database_outage
from certcheck.jobs.worker import JobWorkers, WorkerConfig
from certcheck.registry.store import RegistryStore
from certcheck.sync.syncer import Syncer
from certcheck.sync.upstream import build_syncer, sync_periodically, upstream_client
from certcheck.watch.delivery import DeliveryConfig, WebhookDelivery
from certcheck.watch.processor import WatchConfig, WatchProcessor

log = logging.getLogger(__name__)

_LATE_MIGRATION_RETRY = 1.0  # seconds between tries while the database is away at startup
_BULK_POOL = 4  # connections for bulk work: job workers, one import or sync, job endpoints
# Connections for real-time work, each opened when first needed: certificate look-ups (held
# directly, db/direct.py: single checks use two at a time, a batch one more), and the rest
# (keys, check records and receipts, the registry poll).
_LOOKUP_CONNECTIONS = 8
_REALTIME_POOL = 4


def engines(
    stack: contextlib.AsyncExitStack, settings: Settings
) -> tuple[AsyncEngine, AsyncEngine]:
    """Two pools: real-time checks (registry and key look-ups) with deadlines as short as the
    answer's own, and everything else (imports, syncs, job workers, job and change-feed
    endpoints) with long ones, so bulk work can never starve a check."""
    engine = create_engine(settings.database_url, pool_size=_BULK_POOL)
    stack.push_async_callback(engine.dispose)
    # Every real-time use is a single statement (a look-up, or the one-row insert of a first
    # signing key), so none needs a transaction around it.
    realtime = create_engine(
        settings.database_url,
        pool_size=_REALTIME_POOL,
        deadlines=Deadlines.realtime(settings.db_timeout),
        single_statements=True,
    )
    stack.push_async_callback(realtime.dispose)
    stack.push_async_callback(settle, settings.db_timeout)  # runs before the disposes
    return engine, realtime


async def store(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    realtime: AsyncEngine,
    engine: AsyncEngine,
    deadline: Deadline,
) -> RegistryStore:
    """The store, read once now and polled for new generations until shutdown."""
    direct = None
    if realtime.dialect.name == "postgresql":
        deadlines = Deadlines.realtime(settings.db_timeout)
        direct = DirectConnections(realtime.url, size=_LOOKUP_CONNECTIONS, deadlines=deadlines)
        stack.push_async_callback(direct.close)
    store = RegistryStore(
        realtime,
        deadline=deadline,
        direct=direct,
        cache_size=settings.cache_size,
        cache_ttl=settings.cache_ttl,
        max_age=timedelta(seconds=settings.max_registry_age),
        db_timeout=settings.db_timeout,
    )
    if not await _first_refresh(store):
        run_until_exit(stack, _migrate_when_reachable(engine, store), "late migration")
    run_until_exit(stack, store.poll(settings.generation_poll_interval), "registry poll")
    return store


def job_workers(
    stack: contextlib.AsyncExitStack, settings: Settings, engine: AsyncEngine, checker: Checker
) -> JobWorkers:
    workers = JobWorkers(engine, checker, RecheckLines(), WorkerConfig.from_settings(settings))
    stack.push_async_callback(workers.stop)
    workers.start()  # none with CERTCHECK_JOB_WORKERS=0
    return workers


def watch_processor(
    stack: contextlib.AsyncExitStack, settings: Settings, engine: AsyncEngine, checker: Checker
) -> WatchProcessor:
    watcher = WatchProcessor(engine, checker, WatchConfig.from_settings(settings))
    stack.push_async_callback(watcher.stop)
    watcher.start()  # none with CERTCHECK_WATCH_PROCESSOR=false
    return watcher


def webhook_delivery(
    stack: contextlib.AsyncExitStack, settings: Settings, engine: AsyncEngine
) -> WebhookDelivery:
    # On the bulk pool, with an HTTP client of its own: never in a real-time check's way.
    hooks = WebhookDelivery(engine, DeliveryConfig.from_settings(settings))
    stack.push_async_callback(hooks.stop)
    hooks.start()  # none with CERTCHECK_WEBHOOK_DELIVERIES=0
    return hooks


async def syncer(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    engine: AsyncEngine,
    on_commit: Callable[[], Awaitable[None]],
) -> Syncer | None:
    """None without CERTCHECK_UPSTREAM_URL; with CERTCHECK_SYNC_INTERVAL, it also runs alone."""
    if not settings.upstream_url:
        return None
    upstream = await stack.enter_async_context(upstream_client(settings))
    syncer = build_syncer(settings, engine, upstream, on_commit=on_commit)
    if settings.sync_interval:
        # Cancelled first at shutdown: a run cut short records itself as interrupted.
        periodic = sync_periodically(syncer, settings.sync_interval)
        run_until_exit(stack, periodic, "periodic sync")
    return syncer


def refresh_and_wake(
    store: RegistryStore, watcher: WatchProcessor
) -> Callable[[], Awaitable[None]]:
    """After a sync page commits: answer from the new registry, and decide watched listings."""

    async def on_commit() -> None:
        await store.refresh()
        watcher.wake()

    return on_commit


async def _first_refresh(store: RegistryStore) -> bool:
    """Start answering as soon as the database allows; False when it could not be reached."""
    try:
        await store.refresh()
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        log.warning("the registry could not be read at startup: %s", type(exc).__name__)
        return not is_database_outage(exc)
    except Exception:
        log.exception("the registry could not be read at startup")
    return True


async def _migrate_when_reachable(engine: AsyncEngine, store: RegistryStore) -> None:
    """`serve` started while the database was away: apply the migrations once it answers."""
    while True:
        await asyncio.sleep(_LATE_MIGRATION_RETRY)
        try:
            await revision.upgrade_if_pending(engine)  # another process may have done it
            await store.refresh()
        except Exception as exc:
            if not is_database_outage(exc):
                log.exception("migrations failed after the database came back; retrying")
            continue
        log.info("the database answers: migrations applied, registry read")
        return


def run_until_exit(
    stack: contextlib.AsyncExitStack, work: Coroutine[Any, Any, None], what: str
) -> None:
    """Run `work` as a task that the stack cancels (and waits for) on its way out."""
    task = asyncio.create_task(work, name=what)

    async def cancel() -> None:
        task.cancel()
        (outcome,) = await asyncio.gather(task, return_exceptions=True)
        if isinstance(outcome, Exception):
            log.error("%s had failed", what, exc_info=outcome)

    stack.push_async_callback(cancel)
