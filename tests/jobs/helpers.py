"""Jobs straight into the database, and a Checker over it, for the tests of jobs/."""

from __future__ import annotations

import io
from datetime import timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import FromClause

from certcheck.api.recheck import RecheckLines
from certcheck.checking import Checker
from certcheck.jobs.framing import FramingLimits, frame
from certcheck.jobs.intake import NewJob, create_job
from certcheck.jobs.records import UploadFormat
from certcheck.registry.store import RegistryStore
from certcheck.verification.catalogue import load_catalogue
from tests.conftest import load
from tests.factories import cert

CODEC = RecheckLines()


def number(i: int) -> str:
    return f"2024010901{i:06d}"


async def new_job(engine: AsyncEngine, lines: int, *, chunk_lines: int = 2) -> str:
    body = b"".join(b'{"cert_no": "%s"}\n' % number(i).encode() for i in range(lines))
    limits = FramingLimits(chunk_lines, 1_000_000, 65_536)
    chunks = frame(io.BytesIO(body), UploadFormat.NDJSON, limits, CODEC.fields)
    new = NewJob("shop", UploadFormat.NDJSON, f"digest-{lines}", None)
    job, _ = await create_job(engine, new, chunks, max_unfinished=100)
    return job.id


async def checker_over(engine: AsyncEngine, certificates: int = 10) -> Checker:
    if certificates:
        await load(engine, [cert(number(i)) for i in range(certificates)])
    store = RegistryStore(
        engine, cache_size=100, cache_ttl=60, max_age=timedelta(hours=1), db_timeout=5
    )
    await store.refresh()
    return Checker(store, load_catalogue())


async def count(engine: AsyncEngine, table: FromClause, *where: ColumnElement[bool]) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).select_from(table).where(*where)
        return int(await conn.scalar(query) or 0)
