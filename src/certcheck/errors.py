"""Failures, and requests refused: exceptions that carry the HTTP status and problem code they
answer with. Each is mapped to an RFC 9457 problem document in one place (api/problems.py).

Outcomes of a verification (a number missing, revoked, malformed) are Decisions, never exceptions.
A new error is one class here and one line in this tree (and in docs/api.md's error table):

    CertcheckError
    ├── RegistryUnavailable   503 REGISTRY_UNAVAILABLE  no registry, or database unreachable
    ├── RegistryStale         503 REGISTRY_STALE        registry older than the maximum age
    ├── RegistryBusy          409 SYNC_IN_PROGRESS      another import or sync holds the lock
    ├── ImportRefused         409/422                   a snapshot that would do harm
    ├── InvalidSnapshot       415/422                   a snapshot that cannot be read
    ├── ImportAborted         503 IMPORT_TIMEOUT/_CANCELLED  an import stopped and rolled back
    ├── JobNotFound           404 JOB_NOT_FOUND         no such re-check job for this platform
    ├── JobNotFinished        409 JOB_NOT_FINISHED      results asked for before the job is done
    │   └── JobFailed         409 JOB_FAILED            results asked for of a job that failed
    ├── UploadRefused         413/415/422               a re-check upload over a cap or unreadable
    ├── IdempotencyKeyReused  422 IDEMPOTENCY_KEY_REUSED  one key, two different uploads
    ├── TooManyJobs           429 TOO_MANY_JOBS         the platform's cap on unfinished jobs
    ├── SyncFailed            502 SYNC_FAILED/_REFUSED  the upstream feed failed or sent harm
    ├── UpstreamNotConfigured 409 UPSTREAM_NOT_CONFIGURED  no CERTCHECK_UPSTREAM_URL to sync from
    ├── Overloaded            503 OVERLOADED            too many requests in progress here
    ├── Unauthenticated       401 UNAUTHENTICATED       no API key, or an unknown or revoked one
    ├── Forbidden             403 FORBIDDEN             the key lacks the endpoint's scope
    ├── RateLimited           429 RATE_LIMITED          over CERTCHECK_RATE_LIMIT for this key
    ├── UnsupportedMediaType  415 UNSUPPORTED_MEDIA_TYPE  a body the endpoint does not take
    ├── PayloadTooLarge       413 PAYLOAD_TOO_LARGE     a request body over its cap
    ├── TooManyItems          413 TOO_MANY_ITEMS        a batch over CERTCHECK_BATCH_MAX_ITEMS
    ├── InvalidJson           422 INVALID_JSON          a body that is not strict JSON
    ├── UnstorableText        422 VALIDATION_FAILED     a string in a body holding a NUL character
    ├── InvalidCursor         422 INVALID_CURSOR        a cursor never given out (feed, watch)
    ├── MalformedNumber       422 MALFORMED             a number looked up that cannot be one
    ├── CertificateNotFound   404 NOT_FOUND             a number looked up, not in the registry
    ├── ListingNotWatched     404 LISTING_NOT_WATCHED   no such watched listing for this platform
    ├── WebhookNotFound       404 WEBHOOK_NOT_FOUND     no webhook registered for this platform
    ├── WebhookUrlRefused     422 WEBHOOK_URL_REFUSED   not https, or not to a public address
    ├── CheckNotFound         404 NOT_FOUND             no such check record for this platform
    ├── MalformedCheckId      422 MALFORMED             a check id that is not a ULID
    ├── InvalidDate           422 INVALID_DATE          a statistics day that is not YYYY-MM-DD
    └── InvalidDateRange      422 INVALID_DATE_RANGE    statistics `from` after `to`, or > 400 days
"""

from __future__ import annotations


class CertcheckError(Exception):
    """A subclass declares its answer in its class line, its title in its body."""

    status: int = 500
    code: str = "INTERNAL"
    title: str | None = None  # None: the code in words ("INVALID_JSON": "Invalid json")
    retry_after: int | None = None  # seconds, sent as Retry-After
    errors: list[dict[str, object]] | None = None  # sent as the problem's `errors`

    def __init_subclass__(
        cls, *, status: int = 0, code: str = "", retry_after: int | None = None
    ) -> None:
        super().__init_subclass__()
        cls.status = status or cls.status
        cls.code = code or cls.code
        cls.retry_after = retry_after or cls.retry_after

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.code
        self.status = status or self.status
        self.retry_after = retry_after or self.retry_after

    def headers(self) -> dict[str, str]:
        """What the answer sends besides the problem document."""
        return {"Retry-After": str(self.retry_after)} if self.retry_after else {}


class RegistryUnavailable(CertcheckError, status=503, code="REGISTRY_UNAVAILABLE", retry_after=30):
    title = "The registry cannot be consulted"


class RegistryStale(CertcheckError, status=503, code="REGISTRY_STALE", retry_after=60):
    title = "The registry is older than the maximum age"


class RegistryBusy(CertcheckError, status=409, code="SYNC_IN_PROGRESS"):
    title = "Another import or sync is running"


class ImportRefused(CertcheckError, status=409, code="IMPORT_REFUSED"):
    title = "The snapshot was refused"


class InvalidSnapshot(CertcheckError, status=422, code="INVALID_SNAPSHOT"):
    title = "The snapshot cannot be read"


class ImportAborted(CertcheckError, status=503, code="IMPORT_TIMEOUT"):
    """An upload's import ran past its deadline or lost its client: rolled back, lock released."""

    title = "The import was stopped; the registry is unchanged"


class JobNotFound(CertcheckError, status=404, code="JOB_NOT_FOUND"):
    title = "No such re-check job"


class JobNotFinished(CertcheckError, status=409, code="JOB_NOT_FINISHED", retry_after=5):
    title = "The re-check job has not finished"


class JobFailed(CertcheckError, status=409, code="JOB_FAILED"):
    """No Retry-After: asking again will not help."""

    title = JobNotFinished.title  # the title this answer has always had


class UploadRefused(CertcheckError, status=422, code="INVALID_UPLOAD"):
    title = "The upload was refused"


class IdempotencyKeyReused(CertcheckError, status=422, code="IDEMPOTENCY_KEY_REUSED"):
    title = "The Idempotency-Key was used for another upload"


class TooManyJobs(CertcheckError, status=429, code="TOO_MANY_JOBS", retry_after=60):
    title = "Too many unfinished re-check jobs"


class SyncFailed(CertcheckError, status=502, code="SYNC_FAILED"):
    """A sync run ended early; pages applied before the failure stay, the cursor after them."""

    title = "The upstream sync failed"

    def __init__(self, detail: str, *, refused: bool = False) -> None:
        super().__init__(detail, code="SYNC_REFUSED" if refused else None)
        self.refused = refused


class UpstreamNotConfigured(CertcheckError, status=409, code="UPSTREAM_NOT_CONFIGURED"):
    title = "No upstream feed is configured"


# Requests refused before any work is done; their titles are their codes in words.


class Overloaded(CertcheckError, status=503, code="OVERLOADED", retry_after=1):
    """This process has CERTCHECK_MAX_IN_FLIGHT requests in progress already."""


class Unauthenticated(CertcheckError, status=401, code="UNAUTHENTICATED"):
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}  # RFC 9110 section 11.6.1: a 401 names its scheme


class Forbidden(CertcheckError, status=403, code="FORBIDDEN"):
    """The key is known but lacks the endpoint's scope."""


class RateLimited(CertcheckError, status=429, code="RATE_LIMITED"):
    """Over CERTCHECK_RATE_LIMIT for this key; `retry_after` says when the next one fits."""


class UnsupportedMediaType(CertcheckError, status=415, code="UNSUPPORTED_MEDIA_TYPE"):
    """A request body of a media type, charset or encoding the endpoint does not take."""


class PayloadTooLarge(CertcheckError, status=413, code="PAYLOAD_TOO_LARGE"):
    def headers(self) -> dict[str, str]:
        return {"Connection": "close"}  # the rest of the body is never read


class TooManyItems(CertcheckError, status=413, code="TOO_MANY_ITEMS"):
    """A batch with more items than CERTCHECK_BATCH_MAX_ITEMS."""


class InvalidJson(CertcheckError, status=422, code="INVALID_JSON"):
    """Not I-JSON (RFC 7493): not UTF-8, not JSON, a duplicate name, NaN, a lone surrogate."""


class UnstorableText(CertcheckError, status=422, code="VALIDATION_FAILED"):
    """Strict JSON may spell a NUL character (\\u0000), but no text column of PostgreSQL can
    hold one: a check asked with it could be answered and never recorded. Refused as a field
    that does not fit, with the same `errors` a validation failure gives."""

    title = "Invalid request"

    @classmethod
    def at(cls, loc: list[str | int]) -> UnstorableText:
        msg = "String should not hold a NUL character (\\u0000), which cannot be stored"
        where = ".".join(str(part) for part in loc[1:]) or "body"
        error = cls(f"{where}: {msg}")
        error.errors = [{"loc": loc, "msg": msg, "type": "string_nul"}]
        return error


class InvalidCursor(CertcheckError, status=422, code="INVALID_CURSOR"):
    """A cursor (change feed or watch events) that was never a `next` value."""


class MalformedNumber(CertcheckError, status=422, code="MALFORMED"):
    """A number looked up (not verified: there it is a Decision) that cannot be one."""


class CertificateNotFound(CertcheckError, status=404, code="NOT_FOUND"):
    """A well-formed number looked up that is not in the registry."""


class ListingNotWatched(CertcheckError, status=404, code="LISTING_NOT_WATCHED"):
    title = "No such watched listing"


class WebhookNotFound(CertcheckError, status=404, code="WEBHOOK_NOT_FOUND"):
    title = "No webhook is registered"


class WebhookUrlRefused(CertcheckError, status=422, code="WEBHOOK_URL_REFUSED"):
    """Not https, not to a public address (SSRF), or a name that does not resolve."""

    title = "The webhook URL was refused"


class CheckNotFound(CertcheckError, status=404, code="NOT_FOUND"):
    """Unknown, past retention, or another platform's: the three answer alike."""

    title = "No such check"


class MalformedCheckId(CertcheckError, status=422, code="MALFORMED"):
    title = "Not a check id"


class InvalidDate(CertcheckError, status=422, code="INVALID_DATE"):
    title = "Not a calendar day (YYYY-MM-DD)"


class InvalidDateRange(CertcheckError, status=422, code="INVALID_DATE_RANGE"):
    title = "Not a range of days statistics are kept for"
