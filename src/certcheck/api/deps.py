"""Dependencies, as Annotated aliases so a handler's signature lists what it needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.api.problems import ProblemException
from certcheck.api.ratelimit import KeyRateLimiter
from certcheck.checking import Checker
from certcheck.config import AuthMode, Settings
from certcheck.errors import UpstreamNotConfigured
from certcheck.evidence.service import Evidence
from certcheck.jobs.worker import JobWorkers
from certcheck.keys import KeyStore, Principal, Scope
from certcheck.observability.shutdown import Lifecycle
from certcheck.registry.store import RegistryStore
from certcheck.sync.syncer import Syncer


def _state(request: Request, name: str) -> object:
    return getattr(request.state, name)


async def get_settings(request: Request) -> Settings:
    return cast(Settings, _state(request, "settings"))


async def get_engine(request: Request) -> AsyncEngine:
    return cast(AsyncEngine, _state(request, "engine"))


async def get_store(request: Request) -> RegistryStore:
    return cast(RegistryStore, _state(request, "store"))


async def get_checker(request: Request) -> Checker:
    return cast(Checker, _state(request, "checker"))


async def get_keys(request: Request) -> KeyStore:
    return cast(KeyStore, _state(request, "keys"))


async def get_lifecycle(request: Request) -> Lifecycle:
    return cast(Lifecycle, _state(request, "lifecycle"))


async def get_limiter(request: Request) -> KeyRateLimiter:
    return cast(KeyRateLimiter, _state(request, "limiter"))


async def get_jobs(request: Request) -> JobWorkers:
    return cast(JobWorkers, _state(request, "jobs"))


async def get_evidence(request: Request) -> Evidence:
    return cast(Evidence, _state(request, "evidence"))


async def get_syncer(request: Request) -> Syncer:
    syncer = cast(Syncer | None, _state(request, "syncer"))
    if syncer is None:
        raise UpstreamNotConfigured("set CERTCHECK_UPSTREAM_URL to sync from the upstream feed")
    return syncer


LimiterDep = Annotated[KeyRateLimiter, Depends(get_limiter)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
StoreDep = Annotated[RegistryStore, Depends(get_store)]
CheckerDep = Annotated[Checker, Depends(get_checker)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
JobsDep = Annotated[JobWorkers, Depends(get_jobs)]
SyncerDep = Annotated[Syncer, Depends(get_syncer)]
EvidenceDep = Annotated[Evidence, Depends(get_evidence)]

_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer cc_...`")
_LOCAL = Principal(key_id="local", platform="local", scopes=frozenset(Scope))
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
PRINCIPAL_SCOPE_KEY = "certcheck.principal"


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    async def authorise(
        request: Request,
        settings: SettingsDep,
        keys: KeysDep,
        limiter: LimiterDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        early = request.scope.get(PRINCIPAL_SCOPE_KEY)
        if isinstance(early, Principal) and scope in early.scopes:
            return early  # this function ran already, before the body was read (strict_json.py)
        if settings.auth is AuthMode.DISABLED:
            return _LOCAL
        if credentials is None:
            raise ProblemException(
                401, "UNAUTHENTICATED", "send an API key as a Bearer token", headers=_CHALLENGE
            )
        # A database outage raises RegistryUnavailable, answered by api/problems.py.
        principal = await keys.authenticate(
            credentials.credentials, stale_if_error=settings.key_stale_if_error
        )
        if principal is None:
            raise ProblemException(
                401, "UNAUTHENTICATED", "unknown or revoked API key", headers=_CHALLENGE
            )
        request.state.platform = principal.platform  # for the request log line
        if scope not in principal.scopes:
            raise ProblemException(403, "FORBIDDEN", f"this key lacks the {scope.value!r} scope")
        wait = limiter.retry_after(principal.key_id)
        if wait is not None:
            raise ProblemException(
                429,
                "RATE_LIMITED",
                f"too many requests for this key; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        return principal

    return authorise


VerifyKey = Annotated[Principal, Depends(require(Scope.VERIFY))]
BatchKey = Annotated[Principal, Depends(require(Scope.BATCH))]
AdminKey = Annotated[Principal, Depends(require(Scope.ADMIN))]
