"""Upstream feed items for tests, and reading back what a sync left in the database."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.tables import certificates, changes, registry_runs, registry_state, sync_state
from certcheck.registry.rows import row_values
from certcheck.snapshots.reader import certificate_to_snapshot_dict
from certcheck.sync.feed import rfc3339
from certcheck.verification.records import Certificate

# Items are stamped a minute apart from a day ago: in the past, as upstream's would be.
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
STEP = timedelta(minutes=1)
Entry = tuple[str, str | None, str | None]


def stamp(index: int) -> datetime:
    return START + index * STEP


def items_of(certs: Iterable[Certificate], first: int = 0) -> list[dict[str, Any]]:
    """Feed items for `certs`, stamped stamp(first), stamp(first + 1), ..."""
    return [
        {**certificate_to_snapshot_dict(cert), "updated_at": rfc3339(stamp(first + n))}
        for n, cert in enumerate(certs)
    ]


def write_jsonl(path: Path, items: Iterable[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), "utf-8")
    return path


def as_rows(certs: Iterable[Certificate]) -> dict[str, dict[str, Any]]:
    return {cert.cert_no: row_values(cert) for cert in certs}


async def registry(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(certificates))).mappings()
        return {row["cert_no"]: dict(row) for row in rows}


async def entries(engine: AsyncEngine) -> list[Entry]:
    c = changes.c
    query = select(c.cert_no, c.old_status, c.new_status).order_by(c.id)
    async with engine.connect() as conn:
        return [(r.cert_no, r.old_status, r.new_status) for r in await conn.execute(query)]


async def cursor(engine: AsyncEngine) -> datetime | None:
    async with engine.connect() as conn:
        text = await conn.scalar(select(sync_state.c.cursor))
    return None if text is None else datetime.fromisoformat(text)


async def state(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return dict((await conn.execute(select(registry_state))).mappings().one())


async def runs(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        query = select(registry_runs).order_by(registry_runs.c.id)
        return [dict(row) for row in (await conn.execute(query)).mappings()]


async def assert_registry(engine: AsyncEngine, certs: Sequence[Certificate]) -> None:
    """The registry holds exactly `certs`, and its state row counts them right."""
    assert await registry(engine) == as_rows(certs)
    counted = await state(engine)
    assert counted["certificates"] == len(certs)
    assert counted["by_status"] == dict(Counter(c.status.value for c in certs))
