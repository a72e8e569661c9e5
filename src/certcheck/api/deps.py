"""Dependencies, as Annotated aliases over the lifespan's typed state (`State`, made by app.py):
a handler's signature lists what it needs, and every part of the state is read one way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypedDict, TypeVar, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection

from certcheck.api.ratelimit import KeyRateLimiter
from certcheck.checking import Checker
from certcheck.config import AuthMode, Settings
from certcheck.errors import Forbidden, RateLimited, Unauthenticated, UpstreamNotConfigured
from certcheck.evidence.service import Evidence
from certcheck.jobs.worker import JobWorkers
from certcheck.keys import KeyStore, Principal, Scope
from certcheck.observability.shutdown import Lifecycle
from certcheck.registry.store import RegistryStore
from certcheck.sync.syncer import Syncer
from certcheck.watch.processor import WatchProcessor

_T = TypeVar("_T")


class State(TypedDict):
    """What the lifespan yields; Starlette gives each request a shallow copy of it."""

    settings: Settings
    engine: AsyncEngine  # bulk work: imports, syncs, job workers, job and change-feed endpoints
    realtime: AsyncEngine  # registry and key look-ups, with deadlines as short as the answer's
    store: RegistryStore
    keys: KeyStore
    checker: Checker
    lifecycle: Lifecycle
    limiter: KeyRateLimiter
    lookup_limiter: KeyRateLimiter  # the public /lookup pages, per client address
    jobs: JobWorkers
    syncer: Syncer | None  # None without CERTCHECK_UPSTREAM_URL
    watch: WatchProcessor
    evidence: Evidence  # check records (flushed on the way out) and receipts
    batch_turn: asyncio.Lock  # held while a batch is decided: one at a time (routes/verify.py)


def lifespan_state(connection: HTTPConnection) -> State:
    return cast(State, connection.scope["state"])


def _part(read: Callable[[State], _T]) -> Callable[[Request], Awaitable[_T]]:
    # Async on purpose: FastAPI runs a plain `def` dependency in a worker thread.
    async def dependency(request: Request) -> _T:
        return read(lifespan_state(request))

    return dependency


get_settings = _part(lambda state: state["settings"])
get_engine = _part(lambda state: state["engine"])
get_store = _part(lambda state: state["store"])
get_checker = _part(lambda state: state["checker"])
get_keys = _part(lambda state: state["keys"])
get_lifecycle = _part(lambda state: state["lifecycle"])
get_limiter = _part(lambda state: state["limiter"])
get_lookup_limiter = _part(lambda state: state["lookup_limiter"])
get_jobs = _part(lambda state: state["jobs"])
get_evidence = _part(lambda state: state["evidence"])
get_batch_turn = _part(lambda state: state["batch_turn"])


def _configured(syncer: Syncer | None) -> Syncer:
    if syncer is None:
        raise UpstreamNotConfigured("set CERTCHECK_UPSTREAM_URL to sync from the upstream feed")
    return syncer


get_syncer = _part(lambda state: _configured(state["syncer"]))

SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
StoreDep = Annotated[RegistryStore, Depends(get_store)]
CheckerDep = Annotated[Checker, Depends(get_checker)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
LimiterDep = Annotated[KeyRateLimiter, Depends(get_limiter)]
LookupLimiterDep = Annotated[KeyRateLimiter, Depends(get_lookup_limiter)]
JobsDep = Annotated[JobWorkers, Depends(get_jobs)]
EvidenceDep = Annotated[Evidence, Depends(get_evidence)]
BatchTurnDep = Annotated[asyncio.Lock, Depends(get_batch_turn)]
SyncerDep = Annotated[Syncer, Depends(get_syncer)]

_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer cc_...`")
_LOCAL = Principal(key_id="local", platform="local", scopes=frozenset(Scope))
PRINCIPAL_SCOPE_KEY = "certcheck.principal"


def require(scope: Scope, *alternatives: Scope) -> Callable[..., Awaitable[Principal]]:
    """A key with `scope` (or any of the `alternatives`), within its rate limit."""
    accepted = frozenset((scope, *alternatives))

    async def authorise(
        request: Request,
        settings: SettingsDep,
        keys: KeysDep,
        limiter: LimiterDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        early = request.scope.get(PRINCIPAL_SCOPE_KEY)
        if isinstance(early, Principal) and accepted & early.scopes:
            return early  # this function ran already, before the body was read (strict_json.py)
        if settings.auth is AuthMode.DISABLED:
            return _LOCAL
        if credentials is None:
            raise Unauthenticated("send an API key as a Bearer token")
        # A database outage raises RegistryUnavailable, answered by api/problems.py.
        principal = await keys.authenticate(credentials.credentials)
        if principal is None:
            raise Unauthenticated("unknown or revoked API key")
        request.state.platform = principal.platform  # for the request log line
        if not accepted & principal.scopes:
            wanted = " or ".join(repr(s.value) for s in sorted(accepted))
            raise Forbidden(f"this key lacks the {wanted} scope")
        wait = limiter.retry_after(principal.key_id)
        if wait is not None:
            raise RateLimited(
                f"too many requests for this key; retry in {wait} s", retry_after=wait
            )
        return principal

    return authorise


VerifyKey = Annotated[Principal, Depends(require(Scope.VERIFY))]
BatchKey = Annotated[Principal, Depends(require(Scope.BATCH))]
AdminKey = Annotated[Principal, Depends(require(Scope.ADMIN))]
# Evidence figures: a verify key sees its own platform's, an admin key every platform's.
ReaderKey = Annotated[Principal, Depends(require(Scope.VERIFY, Scope.ADMIN))]
