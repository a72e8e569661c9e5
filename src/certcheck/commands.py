"""What each `certcheck` command does; cli.py only parses arguments and reports failures."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck import rechecking, serving
from certcheck.api.convert import verify_response
from certcheck.checking import Checker
from certcheck.cli import settings_from_env, use_demo_database
from certcheck.config import Settings
from certcheck.db import migrate
from certcheck.db.engine import create_engine
from certcheck.keys import KeyStore, Scope
from certcheck.registry.demo import demo_certificates, showcase_certificates
from certcheck.registry.importer import ImportLimits, ImportResult, import_snapshot
from certcheck.registry.snapshot import SnapshotError, detect_format, iter_snapshot
from certcheck.registry.snapshot_writer import write_snapshot
from certcheck.registry.store import RegistryStore
from certcheck.registry.upstream import build_syncer, upstream_client
from certcheck.verification.catalogue import load_catalogue
from certcheck.verification.numbers import today_in_shanghai
from certcheck.verification.records import Listing, Status

_T = TypeVar("_T")


@contextlib.asynccontextmanager
async def _engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database_url, pool_size=2)
    try:
        yield engine
    finally:
        await engine.dispose()


async def db_upgrade(_args: argparse.Namespace) -> int:
    async with _engine(settings_from_env()) as engine:
        await migrate.upgrade(engine)
    print("database is at the newest revision", file=sys.stderr)
    return 0


def serve(args: argparse.Namespace) -> int:
    if args.demo:
        use_demo_database()
    settings = settings_from_env()
    key = asyncio.run(_prepare(settings, demo=args.demo))
    if key is not None:
        _print_demo_banner(key, args.host, args.port)
    serving.run(args.host, args.port, args.workers, settings)
    return 0


async def _prepare(settings: Settings, *, demo: bool) -> str | None:
    async with _engine(settings) as engine:
        await migrate.upgrade(engine)
        if not demo:
            return None
        today = today_in_shanghai(datetime.now(UTC))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "demo.csv"
            write_snapshot(path, demo_certificates(10_000, today=today))
            await _import(engine, path, ImportLimits(force=True), quiet=True)
        _, key = await KeyStore(engine, cache_ttl=0).create("demo", frozenset(Scope))
        return key


def _print_demo_banner(key: str, host: str, port: int) -> None:
    today = today_in_shanghai(datetime.now(UTC))
    valid = next(c for c in showcase_certificates(today) if c.status is Status.VALID)
    body = json.dumps(
        {
            "cert_no": valid.cert_no,
            "product_code": valid.product_code,
            "model": valid.models[0],
            "listing_id": "sku-1",
        }
    )
    print(
        "\ncertcheck demo: 10,000 synthetic certificates loaded.\n"
        f"  demo API key (all scopes): {key}\n"
        "  try:\n"
        f"    curl -s http://{host}:{port}/v1/verify -H 'Authorization: Bearer {key}' "
        f"-H 'Content-Type: application/json' -d '{body}'\n"
        f"  API documentation: http://{host}:{port}/docs\n",
        flush=True,
    )


async def import_file(args: argparse.Namespace) -> int:
    async with _engine(settings_from_env()) as engine:
        settings = settings_from_env()
        limits = ImportLimits(
            force=args.force,
            max_removed_share=settings.import_max_removed_share,
            max_error_share=settings.import_max_error_share,
        )
        result = await _import(engine, Path(args.path), limits, quiet=False)
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
    fmt = detect_format(filename=path.name)
    with path.open("rb") as stream:
        rows = iter_snapshot(stream, fmt, today=today_in_shanghai(datetime.now(UTC)))
        if not quiet and sys.stderr.isatty():
            rows = _progress(rows, "rows read")
        try:
            return await import_snapshot(engine, rows, source=f"file:{path.name}", limits=limits)
        except SnapshotError as exc:
            raise ValueError(f"{path}: {exc}") from exc


async def sync(_args: argparse.Namespace) -> int:
    settings = settings_from_env()
    async with _engine(settings) as engine, upstream_client(settings) as http:
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


def fake_upstream(args: argparse.Namespace) -> int:
    from certcheck import fake_upstream

    faults = [fake_upstream.parse_fault(spec) for spec in args.fault]
    snapshot = Path(args.snapshot)
    fake_upstream.serve(snapshot, host=args.host, port=args.port, faults=faults, token=args.token)
    return 0


def _progress(items: Iterator[_T], label: str, every: int = 50_000) -> Iterator[_T]:
    count = 0
    for count, item in enumerate(items, 1):
        if count % every == 0:
            print(f"\r{count:,} {label}", end="", file=sys.stderr, flush=True)
        yield item
    print(f"\r{count:,} {label}", file=sys.stderr, flush=True)


async def keys_create(args: argparse.Namespace) -> int:
    async with _engine(settings_from_env()) as engine:
        key_id, key = await KeyStore(engine, cache_ttl=0).create(
            args.platform, frozenset(Scope(s) for s in args.scope)
        )
    print(f"created key {key_id} for {args.platform}; it is shown once", file=sys.stderr)
    print(key)
    return 0


async def keys_revoke(args: argparse.Namespace) -> int:
    async with _engine(settings_from_env()) as engine:
        revoked = await KeyStore(engine, cache_ttl=0).revoke(args.key_id)
    if not revoked:
        raise ValueError(f"no active key with id {args.key_id}")
    print(f"revoked key {args.key_id}", file=sys.stderr)
    return 0


async def verify(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    async with _engine(settings) as engine:
        store = RegistryStore(
            engine,
            cache_size=16,
            cache_ttl=1,
            db_timeout=settings.db_timeout,
            max_age=timedelta(seconds=settings.max_registry_age),
        )
        await store.refresh()
        checker = Checker(store, load_catalogue(settings.catalogue_dir))
        listing = Listing(
            cert_no=args.cert_no,
            product_code=args.product_code,
            model=args.model,
            manufacturer=args.manufacturer,
        )
        (check,) = await checker.check([listing])
    print(verify_response(check, None).model_dump_json(indent=2))
    return 0


async def recheck(args: argparse.Namespace) -> int:
    return await rechecking.run(args, settings_from_env())


def demo_registry(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise ValueError("--count must be at least 1")
    today = today_in_shanghai(datetime.now(UTC))
    path = Path(args.output)
    written = write_snapshot(path, demo_certificates(args.count, today=today))
    print(f"wrote {written} certificates to {path}", file=sys.stderr)
    return 0


def openapi(_args: argparse.Namespace) -> int:
    import yaml

    from certcheck.app import create_app

    document = create_app(Settings()).openapi()
    print(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), end="")
    return 0
