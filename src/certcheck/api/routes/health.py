"""Probes for the orchestrator: alive, and ready to give decisions."""

from __future__ import annotations

from fastapi import APIRouter, Response

from certcheck.api.deps import LifecycleDep, StoreDep
from certcheck.api.schemas import Health, Readiness
from certcheck.errors import CertcheckError

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> Health:
    """200 while the process can answer."""
    return Health(status="ok")


@router.get("/readyz", responses={503: {"model": Readiness, "description": "not ready, and why"}})
async def readyz(store: StoreDep, lifecycle: LifecycleDep, response: Response) -> Readiness:
    """200 only when the database answers and a fresh registry is loaded."""
    checks = {"database": "ok", "registry": "ok"}
    if lifecycle.draining:
        checks["process"] = "shutting down"
    try:
        await store.refresh()
    except Exception as exc:
        checks["database"] = f"unreachable ({type(exc).__name__})"
    try:
        store.ensure_usable()
    except CertcheckError as exc:
        checks["registry"] = f"{exc.code}: {exc.detail}"
    if all(v == "ok" for v in checks.values()):
        return Readiness(status="ready", checks=checks)
    response.status_code = 503
    return Readiness(status="not_ready", checks=checks)
