"""Operational failures: exceptions that carry the HTTP status and problem code they answer with.

Outcomes about certificates (missing, revoked, malformed) are Decisions, never exceptions.
Everything here is mapped to an RFC 9457 problem document in one place (api/problems.py):

    CertcheckError
    ├── RegistryUnavailable   503 REGISTRY_UNAVAILABLE  no registry, or database unreachable
    ├── RegistryStale         503 REGISTRY_STALE        registry older than the maximum age
    ├── RegistryBusy          409 SYNC_IN_PROGRESS      another import or sync holds the lock
    ├── ImportRefused         409/422                   a snapshot that would do harm
    ├── InvalidSnapshot       415/422                   a snapshot that cannot be read
    ├── ImportAborted         503 IMPORT_TIMEOUT/_CANCELLED  an import stopped and rolled back
    ├── JobNotFound           404 JOB_NOT_FOUND         no such re-check job for this platform
    ├── JobNotFinished        409 JOB_NOT_FINISHED      results asked for before the job is done
    ├── UploadRefused         413/415/422               a re-check upload over a cap or unreadable
    ├── IdempotencyKeyReused  422 IDEMPOTENCY_KEY_REUSED  one key, two different uploads
    ├── TooManyJobs           429 TOO_MANY_JOBS         the platform's cap on unfinished jobs
    ├── SyncFailed            502 SYNC_FAILED/_REFUSED  the upstream feed failed or sent harm
    ├── UpstreamNotConfigured 409 UPSTREAM_NOT_CONFIGURED  no CERTCHECK_UPSTREAM_URL to sync from
    ├── CheckNotFound         404 NOT_FOUND             no such check record for this platform
    └── MalformedCheckId      422 MALFORMED             a check id that is not a ULID
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


class ImportAborted(CertcheckError):
    """An upload's import ran past its deadline or lost its client: rolled back, lock released."""

    status = 503
    code = "IMPORT_TIMEOUT"
    title = "The import was stopped; the registry is unchanged"


class JobNotFound(CertcheckError):
    status = 404
    code = "JOB_NOT_FOUND"
    title = "No such re-check job"


class JobNotFinished(CertcheckError):
    status = 409
    code = "JOB_NOT_FINISHED"
    title = "The re-check job has not finished"
    retry_after: int | None = 5


class UploadRefused(CertcheckError):
    status = 422
    code = "INVALID_UPLOAD"
    title = "The upload was refused"


class IdempotencyKeyReused(CertcheckError):
    status = 422
    code = "IDEMPOTENCY_KEY_REUSED"
    title = "The Idempotency-Key was used for another upload"


class TooManyJobs(CertcheckError):
    status = 429
    code = "TOO_MANY_JOBS"
    title = "Too many unfinished re-check jobs"
    retry_after = 60


class SyncFailed(CertcheckError):
    """A sync run ended early; pages applied before the failure stay, the cursor after them."""

    status = 502
    code = "SYNC_FAILED"
    title = "The upstream sync failed"

    def __init__(self, detail: str, *, refused: bool = False) -> None:
        super().__init__(detail, code="SYNC_REFUSED" if refused else None)
        self.refused = refused


class UpstreamNotConfigured(CertcheckError):
    status = 409
    code = "UPSTREAM_NOT_CONFIGURED"
    title = "No upstream feed is configured"


class CheckNotFound(CertcheckError):
    """Unknown, past retention, or another platform's: the three answer alike."""

    status = 404
    code = "NOT_FOUND"
    title = "No such check"


class MalformedCheckId(CertcheckError):
    status = 422
    code = "MALFORMED"
    title = "Not a check id"
