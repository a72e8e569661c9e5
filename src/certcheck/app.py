"""The application factory: wires settings, the database, the registry store and the routers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck import __version__
from certcheck.api import openapi, problems
from certcheck.api.deps import State
from certcheck.api.limits import BodyCaps, RequestLimits
from certcheck.api.ratelimit import KeyRateLimiter
from certcheck.api.recheck import RecheckLines
from certcheck.api.routes import (
    checks,
    health,
    jobs,
    lookup,
    registry,
    stats,
    verify,
    watch,
    webhook,
)
from certcheck.checking import Checker
from certcheck.config import AuthMode, Settings
from certcheck.db import migrate
from certcheck.db.deadline import Deadline, settle
from certcheck.db.engine import Deadlines, create_engine
from certcheck.db.outage import is_database_outage
from certcheck.evidence.service import evidence
from certcheck.jobs.worker import JobWorkers, WorkerConfig
from certcheck.keys import KeyStore
from certcheck.observability import exposition
from certcheck.observability.requests import RequestObserver
from certcheck.observability.shutdown import Lifecycle, drain_on_sigterm
from certcheck.registry.store import RegistryStore
from certcheck.sync.syncer import Syncer
from certcheck.sync.upstream import build_syncer, sync_periodically, upstream_client
from certcheck.verification.catalogue import load_catalogue
from certcheck.watch.delivery import DeliveryConfig, WebhookDelivery
from certcheck.watch.processor import WatchConfig, WatchProcessor

log = logging.getLogger(__name__)

_LATE_MIGRATION_RETRY = 1.0  # seconds between tries while the database is away at startup
_BULK_POOL = 4  # connections for bulk work: job workers, one import or sync, job endpoints


def create_app(settings: Settings | None = None, *, handle_signals: bool = False) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="certcheck",
        version=__version__,
        summary="Real-time verification of China Compulsory Certification (3C) certificates.",
        lifespan=_lifespan(settings, handle_signals=handle_signals),
        # Served by openapi.install from the package's own assets, not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    problems.install(app)
    openapi.install(app)
    app.include_router(verify.router)
    app.include_router(registry.router)
    app.include_router(jobs.router)
    app.include_router(watch.router)
    app.include_router(webhook.router)
    app.include_router(checks.router)
    app.include_router(stats.router)
    app.include_router(health.router)
    app.include_router(lookup.router)
    app.include_router(exposition.router)
    app.add_middleware(
        RequestLimits,
        caps=BodyCaps.from_settings(settings),
        max_in_flight=settings.max_in_flight,
        database_budget=settings.db_timeout,
    )
    app.add_middleware(RequestObserver)
    return app


def _lifespan(
    settings: Settings, *, handle_signals: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[State]]:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[State]:
        if settings.auth is AuthMode.DISABLED:
            log.warning("CERTCHECK_AUTH=disabled: every request is trusted. Local trials only.")
        # Each resource is registered as it is made, so a step that fails at startup undoes the
        # ones before it, and shutdown undoes them all in reverse order: sync, upstream client,
        # workers (each gives its chunk back before the engine goes), poller, engine.
        async with contextlib.AsyncExitStack() as stack:
            yield await _start(stack, settings, handle_signals=handle_signals)

    return lifespan


async def _start(
    stack: contextlib.AsyncExitStack, settings: Settings, *, handle_signals: bool
) -> State:
    engine, realtime = _engines(stack, settings)
    deadline = Deadline(settings.db_timeout, abandon=not settings.is_sqlite)
    store = await _store(stack, settings, realtime, engine, deadline)
    proof = await stack.enter_async_context(evidence(settings, engine, realtime))
    lifecycle = Lifecycle()
    if handle_signals:
        drain_on_sigterm(lifecycle, settings.shutdown_drain)
    checker = Checker(store, load_catalogue(settings.catalogue_dir))
    workers = _workers(stack, settings, engine, checker)
    watcher = WatchProcessor(engine, checker, WatchConfig.from_settings(settings))
    stack.push_async_callback(watcher.stop)
    watcher.start()  # none with CERTCHECK_WATCH_PROCESSOR=false
    # On the bulk pool, with an HTTP client of its own: never in a real-time check's way.
    hooks = WebhookDelivery(engine, DeliveryConfig.from_settings(settings))
    stack.push_async_callback(hooks.stop)
    hooks.start()  # none with CERTCHECK_WEBHOOK_DELIVERIES=0
    return State(
        settings=settings,
        engine=engine,
        realtime=realtime,
        store=store,
        keys=KeyStore(
            realtime,
            cache_ttl=settings.key_cache_ttl,
            stale_if_error=settings.key_stale_if_error,
            deadline=deadline,
        ),
        checker=checker,
        lifecycle=lifecycle,
        limiter=KeyRateLimiter(settings.rate_limit),
        lookup_limiter=KeyRateLimiter(settings.lookup_rate_limit),
        jobs=workers,
        syncer=await _syncer(stack, settings, engine, _refresh_and_wake(store, watcher)),
        watch=watcher,
        evidence=proof,
    )


def _engines(
    stack: contextlib.AsyncExitStack, settings: Settings
) -> tuple[AsyncEngine, AsyncEngine]:
    """Two pools: real-time checks (registry and key look-ups) with deadlines as short as the
    answer's own, and everything else (imports, syncs, job workers, job and change-feed
    endpoints) with long ones, so bulk work can never starve a check."""
    engine = create_engine(settings.database_url, pool_size=_BULK_POOL)
    stack.push_async_callback(engine.dispose)
    realtime = create_engine(
        settings.database_url, deadlines=Deadlines.realtime(settings.db_timeout)
    )
    stack.push_async_callback(realtime.dispose)
    stack.push_async_callback(settle, settings.db_timeout)  # runs before the disposes
    return engine, realtime


async def _store(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    realtime: AsyncEngine,
    engine: AsyncEngine,
    deadline: Deadline,
) -> RegistryStore:
    """The store, read once now and polled for new generations until shutdown."""
    store = RegistryStore(
        realtime,
        deadline=deadline,
        cache_size=settings.cache_size,
        cache_ttl=settings.cache_ttl,
        max_age=timedelta(seconds=settings.max_registry_age),
        db_timeout=settings.db_timeout,
    )
    if not await _first_refresh(store):
        _run_until_exit(stack, _migrate_when_reachable(engine, store), "late migration")
    _run_until_exit(stack, store.poll(settings.generation_poll_interval), "registry poll")
    return store


def _workers(
    stack: contextlib.AsyncExitStack, settings: Settings, engine: AsyncEngine, checker: Checker
) -> JobWorkers:
    workers = JobWorkers(engine, checker, RecheckLines(), WorkerConfig.from_settings(settings))
    stack.push_async_callback(workers.stop)
    workers.start()  # none with CERTCHECK_JOB_WORKERS=0
    return workers


async def _syncer(
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
        _run_until_exit(stack, periodic, "periodic sync")
    return syncer


def _refresh_and_wake(
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
            await migrate.upgrade(engine)  # nothing to do when another process did it first
            await store.refresh()
        except Exception as exc:
            if not is_database_outage(exc):
                log.exception("migrations failed after the database came back; retrying")
            continue
        log.info("the database answers: migrations applied, registry read")
        return


def _run_until_exit(
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
