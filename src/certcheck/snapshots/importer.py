"""Whole-snapshot import: stage the rows, diff against the registry, swap in one transaction.

Readers keep answering from the old registry until the commit (MVCC on PostgreSQL, WAL on
SQLite); a failed or interrupted import rolls back and leaves it untouched. Rows are bulk
loaded into a temporary staging table (COPY on PostgreSQL, executemany on SQLite) and every
comparison after that happens inside the database.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certcheck.db.tables import certificates, changes, registry_runs, registry_state
from certcheck.db.types import UTCDateTime
from certcheck.errors import ImportRefused, RegistryBusy
from certcheck.observability.metrics import REGISTRY_RUNS
from certcheck.registry.lock import registry_writer
from certcheck.registry.rows import row_values
from certcheck.registry.state import forget_sync_cursor, record_failed_run, write_state
from certcheck.snapshots.reader import RowError, SnapshotRow

_BATCH = 5_000
_REPORTED_ERRORS = 100

_staging_meta = MetaData()
staging = Table(
    "import_staging",
    _staging_meta,
    Column("line", Integer, nullable=False),
    # No primary key: duplicates must reach _drop_duplicates to be reported, not abort the COPY.
    *(Column(c.name, c.type) for c in certificates.columns),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
# Numbers of rows that could not be read although their number could: the registry's record
# of each is copied into the staging table, so the import neither changes nor removes it.
kept = Table(
    "import_kept",
    _staging_meta,
    Column("line", Integer, nullable=False),
    Column("cert_no", certificates.c.cert_no.type, nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
_CERT_COLUMNS = [c.name for c in certificates.columns]


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
            await _stage(conn, parsed, result)
            _check_errors(result, limits)
            run_id = await _start_run(conn, source, started)
            await _diff(conn, result, limits)
            await _apply(conn, result, source, run_id)
    except RegistryBusy:
        # Not a run: the one holding the lock records its own. Recorded, this attempt would
        # outrank it (a later id) and show as the last sync after that one had succeeded.
        raise
    except Exception as exc:
        await record_failed_run(engine, "import", source, started, exc, result.rejected)
        raise
    REGISTRY_RUNS.labels(kind="import", outcome="success").inc()
    return result


async def _stage(
    conn: AsyncConnection, parsed: Iterator[SnapshotRow | RowError], result: ImportResult
) -> None:
    for table in (staging, kept):
        await conn.run_sync(_recreate, table)
    postgres = conn.dialect.name == "postgresql"
    while True:
        # Parsing is CPU work: do it off the event loop so a serving process keeps answering.
        batch = await asyncio.to_thread(lambda: list(itertools.islice(parsed, _BATCH)))
        if not batch:
            break
        rows, numbers = [], []
        for item in batch:
            if isinstance(item, RowError):
                result.reject(item)
                if item.cert_no is not None:
                    numbers.append({"line": item.line, "cert_no": item.cert_no})
            else:
                rows.append({"line": item.line, **row_values(item.certificate)})
        result.rows += len(rows)
        if rows:
            await (_copy(conn, rows) if postgres else conn.execute(insert(staging), rows))
        if numbers:
            await conn.execute(insert(kept), numbers)
    if postgres:
        await conn.execute(text("ANALYZE import_staging"))
    else:
        await conn.execute(text("CREATE INDEX import_staging_cert_no ON import_staging (cert_no)"))
    await _drop_duplicates(conn, result)
    result.kept = await _keep_unreadable(conn)


def _recreate(sync: Connection, table: Table) -> None:
    table.drop(sync, checkfirst=True)
    table.create(sync)


async def _keep_unreadable(conn: AsyncConnection) -> int:
    """Stage the registry's record of each number whose row could not be read, unchanged.

    A number that a readable row also names is left to that row; one the registry does not
    hold is simply not added. Returns how many certificates were kept as they were.
    """
    first = (
        select(func.min(kept.c.line).label("line"), kept.c.cert_no)
        .where(~exists().where(staging.c.cert_no == kept.c.cert_no))
        .group_by(kept.c.cert_no)
        .subquery()
    )
    records = select(first.c.line, *(certificates.c[c] for c in _CERT_COLUMNS)).join_from(
        first, certificates, certificates.c.cert_no == first.c.cert_no
    )
    done = await conn.execute(insert(staging).from_select(["line", *_CERT_COLUMNS], records))
    await conn.run_sync(lambda sync: kept.drop(sync, checkfirst=True))
    return max(done.rowcount, 0)


async def _copy(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    raw = await conn.get_raw_connection()
    columns = ["line", *_CERT_COLUMNS]
    records = [tuple(json.dumps(r[c]) if c == "models" else r[c] for c in columns) for r in rows]
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        "import_staging", records=records, columns=columns
    )


async def _drop_duplicates(conn: AsyncConnection, result: ImportResult) -> None:
    # EXISTS, not `line NOT IN (SELECT min(line) ... GROUP BY cert_no)`: PostgreSQL runs a NOT IN
    # whose subquery outgrows work_mem as a nested loop, quadratic in the snapshot's size.
    earlier = staging.alias("earlier")
    later = exists().where(earlier.c.cert_no == staging.c.cert_no, earlier.c.line < staging.c.line)
    dupes = (
        await conn.execute(
            select(staging.c.line, staging.c.cert_no).where(later).order_by(staging.c.line)
        )
    ).all()
    for line, cert_no in dupes:
        result.reject(RowError(line=line, message=f"{cert_no} appears on an earlier line too"))
    if dupes:
        await conn.execute(delete(staging).where(later))
        result.rows -= len(dupes)


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
    count = select(func.count())
    removed = count.select_from(certificates).where(~_in_staging)
    result.removed = await conn.scalar(removed) or 0
    result.added = await conn.scalar(count.select_from(staging).where(~_in_registry)) or 0
    result.changed = (
        await conn.scalar(
            select(func.count())
            .select_from(certificates.join(staging, _s.cert_no == _c.cert_no))
            .where(_s.digest != _c.digest)
        )
        or 0
    )
    if current and result.removed / current > limits.max_removed_share and not limits.force:
        raise ImportRefused(
            f"the snapshot would remove {result.removed} of {current} certificates, over the "
            f"limit of {limits.max_removed_share:.0%}; import it with force to accept that",
            code="TOO_MANY_REMOVALS",
        )


async def _apply(conn: AsyncConnection, result: ImportResult, source: str, run_id: int) -> None:
    now = datetime.now(UTC)
    generation = (await conn.scalar(select(registry_state.c.generation))) or 0
    generation += 1
    await _feed(conn, now, generation)
    same = exists().where(and_(_s.cert_no == _c.cert_no, _s.digest == _c.digest))
    await conn.execute(delete(certificates).where(~same))
    await conn.execute(
        insert(certificates).from_select(
            _CERT_COLUMNS, select(*(staging.c[c] for c in _CERT_COLUMNS)).where(~_in_registry)
        )
    )
    counted = await conn.execute(select(_c.status, func.count()).group_by(_c.status))
    by_status = {status: count for status, count in counted}
    result.generation = generation
    result.certificates = sum(by_status.values())
    await write_state(conn, generation=generation, now=now, source=source, by_status=by_status)
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
    await conn.run_sync(lambda sync: staging.drop(sync, checkfirst=True))


async def _feed(conn: AsyncConnection, now: datetime, generation: int) -> None:
    at, gen = literal(now, UTCDateTime), literal(generation, BigInteger)
    columns = ["cert_no", "old_status", "new_status", "changed_at", "generation"]
    moved = (
        select(_c.cert_no, _c.status, _s.status, at, gen)
        .select_from(certificates.join(staging, _s.cert_no == _c.cert_no))
        .where(_s.status != _c.status)
    )
    added = select(_s.cert_no, null(), _s.status, at, gen).where(~_in_registry)
    removed = select(_c.cert_no, _c.status, null(), at, gen).where(~_in_staging)
    for query in (moved, added, removed):
        await conn.execute(
            insert(changes).from_select(columns, query.order_by(query.selected_columns[0]))
        )
