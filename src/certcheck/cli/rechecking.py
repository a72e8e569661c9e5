"""`certcheck recheck INPUT [-o OUTPUT]`: a file of listings re-checked locally against the
configured database, a result line per listing; progress on a terminal, and a JSON summary
line (after a plain progress line every few seconds) if not."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.api.recheck import RecheckLines
from certcheck.checking import Checker
from certcheck.cli.listings import Totals, open_listings, open_output, recheck_stream
from certcheck.cli.progress import progress
from certcheck.config import Settings
from certcheck.jobs.framing import FramingLimits
from certcheck.jobs.records import UploadFormat
from certcheck.registry.store import RegistryStore
from certcheck.verification.catalogue import load_catalogue


async def run(
    engine: AsyncEngine,
    settings: Settings,
    *,
    source: Path,
    framing: UploadFormat,
    output: str | None,
) -> int:
    limits = FramingLimits(
        settings.job_chunk_lines,
        sys.maxsize,
        settings.job_max_line_bytes,
        max_blank_lines=settings.job_max_blank_lines,
    )
    checker = Checker(await _store(engine, settings), load_catalogue(settings.catalogue_dir))
    started = time.monotonic()
    with (
        open_listings(source) as listings,
        open_output(output) as out,
        progress(f"checking {source.name}", "lines") as update,
    ):
        totals = await recheck_stream(
            listings,
            framing,
            out,
            checker,
            RecheckLines(),
            limits=limits,
            on_chunk=lambda done: update(done.lines),
        )
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


def _summary(totals: Totals, seconds: float) -> None:
    if not sys.stderr.isatty():
        print(json.dumps(asdict(totals)), file=sys.stderr)
        return
    print(
        f"checked {totals.lines:,} lines in {seconds:.1f} s: allow {totals.allow:,}, "
        f"block {totals.block:,}, review {totals.review:,}; "
        f"{totals.invalid_lines:,} lines were not verify requests",
        file=sys.stderr,
    )
