"""Operational failures: exceptions that carry the HTTP status and problem code they answer with.

Outcomes about certificates (missing, revoked, malformed) are Decisions, never exceptions.
Everything here is mapped to an RFC 9457 problem document in one place (api/problems.py):

    CertcheckError
    ├── RegistryUnavailable   503 REGISTRY_UNAVAILABLE  no registry, or database unreachable
    ├── RegistryStale         503 REGISTRY_STALE        registry older than the maximum age
    ├── RegistryBusy          409 SYNC_IN_PROGRESS      another import or sync holds the lock
    ├── ImportRefused         409/422                   a snapshot that would do harm
    └── InvalidSnapshot       415/422                   a snapshot that cannot be read
"""

from __future__ import annotations


class CertcheckError(Exception):
    status: int = 500
    code: str = "INTERNAL"
    title: str = "Internal error"
    retry_after: int | None = None

    def __init__(self, detail: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class RegistryUnavailable(CertcheckError):
    status = 503
    code = "REGISTRY_UNAVAILABLE"
    title = "The registry cannot be consulted"
    retry_after = 30


class RegistryStale(CertcheckError):
    status = 503
    code = "REGISTRY_STALE"
    title = "The registry is older than the maximum age"
    retry_after = 60


class RegistryBusy(CertcheckError):
    status = 409
    code = "SYNC_IN_PROGRESS"
    title = "Another import or sync is running"


class ImportRefused(CertcheckError):
    status = 409
    code = "IMPORT_REFUSED"
    title = "The snapshot was refused"


class InvalidSnapshot(CertcheckError):
    status = 422
    code = "INVALID_SNAPSHOT"
    title = "The snapshot cannot be read"
