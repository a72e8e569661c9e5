"""What a re-check job is, as plain values read from its row."""

from __future__ import annotations

import enum
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from certcheck.verification.records import Verdict


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING)


class UploadFormat(enum.StrEnum):
    NDJSON = "ndjson"
    CSV = "csv"


# One letter per result line in recheck_results.decisions.
LETTER = {Verdict.ALLOW: "a", Verdict.BLOCK: "b", Verdict.REVIEW: "r"}


def new_job_id() -> str:
    """128 random bits: a job id cannot be guessed from another one."""
    return "rj_" + secrets.token_urlsafe(16)


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    platform: str
    status: JobStatus
    total: int
    processed: int
    counts: Mapping[Verdict, int]
    invalid_lines: int
    body_digest: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    registry_as_of: datetime | None
    error: str | None


def job_from_row(row: Mapping[Any, Any]) -> Job:
    return Job(
        id=row["id"],
        platform=row["platform"],
        status=JobStatus(row["status"]),
        total=row["total"],
        processed=row["processed"],
        counts={
            Verdict.ALLOW: row["allow_count"],
            Verdict.BLOCK: row["block_count"],
            Verdict.REVIEW: row["review_count"],
        },
        invalid_lines=row["invalid_lines"],
        body_digest=row["body_digest"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        registry_as_of=row["registry_as_of"],
        error=row["error"],
    )
