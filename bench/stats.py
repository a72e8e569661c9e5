"""What GET /v1/stats's reads cost over a big day: the service's statistics against the least
the same distinct counts need.

    python -m bench.stats [--database sqlite|postgresql] [--listings 1000000] [--rounds 3]

A new database of each kind, migrated, holds one China Standard Time day of a platform's
statistics as a re-check job of `--listings` different listings leaves them: one pair row a
listing, its merchant one of `--merchants`, its product code one of 20 and its reason one of
5 (the job's mix), and their counters. For each grouping, `evidence.stats.statistics` reads
that day `--rounds` times; the baseline, in the same round, is one plain query counting the
day's distinct listings and merchants over the same rows. Printed: the best round of each,
and the baseline's time over the service's (1.0: as cheap as a bare distinct count).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench._common import cli, database_url, drop_database
from certcheck.db.engine import create_engine
from certcheck.db.tables import check_counts, check_pairs
from certcheck.evidence.stats import GroupBy, statistics
from certcheck.evidence.tally import BOTH

DAY = date(2026, 12, 6)
PLATFORM = "bench"
REASONS = ("VALID", "EXPIRED", "REVOKED", "NOT_FOUND", "MODEL_NOT_COVERED")
_SLICE = 20_000  # rows an INSERT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stats", description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), action="append")
    parser.add_argument("--listings", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=997)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="certcheck-stats-") as tmp:
        for kind in args.database or ["sqlite", "postgresql"]:
            url = database_url(kind, Path(tmp), "stats")
            try:
                cli({"CERTCHECK_DATABASE_URL": url}, "db", "upgrade")
                asyncio.run(_measure(kind, url, args))
            finally:
                drop_database(url)
    return 0


async def _measure(kind: str, url: str, args: argparse.Namespace) -> None:
    engine = create_engine(url)
    try:
        started = time.perf_counter()
        await _fill(engine, args.listings, args.merchants)
        print(f"{kind}: {args.listings:,} listings filled in {time.perf_counter() - started:.1f} s")
        print(f"{'group_by':<14}{'stats s':>10}{'baseline s':>12}{'ratio':>8}")
        for group_by in GroupBy:
            ours, plain = [], []
            for _ in range(args.rounds):
                ours.append(await _timed_stats(engine, group_by, args))
                plain.append(await _timed_baseline(engine))
            best, base = min(ours), min(plain)
            print(f"{group_by.value:<14}{best:>10.3f}{base:>12.3f}{base / best:>8.2f}")
    finally:
        await engine.dispose()


def _code(i: int) -> str:
    return f"{i % 20:04d}"


async def _fill(engine: AsyncEngine, listings: int, merchants: int) -> None:
    pairs = (
        {
            "day": DAY,
            "platform": PLATFORM,
            "listing": f"sku-{i}",
            "merchant": f"m-{i % merchants}",
            "sides": BOTH,
            "product_code": _code(i),
            "reason": REASONS[i % len(REASONS)],
            "source": "job",
        }
        for i in range(listings)
    )
    async with engine.begin() as conn:
        batch = []
        for row in pairs:
            batch.append(row)
            if len(batch) == _SLICE:
                await conn.execute(insert(check_pairs), batch)
                batch = []
        if batch:
            await conn.execute(insert(check_pairs), batch)
        counters = {(_code(i), REASONS[i % len(REASONS)]) for i in range(min(listings, 100))}
        await conn.execute(
            insert(check_counts),
            [
                {
                    "day": DAY,
                    "platform": PLATFORM,
                    "product_code": code,
                    "source": "job",
                    "reason": reason,
                    "decision": "allow",
                    "checks": 1,
                }
                for code, reason in counters
            ],
        )
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE"))


async def _timed_stats(engine: AsyncEngine, group_by: GroupBy, args: argparse.Namespace) -> float:
    started = time.perf_counter()
    got = await statistics(engine, DAY, DAY, group_by, PLATFORM)
    took = time.perf_counter() - started
    if (got.total.listings, got.total.merchants) != (
        args.listings,
        min(args.merchants, args.listings),
    ):
        raise RuntimeError(f"statistics counted {got.total}, not what was filled")
    return took


async def _timed_baseline(engine: AsyncEngine) -> float:
    p = check_pairs.c
    where = (p.day == DAY, p.platform == PLATFORM)
    listings = select(p.listing).distinct().where(*where).subquery()
    merchants = select(p.merchant).distinct().where(*where).subquery()
    started = time.perf_counter()
    async with engine.connect() as conn:
        await conn.execute(
            select(
                select(func.count()).select_from(listings).scalar_subquery(),
                select(func.count()).select_from(merchants).scalar_subquery(),
            )
        )
    return time.perf_counter() - started


if __name__ == "__main__":
    raise SystemExit(main())
