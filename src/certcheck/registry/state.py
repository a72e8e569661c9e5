"""The registry's bookkeeping rows: its state (generation, age, counts) and its runs.

The writer lock that keeps a second import or sync out lives in registry/lock.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.db.tables import registry_runs, registry_state, sync_state
from certcheck.errors import CertcheckError, ImportRefused, SyncFailed
from certcheck.observability.metrics import REGISTRY_RUNS

log = logging.getLogger(__name__)


async def write_state(
    conn: AsyncConnection,
    *,
    generation: int,
    now: datetime,
    source: str,
    by_status: dict[str, int],
    as_of: datetime | None = None,
) -> None:
    """`as_of` is when the data was current (the feed's `as_of` for a sync), `now` by default."""
    values = {
        "generation": generation,
        "as_of": as_of or now,
        "refreshed_at": now,
        "source": source,
        "certificates": sum(by_status.values()),
        "by_status": by_status,
    }
    updated = await conn.execute(update(registry_state).where(registry_state.c.id == 1), values)
    if updated.rowcount == 0:
        await conn.execute(insert(registry_state), {"id": 1, **values})


async def forget_sync_cursor(conn: AsyncConnection) -> None:
    """After a snapshot replaced the registry, the next sync reads the whole feed again.

    The snapshot may be older than the cursor: changes the sync applied after the snapshot was
    taken would otherwise stay undone until those certificates changed again upstream.
    """
    await conn.execute(update(sync_state).where(sync_state.c.id == 1).values(cursor=None))


async def record_failed_run(
    engine: AsyncEngine, kind: str, source: str, started: datetime, exc: Exception, rejected: int
) -> None:
    outcome, error = run_outcome(exc)
    REGISTRY_RUNS.labels(kind=kind, outcome=outcome).inc()
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
                    error=error,
                )
            )
    except Exception:
        # The original failure matters more than its record; it is raised by our caller.
        log.exception("could not record the failed %s run", kind)


def run_outcome(exc: BaseException) -> tuple[str, str]:
    """How a failed run is recorded: its outcome and an error text fit to show anyone."""
    refused = isinstance(exc, ImportRefused) or (isinstance(exc, SyncFailed) and exc.refused)
    error = exc.detail if isinstance(exc, CertcheckError) else type(exc).__name__
    return ("refused" if refused else "failed"), error[:1000]


async def start_run(conn: AsyncConnection, kind: str, source: str, started: datetime) -> int:
    """Record a run as `running`, committed so GET /v1/registry shows it; lock holders only.

    Holding the writer lock, any other `running` row belongs to a run whose process died.
    """
    async with conn.begin():
        await conn.execute(
            update(registry_runs)
            .where(registry_runs.c.outcome == "running")
            .values(outcome="interrupted", finished_at=started)
        )
        run_id = await conn.scalar(
            insert(registry_runs)
            .values(kind=kind, source=source, started_at=started, outcome="running")
            .returning(registry_runs.c.id)
        )
    assert run_id is not None  # nosec B101 # only narrows the type
    return int(run_id)


async def count_run(
    conn: AsyncConnection, run_id: int, *, added: int, changed: int, removed: int, rejected: int
) -> None:
    """The run's totals so far; written with each commit so even a crashed run shows them."""
    await conn.execute(
        update(registry_runs)
        .where(registry_runs.c.id == run_id)
        .values(added=added, changed=changed, removed=removed, rejected_rows=rejected)
    )


async def finish_run(
    conn: AsyncConnection, run_id: int, outcome: str, error: str | None, rejected: int
) -> None:
    async with conn.begin():
        await conn.execute(
            update(registry_runs)
            .where(registry_runs.c.id == run_id)
            .values(
                outcome=outcome,
                finished_at=datetime.now(UTC),
                error=error,
                rejected_rows=rejected,
            )
        )


@dataclass(frozen=True, slots=True)
class Run:
    """One import or sync as `registry_runs` records it: what it was, how it ended, when, and
    what it did (api/ chooses what of it to show)."""

    kind: Literal["import", "sync"]  # a whole-snapshot import, or an upstream sync
    outcome: str
    """`running`, `success`, `failed`, `refused`, or `interrupted` (its process died)."""
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    """None while the run goes on, and after its process died before recording its end."""
    added: int
    changed: int
    removed: int
    """Counted with each commit, so a run that failed part-way shows what it did."""


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


async def last_started(engine: AsyncEngine, kind: str) -> datetime | None:
    """When the latest run of `kind` started, in any process."""
    runs = registry_runs.c
    async with engine.connect() as conn:
        return await conn.scalar(
            select(runs.started_at).where(runs.kind == kind).order_by(runs.id.desc()).limit(1)
        )


async def last_success(engine: AsyncEngine, kind: str) -> datetime | None:
    """When the latest successful run of `kind` finished, in any process."""
    runs = registry_runs.c
    async with engine.connect() as conn:
        return await conn.scalar(
            # Through the column, not max(): max() would lose UTCDateTime's read conversion.
            select(runs.finished_at)
            .where(runs.kind == kind, runs.outcome == "success")
            .order_by(runs.id.desc())
            .limit(1)
        )
