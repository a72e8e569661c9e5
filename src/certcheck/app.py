"""The application factory: wires settings, the database, the registry store and the routers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TypedDict

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck import __version__
from certcheck.api import openapi, problems
from certcheck.api.limits import BodyCaps, RequestLimits
from certcheck.api.ratelimit import KeyRateLimiter
from certcheck.api.recheck import RecheckLines
from certcheck.api.routes import health, jobs, registry, verify
from certcheck.checking import Checker
from certcheck.config import AuthMode, Settings
from certcheck.db.engine import create_engine
from certcheck.jobs.worker import JobWorkers, WorkerConfig
from certcheck.keys import KeyStore
from certcheck.observability import exposition
from certcheck.observability.requests import RequestObserver
from certcheck.observability.shutdown import Lifecycle, drain_on_sigterm
from certcheck.registry.store import RegistryStore
from certcheck.registry.sync import Syncer
from certcheck.registry.upstream import build_syncer, sync_periodically, upstream_client
from certcheck.verification.catalogue import load_catalogue

log = logging.getLogger(__name__)


class State(TypedDict):
    settings: Settings
    engine: AsyncEngine
    store: RegistryStore
    keys: KeyStore
    checker: Checker
    lifecycle: Lifecycle
    limiter: KeyRateLimiter
    jobs: JobWorkers
    syncer: Syncer | None  # None without CERTCHECK_UPSTREAM_URL


def create_app(settings: Settings | None = None, *, handle_signals: bool = False) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[State]:
        if settings.auth is AuthMode.DISABLED:
            log.warning("CERTCHECK_AUTH=disabled: every request is trusted. Local trials only.")
        engine = create_engine(settings.database_url)
        store = RegistryStore(
            engine,
            cache_size=settings.cache_size,
            cache_ttl=settings.cache_ttl,
            max_age=timedelta(seconds=settings.max_registry_age),
            db_timeout=settings.db_timeout,
        )
        with contextlib.suppress(Exception):
            await store.refresh()  # the poll below retries; start answering as soon as it can
        poller = asyncio.create_task(store.poll(settings.generation_poll_interval))
        lifecycle = Lifecycle()
        if handle_signals:
            drain_on_sigterm(lifecycle, settings.shutdown_drain)
        checker = Checker(store, load_catalogue(settings.catalogue_dir))
        workers = JobWorkers(engine, checker, RecheckLines(), WorkerConfig.from_settings(settings))
        workers.start()  # none with CERTCHECK_JOB_WORKERS=0
        upstream = upstream_client(settings) if settings.upstream_url else None
        syncer = None
        if upstream is not None:
            syncer = build_syncer(settings, engine, upstream, on_commit=store.refresh)
        syncing = _periodic_sync(syncer, settings.sync_interval)
        try:
            yield State(
                settings=settings,
                engine=engine,
                store=store,
                keys=KeyStore(engine, cache_ttl=settings.key_cache_ttl),
                checker=checker,
                lifecycle=lifecycle,
                limiter=KeyRateLimiter(settings.rate_limit),
                jobs=workers,
                syncer=syncer,
            )
        finally:
            if syncing is not None:
                syncing.cancel()  # a run cut short records itself as interrupted
                with contextlib.suppress(asyncio.CancelledError):
                    await syncing
            if upstream is not None:
                await upstream.aclose()
            await workers.stop()  # each gives its chunk back before the engine goes
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await engine.dispose()

    app = FastAPI(
        title="certcheck",
        version=__version__,
        summary="Real-time verification of China Compulsory Certification (3C) certificates.",
        lifespan=lifespan,
        # Served by openapi.install from the package's own assets, not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    problems.install(app)
    openapi.install(app)
    app.include_router(verify.router)
    app.include_router(registry.router)
    app.include_router(jobs.router)
    app.include_router(health.router)
    app.include_router(exposition.router)
    app.add_middleware(
        RequestLimits, caps=BodyCaps.from_settings(settings), max_in_flight=settings.max_in_flight
    )
    app.add_middleware(RequestObserver)
    return app


def _periodic_sync(syncer: Syncer | None, interval: int) -> asyncio.Task[None] | None:
    if syncer is None or not interval:
        return None
    return asyncio.create_task(sync_periodically(syncer, interval))
