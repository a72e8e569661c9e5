"""The registry's bookkeeping rows: its state (generation, age, counts), its runs, its lock."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.db.tables import registry_runs, registry_state
from certcheck.errors import ImportRefused, RegistryBusy

log = logging.getLogger(__name__)

# Any fixed number works; it only has to be the same in every process that imports or syncs.
REGISTRY_LOCK_KEY = 0x3C_CE27


async def lock_registry(conn: AsyncConnection) -> None:
    """Hold the registry's writer lock for the rest of this transaction, or raise RegistryBusy."""
    if conn.dialect.name == "postgresql":
        got = await conn.scalar(select(func.pg_try_advisory_xact_lock(REGISTRY_LOCK_KEY)))
        if not got:
            raise RegistryBusy("another import or sync is running; try again when it has finished")


async def write_state(
    conn: AsyncConnection, *, generation: int, now: datetime, source: str, by_status: dict[str, int]
) -> None:
    values = {
        "generation": generation,
        "as_of": now,
        "refreshed_at": now,
        "source": source,
        "certificates": sum(by_status.values()),
        "by_status": by_status,
    }
    updated = await conn.execute(update(registry_state).where(registry_state.c.id == 1), values)
    if updated.rowcount == 0:
        await conn.execute(insert(registry_state), {"id": 1, **values})


async def record_failed_run(
    engine: AsyncEngine, kind: str, source: str, started: datetime, exc: Exception, rejected: int
) -> None:
    outcome = "refused" if isinstance(exc, ImportRefused) else "failed"
    error = getattr(exc, "detail", None) or type(exc).__name__
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(registry_runs).values(
                    kind=kind,
                    source=source,
                    started_at=started,
                    finished_at=datetime.now(UTC),
                    outcome=outcome,
                    rejected_rows=rejected,
                    error=str(error)[:1000],
                )
            )
    except Exception:
        # The original failure matters more than its record; it is raised by our caller.
        log.exception("could not record the failed %s run", kind)


@dataclass(frozen=True, slots=True)
class Run:
    kind: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    added: int
    changed: int
    removed: int
    error: str | None


async def latest_run(engine: AsyncEngine) -> Run | None:
    async with engine.connect() as conn:
        row = (
            (await conn.execute(select(registry_runs).order_by(registry_runs.c.id.desc()).limit(1)))
            .mappings()
            .first()
        )
    if row is None:
        return None
    return Run(
        kind=row["kind"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        outcome=row["outcome"],
        added=row["added"],
        changed=row["changed"],
        removed=row["removed"],
        error=row["error"],
    )
