"""The aggregates against a count over the records themselves, on both databases: random
checks written in several batches (so counters are upserted, not only inserted), then every
grouping, range and platform compared with a plain count of the same checks."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.db.engine import create_engine
from certcheck.db.tables import check_counts, check_records, signal_counts, signal_merchants
from certcheck.errors import InvalidDateRange
from certcheck.evidence import signals, stats, store
from certcheck.evidence.records import Checked, Source
from certcheck.evidence.signals import MANY_MERCHANTS_FROM, score
from certcheck.evidence.stats import GroupBy
from certcheck.evidence.tally import EVIDENCE_IDS
from certcheck.verification.numbers import today_in_shanghai
from certcheck.verification.records import Reason
from tests.evidence.helpers import product_code_of, signal_kinds
from tests.evidence.test_stats_tally import NOON, checked
from tests.factories import cert

NUMBERS = ["2024010901234567", "2024010901234568", "2024010701234569"]


def random_checks(seed: int, count: int) -> list[Checked]:
    rnd = random.Random(seed)
    reasons = [
        (Reason.VALID,),
        (Reason.NOT_FOUND,),
        (Reason.REVOKED, Reason.MODEL_NOT_COVERED),
        (Reason.MODEL_NOT_COVERED,),
        (Reason.PRODUCT_MISMATCH, Reason.MANUFACTURER_MISMATCH),
        (Reason.MALFORMED,),
    ]
    out = []
    for n in range(count):
        why = rnd.choice(reasons)
        number = None if why == (Reason.MALFORMED,) else rnd.choice(NUMBERS)
        found = number is not None and why != (Reason.NOT_FOUND,)
        out.append(
            checked(
                *why,
                # Four days around midnight in Beijing (16:00 UTC), a millisecond apart at least.
                at=NOON + timedelta(hours=rnd.randrange(-40, 60), milliseconds=n),
                platform=rnd.choice(["shop-a", "shop-b"]),
                source=rnd.choice(list(Source)),
                cert_no=number,
                certificate=cert(number) if found and number else None,
                claimed_code=rnd.choice([None, "0901", "0902", " "]),
                listing=rnd.choice([None, *(f"sku-{i}" for i in range(6))]),
                merchant=rnd.choice([None, *(f"m-{i}" for i in range(7))]),
            )
        )
    return out


def key_of(item: Checked, group_by: GroupBy) -> str | None:
    if group_by is GroupBy.DAY:
        return today_in_shanghai(item.check.checked_at).isoformat()
    if group_by is GroupBy.PRODUCT_CODE:
        return product_code_of(item) or None
    if group_by is GroupBy.REASON:
        return item.check.decision.reason.value
    return item.source.value


_NULLS: set[tuple[str, str | None]] = {("shop-a", None), ("shop-b", None)}


def counted(items: list[Checked]) -> dict[str, Any]:
    """The figures of `items`, counted one by one: what the aggregates must equal."""
    decisions = [item.check.decision for item in items]
    by_reason: defaultdict[str, int] = defaultdict(int)
    for decision in decisions:
        by_reason[decision.reason.value] += 1
    return {
        "checks": len(items),
        **{v: sum(d.verdict.value == v for d in decisions) for v in ("allow", "block", "review")},
        "by_reason": dict(sorted(by_reason.items())),
        "listings": len({(i.platform, i.requested.listing_id) for i in items} - _NULLS),
        "merchants": len({(i.platform, i.requested.merchant_id) for i in items} - _NULLS),
    }


def expected(
    items: list[Checked], first: date, last: date, group_by: GroupBy, platform: str | None
) -> tuple[list[tuple[str | None, dict[str, Any]]], dict[str, Any]]:
    chosen = [
        i
        for i in items
        if first <= today_in_shanghai(i.check.checked_at) <= last and platform in (None, i.platform)
    ]
    groups: defaultdict[str | None, list[Checked]] = defaultdict(list)
    for item in chosen:
        groups[key_of(item, group_by)].append(item)
    keys = sorted(groups, key=lambda k: (k is None, k or ""))
    return [(k, counted(groups[k])) for k in keys], counted(chosen)


def figures(f: stats.Figures) -> dict[str, Any]:
    return {
        "checks": f.checks,
        "allow": f.allow,
        "block": f.block,
        "review": f.review,
        "by_reason": f.by_reason,
        "listings": f.listings,
        "merchants": f.merchants,
    }


async def write_in_batches(engine: AsyncEngine, items: list[Checked], size: int) -> None:
    for start in range(0, len(items), size):
        await store.write_all(engine, store.batch_of(items[start : start + size]))


DAYS = [date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22), date(2026, 11, 24)]


class TestStatistics:
    async def test_equal_a_count_over_the_records(self, engine: AsyncEngine) -> None:
        items = random_checks(seed=13, count=400)
        await write_in_batches(engine, items, size=37)

        for group_by in GroupBy:
            for first, last in [(DAYS[0], DAYS[-1]), (DAYS[1], DAYS[2]), (DAYS[2], DAYS[2])]:
                for platform in (None, "shop-a", "shop-b", "nobody"):
                    got = await stats.statistics(engine, first, last, group_by, platform)
                    rows, total = expected(items, first, last, group_by, platform)
                    where = (group_by, first, last, platform)
                    assert [(k, figures(f)) for k, f in got.rows] == rows, where
                    assert figures(got.total) == total, where

    async def test_the_records_are_there_too(self, engine: AsyncEngine) -> None:
        items = random_checks(seed=7, count=50)
        await write_in_batches(engine, items, size=50)
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(check_records)) == 50
            assert await conn.scalar(select(func.sum(check_counts.c.checks))) == 50

    @pytest.mark.parametrize(
        ("first", "last"), [(DAYS[1], DAYS[0]), (DAYS[0], DAYS[0] + timedelta(400))]
    )
    async def test_refuses_a_reversed_or_long_range(
        self, engine: AsyncEngine, first: date, last: date
    ) -> None:
        with pytest.raises(InvalidDateRange):
            await stats.statistics(engine, first, last, GroupBy.DAY, None)

    async def test_four_hundred_days_are_allowed(self, engine: AsyncEngine) -> None:
        got = await stats.statistics(engine, DAYS[0], DAYS[0] + timedelta(399), GroupBy.DAY, None)
        assert got.rows == []


def expected_signals(items: list[Checked], platform: str | None) -> dict[tuple[str, str], Any]:
    checks: defaultdict[tuple[str, str], int] = defaultdict(int)
    merchants: defaultdict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    ids: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
    for item in items:
        if platform not in (None, item.platform):
            continue
        for kind in signal_kinds(item):
            key = (str(item.check.cert_no), kind.value)
            checks[key] += 1
            ids[key].append(item.check.check_id)
            if item.requested.merchant_id is not None:
                merchants[key].add((item.platform, item.requested.merchant_id))
    out = {}
    for key, n in checks.items():
        points = score(key[1], n, len(merchants[key]))
        if points is not None:
            out[key] = (points, n, len(merchants[key]), set(ids[key]))
    return out


class TestSignals:
    async def test_equal_a_count_over_the_records(self, engine: AsyncEngine) -> None:
        items = random_checks(seed=5, count=300)
        await write_in_batches(engine, items, size=23)

        for platform in (None, "shop-a", "shop-b"):
            want = expected_signals(items, platform)
            got = await signals.signals(engine, platform, limit=100)
            assert {(s.cert_no, s.kind): (s.score, s.checks, s.merchants) for s in got} == {
                key: value[:3] for key, value in want.items()
            }, platform
            assert [s.score for s in got] == sorted((s.score for s in got), reverse=True)
            for s in got:
                assert len(s.evidence) == min(s.checks, EVIDENCE_IDS)
                assert set(s.evidence) <= want[s.cert_no, s.kind][3]
                assert s.evidence == sorted(s.evidence, reverse=True)

    async def test_limit_keeps_the_highest(self, engine: AsyncEngine) -> None:
        items = random_checks(seed=5, count=300)
        await write_in_batches(engine, items, size=300)
        every = await signals.signals(engine, None, limit=100)
        assert len(every) > 2
        assert await signals.signals(engine, None, limit=2) == every[:2]

    async def test_many_merchants_starts_at_its_threshold(self, engine: AsyncEngine) -> None:
        # Four merchants, each twice, in batches that split them: seen again, counted once.
        few = [checked(merchant=f"m-{n % 4}", at=NOON + timedelta(seconds=n)) for n in range(8)]
        await write_in_batches(engine, few, size=3)
        assert await signals.signals(engine, None, limit=10) == []

        await write_in_batches(engine, [checked(merchant="m-new", at=NOON - timedelta(1))], size=1)

        (signal,) = await signals.signals(engine, None, limit=10)
        assert (signal.kind, signal.score, signal.merchants, signal.checks) == (
            "MANY_MERCHANTS",
            MANY_MERCHANTS_FROM,
            MANY_MERCHANTS_FROM,
            9,
        )

    async def test_evidence_is_a_batchs_newest_ids_before_older_ones(
        self, engine: AsyncEngine
    ) -> None:
        def stored() -> Any:
            return select(
                signal_counts.c.checks,
                signal_counts.c.merchants,
                signal_counts.c.evidence,
                signal_counts.c.last_checked_at,
            ).where(signal_counts.c.kind == "MANY_MERCHANTS")

        older = [checked(merchant="m-1", at=NOON + timedelta(seconds=n)) for n in range(30)]
        newer = [checked(merchant="m-2", at=NOON + timedelta(hours=1, seconds=n)) for n in range(5)]
        await write_in_batches(engine, older[::-1], size=30)  # a batch's order does not matter
        ids = sorted((i.check.check_id for i in older), reverse=True)
        async with engine.connect() as conn:
            first = (await conn.execute(stored())).one()
        assert first == (30, 1, " ".join(ids[:EVIDENCE_IDS]), older[-1].check.checked_at)

        await write_in_batches(engine, newer, size=5)

        newest = sorted((i.check.check_id for i in newer), reverse=True)
        async with engine.connect() as conn:
            then = (await conn.execute(stored())).one()
        assert then == (
            35,
            2,
            " ".join((newest + ids)[:EVIDENCE_IDS]),
            newer[-1].check.checked_at,
        )

    async def test_a_batch_of_signals_checked_once_and_many_times(
        self, engine: AsyncEngine
    ) -> None:
        # SQLite makes a signal's evidence one way when a batch checks it once, another when
        # more than once (staged.py): both in one batch, with a mismatch kind beside them.
        once = [
            checked(cert_no=n, merchant="m-1", at=NOON + timedelta(seconds=i))
            for i, n in enumerate(NUMBERS[1:])
        ]
        many = [
            checked(
                *((Reason.MODEL_NOT_COVERED,) if i % 3 == 0 else ()),
                merchant=f"m-{i % 4}",
                at=NOON + timedelta(minutes=1, seconds=i),
            )
            for i in range(25)
        ]
        batch = [*many[:12], *once, *many[12:]]
        await write_in_batches(engine, batch, size=len(batch))

        async with engine.connect() as conn:
            stored = (
                await conn.execute(
                    select(
                        signal_counts.c.cert_no,
                        signal_counts.c.kind,
                        signal_counts.c.checks,
                        signal_counts.c.merchants,
                        signal_counts.c.evidence,
                        signal_counts.c.last_checked_at,
                    )
                )
            ).all()

        def newest(items: list[Checked]) -> str:
            ids = sorted((i.check.check_id for i in items), reverse=True)
            return " ".join(ids[:EVIDENCE_IDS])

        mismatched = many[::3]
        assert sorted(tuple(row) for row in stored) == sorted(
            [
                *(
                    (
                        item.check.cert_no,
                        "MANY_MERCHANTS",
                        1,
                        1,
                        newest([item]),
                        item.check.checked_at,
                    )
                    for item in once
                ),
                (NUMBERS[0], "MANY_MERCHANTS", 25, 4, newest(many), many[-1].check.checked_at),
                (
                    NUMBERS[0],
                    "MODEL_MISMATCH",
                    len(mismatched),
                    4,  # every third check: m-0, m-3, m-2, m-1
                    newest(mismatched),
                    mismatched[-1].check.checked_at,
                ),
            ]
        )


class TestConcurrentWriters:
    async def test_count_each_merchant_once_and_never_deadlock(
        self, engine: AsyncEngine, database_url: str
    ) -> None:
        """Processes (each an engine of its own) flushing at once the same numbers and
        merchants in different batches: every new merchant counted by the one transaction
        that inserted it, and rows locked in one order so no two transactions deadlock."""
        items = random_checks(seed=11, count=1200)
        others = [create_engine(database_url) for _ in range(3)]
        try:
            writers = [engine, *others]
            await asyncio.gather(
                *(
                    write_in_batches(writer, items[n :: len(writers)], size=50)
                    for n, writer in enumerate(writers)
                )
            )
        finally:
            for other in others:
                await other.dispose()

        for platform in (None, "shop-a", "shop-b"):
            want = expected_signals(items, platform)
            got = await signals.signals(engine, platform, limit=100)
            assert {(s.cert_no, s.kind): (s.checks, s.merchants) for s in got} == {
                key: value[1:3] for key, value in want.items()
            }, platform
        async with engine.connect() as conn:
            total = await conn.scalar(select(func.sum(check_counts.c.checks)))
        assert total == len(items)


class TestPurge:
    async def test_figures_go_with_the_records(self, engine: AsyncEngine) -> None:
        now = datetime.now(UTC)
        # Two merchants each: the second of each signal is a row of signal_merchants.
        old = [
            checked(at=now - timedelta(days=40), merchant=m, listing="sku-1")
            for m in ("m-1", "m-2")
        ]
        new = [
            checked(cert_no="2024010901234568", at=now - timedelta(days=1), merchant=m)
            for m in ("m-1", "m-2")
        ]
        await write_in_batches(engine, [*old, *new], size=4)

        done = await store.purge(engine, 30)

        # The old day's counter and its two pairs (a listing, two merchants); the old number's
        # one signal.
        assert done.endswith("; forgot 3 statistics rows and 1 signal rows")

        today = today_in_shanghai(now)
        got = await stats.statistics(engine, today - timedelta(60), today, GroupBy.DAY, None)
        assert got.total.checks == 2
        assert got.total.listings == 0
        async with engine.connect() as conn:
            left = set(await conn.scalars(select(signal_counts.c.cert_no)))
            merchants_left = set(await conn.scalars(select(signal_merchants.c.cert_no)))
        assert left == merchants_left == {"2024010901234568"}


class TestAnUncertainWrite:
    """A batch written again after an earlier write of it ended without an answer (it may
    have committed): what is already there is neither inserted nor counted again."""

    async def test_leaves_out_what_is_written_and_counts_the_rest_once(
        self, engine: AsyncEngine
    ) -> None:
        items = random_checks(seed=21, count=200)
        await write_in_batches(engine, items[:120], size=40)

        # 80 of these committed before (40-119), 80 are new (120-199).
        await store.write_all(engine, store.batch_of(items[40:]), uncertain=True)

        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(check_records)) == 200
        for group_by in GroupBy:
            got = await stats.statistics(engine, DAYS[0], DAYS[-1], group_by, None)
            rows, total = expected(items, DAYS[0], DAYS[-1], group_by, None)
            assert [(k, figures(f)) for k, f in got.rows] == rows, group_by
            assert figures(got.total) == total, group_by
        want = expected_signals(items, None)
        got_signals = await signals.signals(engine, None, limit=100)
        assert {(s.cert_no, s.kind): (s.score, s.checks, s.merchants) for s in got_signals} == {
            key: value[:3] for key, value in want.items()
        }

    async def test_a_certain_write_of_a_written_record_fails(self, engine: AsyncEngine) -> None:
        items = random_checks(seed=22, count=10)
        await write_in_batches(engine, items, size=10)
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            await store.write_all(engine, store.batch_of(items[5:]))
