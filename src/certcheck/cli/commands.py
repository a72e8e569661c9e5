"""What each `certcheck` command does; parser/ parses the command line, main.py reports failures.

Each function takes the settings and the parsed arguments and returns the exit status. What
only some commands need (the web app, the checker, the upstream client, Alembic) is imported in
them: `certcheck import` of a million rows should not first spend seconds loading a web service.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Awaitable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.cli.database import open_database, shown
from certcheck.cli.environment import announce_when_ready, demo_banner
from certcheck.cli.progress import Update, progress
from certcheck.config import Settings
from certcheck.db import revision
from certcheck.db.outage import is_database_outage
from certcheck.snapshots.demo import demo_certificates
from certcheck.snapshots.importer import ImportLimits, ImportResult, import_snapshot
from certcheck.snapshots.reader import SnapshotError, detect_format, iter_snapshot
from certcheck.snapshots.writer import write_snapshot
from certcheck.verification.numbers import today_in_shanghai
from certcheck.verification.records import Listing, Verdict

# `certcheck verify`'s exit status per decision; 1 is a failed command, 2 a wrong command line.
VERDICT_EXIT = {Verdict.ALLOW: 0, Verdict.BLOCK: 3, Verdict.REVIEW: 4}

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_PROGRESS_EVERY = 0.2  # seconds between two looks at how far the snapshot has been read


async def db_upgrade(settings: Settings) -> int:
    from certcheck.db import migrate

    async with open_database(settings, migrated=False) as engine:
        await migrate.upgrade(engine)
    print(f"database {shown(settings.database_url)} is at the newest revision", file=sys.stderr)
    return 0


def serve(settings: Settings, *, host: str, port: int, workers: int | None, demo: bool) -> int:
    """`workers` None: one per core available (serving.available_cores)."""
    from certcheck import serving

    # Bound before anything is printed or loaded: a port in use fails here, in one line.
    try:
        listener = serving.bind(host, port)
    except OSError as exc:
        raise click.ClickException(serving.bind_failure(host, port, exc)) from None
    with listener:
        key = asyncio.run(_prepare(settings, demo=demo))
        if key is not None:
            announce_when_ready(demo_banner(key, host, port), host, port)
        count = workers if workers is not None else serving.available_cores()
        if not serving.run(listener, count, settings):
            raise click.ClickException("the service did not start; the log lines above say why")
    return 0


async def _prepare(settings: Settings, *, demo: bool) -> str | None:
    from certcheck.keys import KeyStore, Scope

    async with open_database(settings, migrated=False) as engine:
        try:
            await revision.upgrade_if_pending(engine)
        except Exception as exc:
            if demo or not is_database_outage(exc):
                raise
            # Serve anyway, unready: the service migrates once the database answers, so a
            # database that comes up after certcheck (a common boot order) needs no restart.
            log.warning("the database is unreachable (%s): serving, not ready", type(exc).__name__)
            return None
        if not demo:
            return None
        today = _today()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "demo.csv"
            write_snapshot(path, demo_certificates(10_000, today=today))
            await _import(engine, path, ImportLimits(force=True), quiet=True)
        _, key = await KeyStore(engine, cache_ttl=0).create("demo", frozenset(Scope))
        return key


async def import_file(settings: Settings, *, path: Path, force: bool) -> int:
    require_readable(path)  # before the database: a typo must not create ./certcheck.db
    async with open_database(settings) as engine:
        limits = ImportLimits(
            force=force,
            max_removed_share=settings.import_max_removed_share,
            max_error_share=settings.import_max_error_share,
        )
        result = await _import(engine, path, limits, quiet=False)
    for error in result.errors[:20]:
        print(f"  line {error.line}: {error.message}", file=sys.stderr)
    print(
        f"added {result.added}, changed {result.changed}, removed {result.removed}; "
        f"{result.certificates} certificates, {result.rejected} rows rejected"
    )
    return 0


async def _import(
    engine: AsyncEngine, path: Path, limits: ImportLimits, *, quiet: bool
) -> ImportResult:
    with path.open("rb") as stream:
        rows = iter_snapshot(stream, detect_format(filename=path.name), today=_today())

        def work() -> Awaitable[ImportResult]:
            # Made where it is awaited: a coroutine made first and never awaited (the progress
            # display failing to open) would only warn.
            return import_snapshot(engine, rows, source=f"file:{path.name}", limits=limits)

        try:
            if quiet:
                return await work()
            size = os.fstat(stream.fileno()).st_size
            with progress(f"importing {path.name}", "bytes", total=size) as update:
                return await _reporting(work(), stream, update)
        except SnapshotError as exc:
            raise click.ClickException(f"{path}: {exc}") from None


async def _reporting(work: Awaitable[_T], stream: BinaryIO, update: Update) -> _T:
    """`work`, reporting how far `stream` has been read (compressed bytes for .gz) meanwhile.

    Read from the file's offset, not counted by the reader: on SQLite a large snapshot is read
    by a parser process sharing this open file (snapshots/parser_process.py), not by this one.
    """

    async def report() -> None:
        while True:
            update(os.lseek(stream.fileno(), 0, os.SEEK_CUR))
            await asyncio.sleep(_PROGRESS_EVERY)

    reporter = asyncio.ensure_future(report())
    try:
        return await work
    finally:
        reporter.cancel()


def require_readable(path: Path) -> None:
    if not path.is_file():
        raise click.ClickException(f"{path}: no such file")
    with path.open("rb"):
        pass  # raises PermissionError (an OSError: one line) when it cannot be read


def _today() -> date:
    return today_in_shanghai(datetime.now(UTC))


async def sync(settings: Settings) -> int:
    from certcheck.sync.upstream import build_syncer, upstream_client

    async with upstream_client(settings) as http, open_database(settings) as engine:
        result = await build_syncer(settings, engine, http).run()
    for error in result.errors[:20]:
        print(f"  {error}", file=sys.stderr)
    totals = result.totals
    cursor = result.cursor.isoformat() if result.cursor else "none"
    print(
        f"{result.pages} pages: added {totals.added}, changed {totals.changed}; "
        f"{totals.rejected} items rejected; cursor {cursor}"
    )
    return 0


def fake_upstream(
    *, snapshot: Path, host: str, port: int, fault: list[str], token: str | None
) -> int:
    from certcheck.sync import fake_upstream

    faults = [fake_upstream.parse_fault(spec) for spec in fault]
    fake_upstream.serve(snapshot, host=host, port=port, faults=faults, token=token)
    return 0


async def keys_create(settings: Settings, *, platform: str, scopes: list[str]) -> int:
    from certcheck.keys import KeyStore, Scope

    async with open_database(settings) as engine:
        key_id, key = await KeyStore(engine, cache_ttl=0).create(
            platform, frozenset(Scope(s) for s in scopes)
        )
    print(f"created key {key_id} for {platform}; it is shown once", file=sys.stderr)
    print(key)
    return 0


async def keys_revoke(settings: Settings, *, key_id: str) -> int:
    from certcheck.keys import KeyStore

    async with open_database(settings) as engine:
        revoked = await KeyStore(engine, cache_ttl=0).revoke(key_id)
    if not revoked:
        raise click.ClickException(f"no active key with id {key_id}")
    print(f"revoked key {key_id}", file=sys.stderr)
    return 0


async def verify(settings: Settings, listing: Listing) -> int:
    from certcheck.api.convert import verify_response
    from certcheck.checking import Checker
    from certcheck.registry.store import RegistryStore
    from certcheck.verification.catalogue import load_catalogue

    async with open_database(settings) as engine:
        store = RegistryStore(
            engine,
            cache_size=16,
            cache_ttl=1,
            db_timeout=settings.db_timeout,
            max_age=timedelta(seconds=settings.max_registry_age),
        )
        await store.refresh()
        checker = Checker(store, load_catalogue(settings.catalogue_dir))
        check = await checker.check_one(listing)
    print(verify_response(check, None).model_dump_json(indent=2))
    return VERDICT_EXIT[check.decision.verdict]


async def recheck(settings: Settings, *, source: Path, output: str | None, fmt: str | None) -> int:
    from certcheck.cli import rechecking
    from certcheck.cli.listings import listing_format

    require_readable(source)
    framing = listing_format(source, fmt)  # a name that does not tell fails before the database
    async with open_database(settings) as engine:
        return await rechecking.run(engine, settings, source=source, framing=framing, output=output)


def demo_registry(*, output: Path, count: int) -> int:
    written = write_snapshot(output, demo_certificates(count, today=_today()))
    print(f"wrote {written} certificates to {output}", file=sys.stderr)
    return 0


def openapi(settings: Settings) -> int:
    import yaml

    from certcheck.app import create_app

    document = create_app(settings).openapi()
    print(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), end="")
    return 0
