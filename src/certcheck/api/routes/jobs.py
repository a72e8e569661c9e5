"""Re-check jobs (api.md "Re-check jobs"): upload, follow, download the results, delete."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.api.deps import BatchKey, EngineDep, JobsDep, SettingsDep
from certcheck.api.recheck import RecheckLines
from certcheck.api.schemas import JobOut, RecheckResult, Summary
from certcheck.api.uploads import (
    NDJSON,
    NDJSON_TYPES,
    refuse_declared_length,
    upload_format,
    upload_limits,
)
from certcheck.errors import JobFailed, JobNotFinished, JobNotFound, UploadRefused
from certcheck.jobs.framing import frame
from certcheck.jobs.intake import NewJob, create_job
from certcheck.jobs.records import Job, JobStatus, UploadFormat
from certcheck.jobs.upload import receive
from certcheck.jobs.views import delete_job, get_job, result_stream
from certcheck.verification.records import Verdict

router = APIRouter(prefix="/v1/recheck-jobs", tags=["re-check jobs"])

_CODEC = RecheckLines()
_RESULT_REF = "#/components/schemas/RecheckResult"  # one schema per NDJSON line
_MEDIA_TYPES = {**NDJSON_TYPES, "text/csv": UploadFormat.CSV}
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "JOB_NOT_FOUND"}}


class NDJSONResponse(StreamingResponse):
    media_type = NDJSON


@router.post(
    "",
    status_code=202,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "one verify request per line (NDJSON), or a CSV file whose header "
            "names verify request fields; `Content-Encoding: gzip` allowed",
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
    responses={
        202: {"headers": {"Location": {"description": "the job", "schema": {"type": "string"}}}},
        413: {"description": "UPLOAD_TOO_LARGE, TOO_MANY_LINES or LINE_TOO_LONG"},
        415: {"description": "UNSUPPORTED_MEDIA_TYPE or UNSUPPORTED_CONTENT_ENCODING"},
        422: {"description": "IDEMPOTENCY_KEY_REUSED, EMPTY_UPLOAD, INVALID_CSV_HEADER, ..."},
        429: {"description": "TOO_MANY_JOBS: the platform's unfinished jobs are at the cap"},
    },
)
async def create_recheck_job(
    request: Request,
    response: Response,
    engine: EngineDep,
    settings: SettingsDep,
    workers: JobsDep,
    key: BatchKey,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="retrying with the same key and body returns the same job",
            json_schema_extra={"pattern": f"^{_KEY.pattern}$"},
        ),
    ] = None,
) -> JobOut:
    """Start a job re-checking every line of the upload; answers 202 with the job."""
    fmt, gzipped = upload_format(request, _MEDIA_TYPES, "application/x-ndjson or text/csv")
    _check_key(idempotency_key)
    limits, framing = upload_limits(settings)
    refuse_declared_length(request, limits.max_upload_bytes)
    async with receive(request.stream(), media=fmt, gzipped=gzipped, limits=limits) as upload:
        new = NewJob(key.platform, fmt, upload.digest, idempotency_key)
        chunks = frame(upload.file, fmt, framing, _CODEC.fields)
        job, created = await create_job(
            engine, new, chunks, max_unfinished=settings.job_max_unfinished
        )
    if created:
        workers.wake()
    else:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = str(request.url_for("get_recheck_job", job_id=job.id).path)
    return job_out(job)


@router.get("/{job_id}", responses=_NOT_FOUND)
async def get_recheck_job(job_id: str, engine: EngineDep, key: BatchKey) -> JobOut:
    """The job: its status, progress and counts."""
    return job_out(await _job(engine, job_id, key.platform))


@router.get(
    "/{job_id}/results",
    response_class=NDJSONResponse,
    responses={
        200: {
            "model": RecheckResult,
            "description": "one RecheckResult per line, in input order",
            "content": {NDJSON: {"schema": {"type": "object", "$ref": _RESULT_REF}}},
        },
        **_NOT_FOUND,
        409: {"description": "JOB_NOT_FINISHED (with Retry-After) or JOB_FAILED"},
    },
)
async def get_recheck_results(
    job_id: str,
    engine: EngineDep,
    key: BatchKey,
    decision: Annotated[Verdict | None, Query(description="only lines with this decision")] = None,
) -> NDJSONResponse:
    """The job's results as NDJSON, one line per input line, in input order."""
    job = await _job(engine, job_id, key.platform)
    if job.status is JobStatus.FAILED:
        raise JobFailed(f"the job failed: {job.error}")
    if job.status is not JobStatus.DONE:
        raise JobNotFinished(f"the job is {job.status.value}: {job.processed} of {job.total} done")
    return NDJSONResponse(result_stream(engine, job.id, decision))


@router.delete("/{job_id}", status_code=204, response_class=Response, responses=_NOT_FOUND)
async def delete_recheck_job(job_id: str, engine: EngineDep, key: BatchKey) -> Response:
    """Cancel the job if it is unfinished, and forget it and its results."""
    if not await delete_job(engine, job_id, key.platform):
        raise JobNotFound(f"no re-check job {job_id}")
    return Response(status_code=204)


async def _job(engine: AsyncEngine, job_id: str, platform: str) -> Job:
    job = await get_job(engine, job_id, platform)
    if job is None:
        raise JobNotFound(f"no re-check job {job_id}")
    return job


def job_out(job: Job) -> JobOut:
    return JobOut(
        job_id=job.id,
        status=job.status,
        total=job.total,
        processed=job.processed,
        counts=Summary(**{verdict.value: count for verdict, count in job.counts.items()}),
        invalid_lines=job.invalid_lines,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        registry_as_of=job.registry_as_of,
        error=job.error,
    )


def _check_key(key: str | None) -> None:
    if key is not None and not _KEY.fullmatch(key):
        raise UploadRefused(
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
            code="INVALID_IDEMPOTENCY_KEY",
        )
