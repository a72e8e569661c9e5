"""Reading and forgetting one job: the job for its platform, its results, its deletion.

Results stream as NDJSON in input order, optionally one decision only. Chunks are read a few at
a time by keyset (chunk > the last one sent), so no connection is held while the client reads,
and memory holds one chunk's lines however large the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from itertools import compress

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.tables import recheck_jobs, recheck_results
from certcheck.db.types import storable
from certcheck.jobs.chunks import decompress
from certcheck.jobs.records import LETTER, Job, job_from_row
from certcheck.verification.records import Verdict

_PAGE = 4
_jobs = recheck_jobs.c
_r = recheck_results.c


async def get_job(engine: AsyncEngine, job_id: str, platform: str) -> Job | None:
    """The job, if it exists and belongs to `platform`: others' jobs do not exist for them."""
    if not storable(job_id):
        return None
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(recheck_jobs).where(_jobs.id == job_id, _jobs.platform == platform)
                )
            )
            .mappings()
            .first()
        )
    return None if row is None else job_from_row(row)


async def job_by_key(engine: AsyncEngine, platform: str, key: str) -> Job | None:
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(recheck_jobs).where(
                        _jobs.platform == platform, _jobs.idempotency_key == key
                    )
                )
            )
            .mappings()
            .first()
        )
    return None if row is None else job_from_row(row)


async def delete_job(engine: AsyncEngine, job_id: str, platform: str) -> bool:
    """Cancel and forget: its chunks, inputs and results go with it (ON DELETE CASCADE)."""
    if not storable(job_id):
        return False
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(recheck_jobs).where(_jobs.id == job_id, _jobs.platform == platform)
        )
    return result.rowcount > 0


async def result_stream(
    engine: AsyncEngine, job_id: str, verdict: Verdict | None = None
) -> AsyncIterator[bytes]:
    after = -1
    while True:
        async with engine.connect() as conn:
            page = (
                await conn.execute(
                    select(_r.chunk, _r.decisions, _r.body)
                    .where(_r.job_id == job_id, _r.chunk > after)
                    .order_by(_r.chunk)
                    .limit(_PAGE)
                )
            ).all()
        if not page:
            return
        for chunk, decisions, body in page:
            lines = await asyncio.to_thread(_lines, body, decisions, verdict)
            if lines:
                yield lines
            after = chunk


def _lines(body: bytes, decisions: str, verdict: Verdict | None) -> bytes:
    text = decompress(body)
    if verdict is None:
        return text
    wanted = LETTER[verdict]
    lines = text.split(b"\n")[:-1]
    kept = list(compress(lines, (letter == wanted for letter in decisions)))
    if not kept:
        return b""
    kept.append(b"")
    return b"\n".join(kept)
