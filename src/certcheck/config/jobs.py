"""Re-check jobs (api.md "Re-check jobs"; jobs/): workers, chunks, and what an upload may cost."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, Field, model_validator


class JobSettings(BaseModel):
    # Four, not two: while one works a chunk, the others' chunks are being written, which with
    # check records takes the database longer than the work (bench/README.md, thirteenth pass).
    job_workers: int = Field(
        default=4, ge=0, le=64, description="job worker tasks per serve process; 0: API only"
    )
    job_chunk_lines: int = Field(default=5_000, ge=1, le=50_000, description="lines per chunk")
    job_lease_seconds: float = Field(
        default=60.0, gt=0, description="seconds a chunk stays with a worker that went silent"
    )
    job_poll_interval: float = Field(default=1.0, gt=0, le=60, description="idle workers' poll")
    job_max_attempts: int = Field(default=5, ge=1, description="leases of one chunk before failing")
    job_max_upload_bytes: int = Field(default=1 << 30, ge=1, description="bytes as sent")
    job_max_content_bytes: int = Field(default=4 << 30, ge=1, description="bytes after gunzip")
    job_max_lines: int = Field(default=10_000_000, ge=1)
    job_max_line_bytes: int = Field(default=65_536, ge=1_024)
    job_max_unfinished: int = Field(
        default=4, ge=1, description="queued or running jobs per platform"
    )
    job_retention: int = Field(
        default=7 * 86_400, ge=0, description="seconds finished jobs are kept; 0: for ever"
    )
    job_spool_dir: Path | None = Field(default=None, description="uploads' temporary files")
    # A legitimate file has a handful of blank lines (a spreadsheet's trailing rows); a flood of
    # them costs a scan per line and counts nowhere else, so it is capped on its own.
    job_max_blank_lines: int = Field(
        default=100_000, ge=0, description="blank lines a re-check upload may hold"
    )
    job_hold_file: Path | None = Field(
        default=None,
        description="test/diagnostic hook: while this file exists, workers hold their leased "
        "chunks instead of committing them; unset in production",
    )

    @model_validator(mode="after")
    def _refuse_unusable_jobs(self) -> Self:
        if self.job_max_line_bytes > self.job_max_content_bytes:
            raise ValueError("CERTCHECK_JOB_MAX_LINE_BYTES exceeds CERTCHECK_JOB_MAX_CONTENT_BYTES")
        if self.job_max_upload_bytes > self.job_max_content_bytes:
            # An upload sent without gzip is as long as its content: it would pass one cap only.
            raise ValueError(
                "CERTCHECK_JOB_MAX_UPLOAD_BYTES exceeds CERTCHECK_JOB_MAX_CONTENT_BYTES"
            )
        if self.job_spool_dir is not None and not self.job_spool_dir.is_dir():
            raise ValueError(f"CERTCHECK_JOB_SPOOL_DIR {self.job_spool_dir} is not a directory")
        return self
