"""Re-check jobs (api.md; jobs/): the jobs, their queue of chunks, inputs and results."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from certcheck.db.metadata import metadata
from certcheck.db.types import BigIntId, UTCDateTime

# One row per upload; the counters move with every chunk's commit.
recheck_jobs = Table(
    "recheck_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("platform", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("format", String(8), nullable=False),
    Column("total", Integer, nullable=False, default=0),
    Column("processed", Integer, nullable=False, default=0),
    Column("allow_count", Integer, nullable=False, default=0),
    Column("block_count", Integer, nullable=False, default=0),
    Column("review_count", Integer, nullable=False, default=0),
    Column("invalid_lines", Integer, nullable=False, default=0),
    Column("idempotency_key", String(256)),
    Column("body_digest", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("registry_generation", BigInteger),
    Column("registry_as_of", UTCDateTime),
    Column("error", Text),
    UniqueConstraint("platform", "idempotency_key"),
)

# The work queue: one row per chunk of a job's lines not yet answered, leased by one worker at a
# time; `id` orders the queue (oldest job first). A chunk's row goes when its results commit.
recheck_chunks = Table(
    "recheck_chunks",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("job_id", String(32), ForeignKey("recheck_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("chunk", Integer, nullable=False),
    Column("lines", Integer, nullable=False),
    Column("state", String(8), nullable=False),
    Column("leased_by", String(64)),
    Column("lease_until", UTCDateTime),
    Column("attempts", Integer, nullable=False, default=0),
    UniqueConstraint("job_id", "chunk"),
)

# A chunk's input lines (jobs/chunks.py): zlib-compressed JSON objects, one per line, with the
# upload's line numbers and the lines that could not be read. Deleted with the chunk's row.
recheck_inputs = Table(
    "recheck_inputs",
    metadata,
    Column(
        "job_id", String(32), ForeignKey("recheck_jobs.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("chunk", Integer, primary_key=True),
    Column("line_runs", Text, nullable=False),
    Column("records", LargeBinary, nullable=False),
    Column("errors", Text),
)

# A chunk's answers: zlib-compressed NDJSON result lines and one letter per line (a, b, r) for
# the decision, so ?decision= filters without parsing JSON.
recheck_results = Table(
    "recheck_results",
    metadata,
    Column(
        "job_id", String(32), ForeignKey("recheck_jobs.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("chunk", Integer, primary_key=True),
    Column("decisions", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
)

Index(None, recheck_jobs.c.platform, recheck_jobs.c.status)
Index(None, recheck_chunks.c.state, recheck_chunks.c.id)
