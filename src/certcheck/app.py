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
from certcheck.api.ratelimit import KeyRateLimiter
from certcheck.api.routes import health, registry, verify
from certcheck.checking import Checker
from certcheck.config import AuthMode, Settings
from certcheck.db.engine import create_engine
from certcheck.keys import KeyStore
from certcheck.observability import exposition
from certcheck.observability.requests import RequestObserver
from certcheck.observability.shutdown import Lifecycle, drain_on_sigterm
from certcheck.registry.store import RegistryStore
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
        try:
            yield State(
                settings=settings,
                engine=engine,
                store=store,
                keys=KeyStore(engine, cache_ttl=settings.key_cache_ttl),
                checker=Checker(store, load_catalogue(settings.catalogue_dir)),
                lifecycle=lifecycle,
                limiter=KeyRateLimiter(settings.rate_limit),
            )
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await engine.dispose()

    app = FastAPI(
        title="certcheck",
        version=__version__,
        summary="Real-time verification of China Compulsory Certification (3C) certificates.",
        lifespan=lifespan,
    )
    problems.install(app)
    openapi.install(app)
    app.include_router(verify.router)
    app.include_router(registry.router)
    app.include_router(health.router)
    app.include_router(exposition.router)
    app.add_middleware(RequestObserver)
    return app
