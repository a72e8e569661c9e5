"""Probes for the orchestrator: alive, and ready to give decisions."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from sqlalchemy.exc import SQLAlchemyError

from certcheck.api.deps import JobsDep, LifecycleDep, StoreDep
from certcheck.api.schemas import Health, Readiness
from certcheck.errors import CertcheckError

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> Health:
    """200 while the process can answer."""
    return Health(status="ok")


@router.get("/readyz", responses={503: {"model": Readiness, "description": "not ready, and why"}})
async def readyz(
    store: StoreDep, lifecycle: LifecycleDep, jobs: JobsDep, response: Response
) -> Readiness:
    """200 only when the database answers, a fresh registry is loaded and the job workers run."""
    checks = {"database": "ok", "registry": "ok"}
    if lifecycle.draining:
        checks["process"] = "shutting down"
    try:
        await store.refresh()
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        checks["database"] = f"unreachable ({type(exc).__name__})"
    except Exception as exc:
        # Not an outage but a bug (say, a state row this code cannot read): not ready, and said.
        log.exception("readiness: the registry state could not be read")
        checks["database"] = f"unreadable ({type(exc).__name__})"
    try:
        store.ensure_usable()
    except CertcheckError as exc:
        checks["registry"] = f"{exc.code}: {exc.detail}"
    workers_down = jobs.not_running()
    if workers_down is not None:  # only then: a process without job workers has nothing to say
        checks["jobs"] = workers_down
    if all(v == "ok" for v in checks.values()):
        return Readiness(status="ready", checks=checks)
    response.status_code = 503
    return Readiness(status="not_ready", checks=checks)
