"""The registry: its state, its change feed, snapshot uploads and upstream syncs (admin)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Annotated, BinaryIO, cast

from fastapi import APIRouter, Query, Request
from sqlalchemy.exc import SQLAlchemyError

from certcheck.api.deps import (
    AdminKey,
    CheckerDep,
    EngineDep,
    SettingsDep,
    StoreDep,
    SyncerDep,
    VerifyKey,
)
from certcheck.api.intake import bounded, spooled_body
from certcheck.api.schemas import (
    CatalogueOut,
    Change,
    ChangesOut,
    ImportOut,
    LastSync,
    RegistryOut,
    RowErrorOut,
    SyncOut,
)
from certcheck.errors import (
    CertcheckError,
    ImportAborted,
    InvalidCursor,
    InvalidSnapshot,
    UnsupportedMediaType,
)
from certcheck.jobs.upload import UploadLimits
from certcheck.registry.changes import changes_since
from certcheck.registry.state import Run, latest_run, record_failed_run
from certcheck.registry.store import RegistryStore
from certcheck.snapshots.importer import ImportLimits, ImportResult, import_snapshot
from certcheck.snapshots.reader import (
    ReadLimits,
    SnapshotError,
    SnapshotFormat,
    UnsupportedFormat,
    detect_format,
    iter_snapshot,
)
from certcheck.verification.numbers import today_in_shanghai
from certcheck.verification.records import Status

router = APIRouter(prefix="/v1", tags=["registry"])

_CURSOR_PATTERN = "^[0-9]{0,19}$"
log = logging.getLogger(__name__)


@router.get("/registry")
async def registry_info(
    store: StoreDep, engine: EngineDep, checker: CheckerDep, _key: VerifyKey
) -> RegistryOut:
    """How big and how fresh the registry is, and how its last import or sync went."""
    try:
        await store.refresh()
        run = await latest_run(engine)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        # The database is down: the answer says so (ready: false) rather than failing.
        log.warning("registry info without the database: %s", type(exc).__name__)
        run = None
    info = store.info
    now = datetime.now(UTC)
    reason = _not_ready(store, now)
    catalogue = checker.catalogue
    return RegistryOut(
        certificates=info.certificates if info else 0,
        by_status={s.value: (info.by_status.get(s.value, 0) if info else 0) for s in Status},
        as_of=info.as_of if info else None,
        source=info.source if info else None,
        generation=info.generation if info else 0,
        age_seconds=info.age(now).total_seconds() if info else None,
        ready=reason is None,
        not_ready_reason=reason,
        last_sync=None if run is None else _last_run(run),
        catalogue=CatalogueOut(
            version=catalogue.version,
            effective_from=catalogue.effective_from,
            source=catalogue.source,
        ),
    )


def _not_ready(store: RegistryStore, now: datetime) -> str | None:
    """Why no decisions are given now (stale, no registry, no database); None: they are."""
    try:
        store.ensure_usable(now)
    except CertcheckError as exc:
        return exc.detail
    return None if store.database_ok else "database unreachable"


def _last_run(run: Run) -> LastSync:
    return LastSync(
        kind=run.kind,
        started_at=run.started_at,
        finished_at=run.finished_at,
        outcome=run.outcome,
        added=run.added,
        changed=run.changed,
        removed=run.removed,
        error=run.error,
    )


@router.get("/changes")
async def list_changes(
    engine: EngineDep,
    _key: VerifyKey,
    since: Annotated[
        str | None,
        Query(
            description="the `next` of the previous page",
            json_schema_extra={"pattern": _CURSOR_PATTERN},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ChangesOut:
    """Certificates whose status changed, appeared or disappeared, oldest first."""
    start = _cursor(since)
    entries = await changes_since(engine, start, limit)
    return ChangesOut(
        changes=[
            Change(
                cert_no=e.cert_no,
                old_status=e.old_status,
                new_status=e.new_status,
                changed_at=e.changed_at,
            )
            for e in entries
        ],
        next=str(entries[-1].id if entries else start),
    )


def _cursor(since: str | None) -> int:
    if since is None or since == "":
        return 0
    # Cursors are row ids: a 64-bit integer in both databases, so no larger one was ever given.
    if not re.fullmatch(_CURSOR_PATTERN, since) or int(since) >= 1 << 63:
        raise InvalidCursor("since must be a `next` value from /v1/changes")
    return int(since)


@router.post(
    "/admin/registry/import",
    tags=["admin"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "a registry snapshot (registry-format.md), gzip allowed",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
    responses={
        409: {"description": "SYNC_IN_PROGRESS or TOO_MANY_REMOVALS"},
        413: {
            "description": "UPLOAD_TOO_LARGE: over CERTCHECK_IMPORT_MAX_UPLOAD_BYTES as sent, "
            "or CERTCHECK_IMPORT_MAX_CONTENT_BYTES after gunzip"
        },
        503: {"description": "IMPORT_TIMEOUT or IMPORT_CANCELLED: rolled back, unchanged"},
    },
)
async def import_registry(
    request: Request,
    store: StoreDep,
    engine: EngineDep,
    settings: SettingsDep,
    _key: AdminKey,
    force: Annotated[bool, Query(description="accept a snapshot that removes many")] = False,
) -> ImportOut:
    """Replace the registry with an uploaded snapshot, as one unit."""
    try:
        fmt = detect_format(
            content_type=request.headers.get("content-type"),
            content_encoding=request.headers.get("content-encoding"),
        )
    except UnsupportedFormat as exc:
        raise UnsupportedMediaType(str(exc)) from exc
    limits = ImportLimits(
        force=force,
        max_removed_share=settings.import_max_removed_share,
        max_error_share=settings.import_max_error_share,
    )
    reading = ReadLimits(settings.import_max_line_chars, settings.import_max_blank_lines)
    caps = UploadLimits(
        max_upload_bytes=settings.import_max_upload_bytes,
        max_content_bytes=settings.import_max_content_bytes,
        spool_dir=settings.job_spool_dir,
    )
    # Gunzipped and spooled under its caps before the writer lock is taken: an oversized
    # upload or a gzip bomb holds nothing.
    async with spooled_body(request, caps, gzipped=fmt.gzip) as spool:
        today = today_in_shanghai(datetime.now(UTC))
        started = datetime.now(UTC)
        plain = SnapshotFormat(fmt.kind, gzip=False)
        rows = iter_snapshot(cast(BinaryIO, spool), plain, today=today, limits=reading)
        work = import_snapshot(engine, rows, source="upload", limits=limits)
        try:
            result = await bounded(request, work, seconds=settings.import_timeout)
        except SnapshotError as exc:
            raise InvalidSnapshot(str(exc)) from exc
        except ImportAborted as exc:
            # The import's own record of its run was rolled back with everything else.
            await record_failed_run(engine, "import", "upload", started, exc, 0)
            raise
    await store.refresh()
    return import_out(result)


def import_out(result: ImportResult) -> ImportOut:
    return ImportOut(
        generation=result.generation,
        certificates=result.certificates,
        added=result.added,
        changed=result.changed,
        removed=result.removed,
        rows=result.rows,
        rejected_rows=result.rejected,
        errors=[RowErrorOut(line=e.line, message=e.message) for e in result.errors],
    )


@router.post(
    "/admin/registry/sync",
    tags=["admin"],
    responses={
        409: {"description": "SYNC_IN_PROGRESS or UPSTREAM_NOT_CONFIGURED"},
        502: {"description": "SYNC_FAILED or SYNC_REFUSED: pages before the failure stay applied"},
    },
)
async def sync_registry(_key: AdminKey, syncer: SyncerDep) -> SyncOut:
    """Pull what changed from the configured upstream feed now; answers when the run ends."""
    result = await syncer.run()  # each page commit refreshes this process's store
    return SyncOut(
        outcome="success",
        pages=result.pages,
        added=result.totals.added,
        changed=result.totals.changed,
        rejected_items=result.totals.rejected,
        generation=result.generation,
        cursor=result.cursor,
        as_of=result.as_of,
        errors=result.errors,
    )
