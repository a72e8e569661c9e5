"""The application factory: wires settings, the database, the registry store and the routers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from certcheck import __version__, collector, startup
from certcheck.api import openapi, problems
from certcheck.api.deps import State
from certcheck.api.limits import BodyCaps, InFlight, RequestLimits
from certcheck.api.ratelimit import KeyRateLimiter
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
from certcheck.api.verify_lane import VerifyLane
from certcheck.checking import Checker
from certcheck.config import AuthMode, Settings
from certcheck.db.deadline import Deadline
from certcheck.evidence.service import evidence
from certcheck.keys import KeyStore
from certcheck.observability import exposition
from certcheck.observability.requests import RequestObserver
from certcheck.observability.shutdown import Lifecycle, drain_on_sigterm
from certcheck.verification.catalogue import load_catalogue

log = logging.getLogger(__name__)


class CertcheckApp(FastAPI):
    """The FastAPI app, with POST /v1/verify's common case answered in front of it."""

    lane: VerifyLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.lane is not None
            and scope["type"] == "http"
            and scope["path"] == "/v1/verify"
            and scope["method"] == "POST"
        ):
            await self.lane(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] == "/v1/verify/batch":
            # Its items and checks live until it is answered: freed then, not walked meanwhile.
            with collector.paused():
                await super().__call__(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, handle_signals: bool = False) -> FastAPI:
    settings = settings or Settings()
    app = CertcheckApp(
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
    in_flight = InFlight(settings.max_in_flight)
    app.add_middleware(
        RequestLimits,
        caps=BodyCaps.from_settings(settings),
        in_flight=in_flight,
        database_budget=settings.db_timeout,
    )
    app.add_middleware(RequestObserver)
    app.lane = VerifyLane(app, functools.partial(FastAPI.__call__, app), in_flight)
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
    engine, realtime = startup.engines(stack, settings)
    deadline = Deadline(settings.db_timeout, abandon=not settings.is_sqlite)
    store = await startup.store(stack, settings, realtime, engine, deadline)
    proof = await stack.enter_async_context(evidence(settings, engine, realtime))
    lifecycle = Lifecycle()
    if handle_signals:
        drain_on_sigterm(lifecycle, settings.shutdown_drain)
    checker = Checker(store, load_catalogue(settings.catalogue_dir))
    workers = startup.job_workers(stack, settings, engine, checker)
    watcher = startup.watch_processor(stack, settings, engine, checker)
    startup.webhook_delivery(stack, settings, engine)
    keys = KeyStore(
        realtime,
        cache_ttl=settings.key_cache_ttl,
        stale_if_error=settings.key_stale_if_error,
        deadline=deadline,
    )
    stack.push_async_callback(keys.close)
    return State(
        settings=settings,
        engine=engine,
        realtime=realtime,
        store=store,
        keys=keys,
        checker=checker,
        lifecycle=lifecycle,
        limiter=KeyRateLimiter(settings.rate_limit),
        lookup_limiter=KeyRateLimiter(settings.lookup_rate_limit),
        jobs=workers,
        syncer=await startup.syncer(
            stack, settings, engine, startup.refresh_and_wake(store, watcher)
        ),
        watch=watcher,
        evidence=proof,
        batch_turn=asyncio.Lock(),
    )
