"""A finished job's results as an NDJSON byte stream, in input order, optionally one decision.

Chunks are read a few at a time by keyset (chunk > the last one sent), so no connection is held
while the client reads, and memory holds one chunk's lines however large the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from itertools import compress

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.tables import recheck_results
from certcheck.jobs.chunks import decompress
from certcheck.jobs.records import LETTER
from certcheck.verification.records import Verdict

_PAGE = 4
_r = recheck_results.c


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
