"""Whole-snapshot import: stage the rows, diff against the registry, swap in one transaction.

Readers keep answering from the old registry until the commit (MVCC on PostgreSQL, WAL on
SQLite); a failed or interrupted import rolls back and leaves it untouched. Rows are bulk
loaded into a temporary staging table (COPY on PostgreSQL, multi-row INSERTs on SQLite) and
every comparison after that happens inside the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.db.tables import certificates, changes, registry_runs, registry_state
from certcheck.db.types import UTCDateTime
from certcheck.errors import ImportRefused, RegistryBusy
from certcheck.observability.metrics import REGISTRY_RUNS
from certcheck.registry.lock import registry_writer
from certcheck.registry.state import forget_sync_cursor, record_failed_run, write_state
from certcheck.snapshots.reader import RowError, SnapshotRow
from certcheck.snapshots.staging import (
    CERT_COLUMNS,
    FEED_COLUMNS,
    FirstFeed,
    Staged,
    load_into_empty,
    stage,
    staging,
)

_REPORTED_ERRORS = 100


@dataclass
class ImportResult:
    generation: int = 0
    certificates: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    rows: int = 0
    rejected: int = 0
    kept: int = 0  # certificates left as they were because their row could not be read
    errors: list[RowError] = field(default_factory=list)

    def reject(self, error: RowError) -> None:
        self.rejected += 1
        if len(self.errors) < _REPORTED_ERRORS:
            self.errors.append(error)


@dataclass(frozen=True, slots=True)
class ImportLimits:
    force: bool = False
    max_removed_share: float = 0.10
    max_error_share: float = 0.01


async def import_snapshot(
    engine: AsyncEngine,
    parsed: Iterator[SnapshotRow | RowError],
    *,
    source: str,
    limits: ImportLimits,
) -> ImportResult:
    """Replace the registry with the parsed snapshot, or leave it untouched and raise."""
    started = datetime.now(UTC)
    result = ImportResult()
    try:
        async with registry_writer(engine) as conn, conn.begin():
            staged = Staged(result.reject)
            generation = (await conn.scalar(select(registry_state.c.generation)) or 0) + 1
            # A first import has nothing to diff: its rows go straight into the registry, with
            # their feed entries, all stamped with the time it began to load them.
            fresh = await _registry_is_empty(conn)
            if fresh:
                now = datetime.now(UTC)
                await load_into_empty(conn, parsed, staged, FirstFeed(now, generation))
            else:
                await stage(conn, parsed, staged)
            result.rows, result.kept = staged.rows, staged.kept
            _check_errors(result, limits)
            run_id = await _start_run(conn, source, started)
            if fresh:
                result.added = result.rows
            else:
                await _diff(conn, result, limits)
                now = datetime.now(UTC)
                await _feed(conn, now, generation)
                await _replace(conn)
            result.generation = generation
            await _apply(conn, result, source, run_id, now, fresh=fresh)
    except RegistryBusy:
        # Not a run: the one holding the lock records its own. Recorded, this attempt would
        # outrank it (a later id) and show as the last sync after that one had succeeded.
        raise
    except Exception as exc:
        await record_failed_run(engine, "import", source, started, exc, result.rejected)
        raise
    REGISTRY_RUNS.labels(kind="import", outcome="success").inc()
    return result


async def _registry_is_empty(conn: AsyncConnection) -> bool:
    return await conn.scalar(select(_c.cert_no).limit(1)) is None


def _check_errors(result: ImportResult, limits: ImportLimits) -> None:
    read = result.rows + result.rejected
    if read and result.rejected / read > limits.max_error_share:
        raise ImportRefused(
            f"{result.rejected} of {read} rows could not be read, over the limit of "
            f"{limits.max_error_share:.0%}; first: line {result.errors[0].line}: "
            f"{result.errors[0].message}",
            code="TOO_MANY_BAD_ROWS",
            status=422,
        )
    if result.rows == 0:
        raise ImportRefused("the snapshot has no certificates", code="EMPTY_SNAPSHOT", status=422)


async def _start_run(conn: AsyncConnection, source: str, started: datetime) -> int:
    # Writing first also takes SQLite's write lock before we read the registry we diff against.
    run_id = await conn.scalar(
        insert(registry_runs)
        .values(kind="import", source=source, started_at=started, outcome="running")
        .returning(registry_runs.c.id)
    )
    assert run_id is not None  # nosec B101 # only narrows the type
    return int(run_id)


_c, _s = certificates.c, staging.c
# Correlated explicitly: each is used from a query over the other table.
_in_staging = exists().where(_s.cert_no == _c.cert_no).correlate(certificates)
_in_registry = exists().where(_c.cert_no == _s.cert_no).correlate(staging)


async def _diff(conn: AsyncConnection, result: ImportResult, limits: ImportLimits) -> None:
    current = await conn.scalar(select(func.count()).select_from(certificates)) or 0
    # One pass over the staged rows: those the registry lacks, those whose digest moved.
    counted = select(
        func.count(),
        func.count(_c.cert_no),
        func.coalesce(func.sum(case((_s.digest != _c.digest, 1), else_=0)), 0),
    ).select_from(staging.outerjoin(certificates, _s.cert_no == _c.cert_no))
    staged, matched, result.changed = (await conn.execute(counted)).one()
    result.added = staged - matched
    result.removed = current - matched
    if current and result.removed / current > limits.max_removed_share and not limits.force:
        raise ImportRefused(
            f"the snapshot would remove {result.removed} of {current} certificates, over the "
            f"limit of {limits.max_removed_share:.0%}; import it with force to accept that",
            code="TOO_MANY_REMOVALS",
        )


async def _apply(
    conn: AsyncConnection,
    result: ImportResult,
    source: str,
    run_id: int,
    now: datetime,
    *,
    fresh: bool,
) -> None:
    """The registry's state and the run's record, once the certificates and feed are written."""
    counted = await conn.execute(select(_c.status, func.count()).group_by(_c.status))
    by_status = {status: count for status, count in counted}
    result.certificates = sum(by_status.values())
    await write_state(
        conn, generation=result.generation, now=now, source=source, by_status=by_status
    )
    await forget_sync_cursor(conn)
    await conn.execute(
        update(registry_runs)
        .where(registry_runs.c.id == run_id)
        .values(
            outcome="success",
            finished_at=datetime.now(UTC),
            added=result.added,
            changed=result.changed,
            removed=result.removed,
            rejected_rows=result.rejected,
        )
    )
    if not fresh:
        await conn.run_sync(lambda sync: staging.drop(sync, checkfirst=True))


async def _replace(conn: AsyncConnection) -> None:
    """Delete the certificates the snapshot drops or changes; insert its new and changed ones."""
    same = exists().where(and_(_s.cert_no == _c.cert_no, _s.digest == _c.digest))
    await conn.execute(delete(certificates).where(~same))
    new = select(*(staging.c[c] for c in CERT_COLUMNS)).where(~_in_registry)
    if conn.dialect.name == "sqlite":
        # In key order, SQLite's primary key index grows at its end instead of all over its
        # small page cache: half the time for a million rows. PostgreSQL would sort to disk.
        new = new.order_by(_s.cert_no)
    await conn.execute(insert(certificates).from_select(CERT_COLUMNS, new))


async def _feed(conn: AsyncConnection, now: datetime, generation: int) -> None:
    at, gen = literal(now, UTCDateTime), literal(generation, BigInteger)
    moved = (
        select(_c.cert_no, _c.status, _s.status, at, gen)
        .select_from(certificates.join(staging, _s.cert_no == _c.cert_no))
        .where(_s.status != _c.status)
    )
    # The same status, another record (models, manufacturer, dates): not a status change for
    # GET /v1/changes, but the listing watch must decide its listings again.
    edited = (
        select(_c.cert_no, _c.status, _s.status, at, gen)
        .select_from(certificates.join(staging, _s.cert_no == _c.cert_no))
        .where(_s.status == _c.status, _s.digest != _c.digest)
    )
    added = select(_s.cert_no, null(), _s.status, at, gen).where(~_in_registry)
    removed = select(_c.cert_no, _c.status, null(), at, gen).where(~_in_staging)
    for query in (moved, edited, added, removed):
        await conn.execute(
            insert(changes).from_select(FEED_COLUMNS, query.order_by(query.selected_columns[0]))
        )
