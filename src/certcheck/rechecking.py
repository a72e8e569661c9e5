"""`certcheck recheck INPUT [-o OUTPUT]`: a file of listings re-checked locally against the
configured database, a result line per listing; progress on a terminal, one JSON line if not."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.api.recheck import RecheckLines
from certcheck.checking import Checker
from certcheck.config import Settings
from certcheck.db.engine import create_engine
from certcheck.jobs.framing import FramingLimits
from certcheck.jobs.local import (
    Totals,
    listing_format,
    open_listings,
    open_output,
    recheck_stream,
)
from certcheck.registry.store import RegistryStore
from certcheck.verification.catalogue import load_catalogue


async def run(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.input)
    fmt = listing_format(path, args.format)
    limits = FramingLimits(settings.job_chunk_lines, sys.maxsize, settings.job_max_line_bytes)
    engine = create_engine(settings.database_url, pool_size=2)
    try:
        checker = Checker(await _store(engine, settings), load_catalogue(settings.catalogue_dir))
        started = time.monotonic()
        with open_listings(path) as source, open_output(args.output) as out:
            totals = await recheck_stream(
                source, fmt, out, checker, RecheckLines(), limits=limits, on_chunk=_progress()
            )
    finally:
        await engine.dispose()
    _summary(totals, time.monotonic() - started)
    return 0


async def _store(engine: AsyncEngine, settings: Settings) -> RegistryStore:
    store = RegistryStore(
        engine,
        cache_size=settings.cache_size,
        cache_ttl=settings.cache_ttl,
        db_timeout=settings.db_timeout,
        max_age=timedelta(seconds=settings.max_registry_age),
    )
    await store.refresh()
    return store


def _progress() -> Callable[[Totals], None]:
    if not sys.stderr.isatty():
        return lambda _: None
    started = time.monotonic()

    def show(totals: Totals) -> None:
        rate = totals.lines / max(time.monotonic() - started, 1e-6)
        print(f"\r{totals.lines:,} lines checked ({rate:,.0f}/s)", end="", file=sys.stderr)

    return show


def _summary(totals: Totals, seconds: float) -> None:
    if not sys.stderr.isatty():
        print(json.dumps(asdict(totals)), file=sys.stderr)
        return
    print(
        f"\rchecked {totals.lines:,} lines in {seconds:.1f} s: allow {totals.allow:,}, "
        f"block {totals.block:,}, review {totals.review:,}; "
        f"{totals.invalid_lines:,} lines were not verify requests",
        file=sys.stderr,
    )
