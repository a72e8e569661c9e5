"""Wire schemas: the JSON platforms code against (api.md), converted explicitly from records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict

from certcheck.jobs.records import JobStatus
from certcheck.verification.records import Reason, Status, Verdict

# No NUL character: PostgreSQL's text cannot hold one. Bodies are refused for one where they
# are parsed (api/strict_json.py), once a body: this only says so in the OpenAPI document.
NO_NUL: JsonDict = {"pattern": "^[^\\u0000]*$"}
Text256 = Annotated[str, StringConstraints(max_length=256), Field(json_schema_extra=NO_NUL)]


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    cert_no: (
        Annotated[str, StringConstraints(max_length=64), Field(json_schema_extra=NO_NUL)] | None
    ) = None
    product_code: Text256 | None = None
    model: Text256 | None = None
    manufacturer: Text256 | None = None
    listing_id: Text256 | None = None
    merchant_id: Text256 | None = None


# `VerifyRequest.model_validate_json` without its Python wrapper: the model's own validator (the
# same checks, model and ValidationError), a microsecond less on every verify and job line.
verify_request_from_json: Callable[[bytes], VerifyRequest] = (
    VerifyRequest.__pydantic_validator__.validate_json
)


class CertificateOut(BaseModel):
    cert_no: str
    status: Status
    holder: str
    manufacturer: str | None
    factory: str | None
    product_code: str
    product_name: str | None
    models: list[str]
    body_code: str
    issued_on: date | None
    expires_on: date | None
    status_changed_on: date | None
    status_reason: str | None


class VerifyResponse(BaseModel):
    check_id: str = Field(description="unique id of this check: quote it as proof of the check")
    listing_id: str | None
    cert_no: str | None = Field(description="the normalised number; null when absent or malformed")
    decision: Verdict
    reason: Reason
    reasons: list[Reason]
    certificate: CertificateOut | None
    registry_as_of: datetime
    checked_at: datetime
    # Added after v1 shipped, so optional: clients written before them still read every answer.
    cert_no_given: str | None = Field(
        default=None, description="on MALFORMED only: `cert_no` exactly as sent; null otherwise"
    )
    detail: str | None = Field(
        default=None,
        description="on MALFORMED only: why it is malformed and what a number looks like; "
        "on a re-check line that could not be read, the same text as `error`; null otherwise",
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    items: list[VerifyRequest] = Field(min_length=1)


class Summary(BaseModel):
    allow: int = 0
    block: int = 0
    review: int = 0


class BatchResponse(BaseModel):
    results: list[VerifyResponse]
    summary: Summary


class JobOut(BaseModel):
    job_id: str
    status: JobStatus
    total: int = Field(description="non-empty lines of the upload (a CSV header excepted)")
    processed: int = Field(description="lines answered so far")
    counts: Summary = Field(description="decisions of the lines answered, unreadable ones as block")
    invalid_lines: int = Field(description="lines that were not a verify request (MALFORMED)")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    registry_as_of: datetime | None = Field(
        description="the oldest registry any line was checked against; null until one was"
    )
    error: str | None = Field(description="why the job failed; null otherwise")


class RecheckResult(VerifyResponse):
    """One line of a job's results: a verify response and where its input was."""

    line: int = Field(description="the upload's line number (1-based; a CSV header is line 1)")
    error: str | None = Field(
        default=None, description="present on lines that could not be read: why (MALFORMED)"
    )


class LastSync(BaseModel):
    # The latest registry run of either kind (the field keeps its first name): `kind` says which.
    kind: Literal["import", "sync"]
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    added: int
    changed: int
    removed: int
    error: str | None


class CatalogueOut(BaseModel):
    version: str
    effective_from: date
    source: str


class RegistryOut(BaseModel):
    certificates: int
    by_status: dict[str, int]
    as_of: datetime | None
    source: str | None
    last_sync: LastSync | None
    generation: int
    age_seconds: float | None
    ready: bool
    not_ready_reason: str | None
    catalogue: CatalogueOut


class Change(BaseModel):
    cert_no: str
    old_status: Status | None
    new_status: Status | None
    changed_at: datetime


class ChangesOut(BaseModel):
    changes: list[Change]
    next: str


class RowErrorOut(BaseModel):
    line: int
    message: str


class ImportOut(BaseModel):
    generation: int
    certificates: int
    added: int
    changed: int
    removed: int
    rows: int
    rejected_rows: int
    errors: list[RowErrorOut] = Field(description="the first 100 rows that could not be read")


class SyncOut(BaseModel):
    outcome: Literal["success"]
    pages: int = Field(description="feed pages applied, each in one transaction")
    added: int
    changed: int = Field(description="certificates whose record changed (status or any field)")
    rejected_items: int = Field(description="items of applied pages that could not be read")
    generation: int | None = Field(description="the registry generation after the last page")
    cursor: datetime | None = Field(description="the newest `updated_at` applied so far")
    as_of: datetime | None = Field(description="the feed's `as_of` on its last page")
    errors: list[str] = Field(description="the first 100 items that could not be read")


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, object]] | None = None
