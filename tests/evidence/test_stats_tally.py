"""What a batch of checks adds to the statistics and signals, as the database folds it from
the staged rows (evidence/staged.py), on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from ulid import ULID

from certcheck.checking import Check
from certcheck.db.tables import check_counts, check_pairs, signal_counts, signal_merchants
from certcheck.evidence import store
from certcheck.evidence.records import Checked, Requested, Source
from certcheck.evidence.tally import (
    BOTH,
    EVIDENCE_IDS,
    LISTING,
    MERCHANT,
    SignalKind,
)
from certcheck.verification.records import Certificate, Decision, Reason
from tests.evidence.helpers import product_code_of
from tests.factories import cert

NUMBER = "2024010901234567"  # product code 0901
NOON = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)  # 12:00 in Beijing


def checked(
    *reasons: Reason,
    at: datetime = NOON,
    platform: str = "shop",
    source: Source = Source.VERIFY,
    cert_no: str | None = NUMBER,
    certificate: Certificate | None = None,
    claimed_code: str | None = None,
    listing: str | None = None,
    merchant: str | None = None,
) -> Checked:
    """A check answered with `reasons` (VALID when none), at `at`."""
    reasons = reasons or (Reason.VALID,)
    check = Check(
        check_id=str(ULID.from_datetime(at)),
        cert_no=cert_no,
        decision=Decision(reasons[0].verdict, reasons),
        certificate=certificate,
        registry_as_of=at,
        checked_at=at,
    )
    asked = Requested(product_code=claimed_code, listing_id=listing, merchant_id=merchant)
    return Checked(check, asked, source, platform)


class CountKey(NamedTuple):
    day: date
    platform: str
    product_code: str
    source: str
    reason: str
    decision: str


class Pair(NamedTuple):
    day: date
    platform: str
    listing: str
    merchant: str
    sides: str
    product_code: str
    reason: str
    source: str


class SignalKey(NamedTuple):
    platform: str
    cert_no: str
    kind: str


class Folded(NamedTuple):
    counts: dict[CountKey, int]
    pairs: set[Pair]
    signals: dict[SignalKey, Any]  # checks, evidence (a list), last_checked_at
    signal_merchants: set[tuple[SignalKey, str]]


async def folded(engine: AsyncEngine, items: list[Checked]) -> Folded:
    """`items` written as one batch, and what the aggregate tables then hold."""
    await store.write_all(engine, store.batch_of(items))
    s, m = signal_counts.c, signal_merchants.c
    async with engine.connect() as conn:
        counts = {CountKey(*row[:-1]): row[-1] for row in await conn.execute(select(check_counts))}
        pairs = {Pair(*row) for row in await conn.execute(select(check_pairs))}
        signals = {
            SignalKey(*row[:3]): (row.checks, row.evidence.split(), row.last_checked_at)
            for row in await conn.execute(
                select(s.platform, s.cert_no, s.kind, s.checks, s.evidence, s.last_checked_at)
            )
        }
        # A signal's first merchant is in its row, the others in signal_merchants.
        others = select(m.platform, m.cert_no, m.kind, m.merchant_id)
        firsts = select(s.platform, s.cert_no, s.kind, s.first_merchant).where(
            s.first_merchant.is_not(None)
        )
        merchants = [
            (SignalKey(*row[:3]), row[3])
            for query in (others, firsts)
            for row in await conn.execute(query)
        ]
    assert len(set(merchants)) == len(merchants), "a signal's first merchant twice"
    return Folded(counts, pairs, signals, set(merchants))


class TestDay:
    @pytest.mark.parametrize(
        ("utc", "day"),
        [
            (datetime(2026, 11, 21, 15, 59, 59, 999999, tzinfo=UTC), date(2026, 11, 21)),
            (datetime(2026, 11, 21, 16, 0, tzinfo=UTC), date(2026, 11, 22)),
            (datetime(2026, 11, 21, 23, 59, tzinfo=UTC), date(2026, 11, 22)),
            (datetime(2026, 11, 22, 0, 0, tzinfo=UTC), date(2026, 11, 22)),
            (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), date(2027, 1, 1)),
        ],
    )
    async def test_a_check_counts_on_its_china_standard_time_day(
        self, engine: AsyncEngine, utc: datetime, day: date
    ) -> None:
        (key,) = (await folded(engine, [checked(at=utc)])).counts
        assert key.day == day


class TestProductCode:
    @pytest.mark.parametrize(
        ("certificate", "claimed", "code"),
        [
            (cert(NUMBER), None, "0901"),
            (cert(NUMBER), "0902", "0901"),  # the certificate's, whatever the listing said
            (None, "0902", "0902"),
            (None, " 0902 ", "0902"),  # read as decide() reads it
            (None, "\uff10\uff19\uff10\uff12", "0902"),  # full-width digits
            (None, "", ""),
            (None, "   ", ""),
            (None, None, ""),
        ],
    )
    async def test_the_certificates_else_the_claim_else_none(
        self, engine: AsyncEngine, certificate: Certificate | None, claimed: str | None, code: str
    ) -> None:
        item = checked(certificate=certificate, claimed_code=claimed)
        assert product_code_of(item) == code
        (key,) = (await folded(engine, [item])).counts
        assert key.product_code == code


class TestCounts:
    async def test_one_counter_per_key_adding_up(self, engine: AsyncEngine) -> None:
        items = [
            checked(),
            checked(),
            checked(source=Source.BATCH),
            checked(platform="other"),
            checked(Reason.REVOKED, Reason.MODEL_NOT_COVERED),
            checked(Reason.MODEL_NOT_COVERED),
        ]

        counts = (await folded(engine, items)).counts

        day = date(2026, 11, 22)
        assert counts == {
            CountKey(day, "shop", "", "verify", "VALID", "allow"): 2,
            CountKey(day, "shop", "", "batch", "VALID", "allow"): 1,
            CountKey(day, "other", "", "verify", "VALID", "allow"): 1,
            # The answer's reason (the most severe) and its decision; never one per reason.
            CountKey(day, "shop", "", "verify", "REVOKED", "block"): 1,
            CountKey(day, "shop", "", "verify", "MODEL_NOT_COVERED", "review"): 1,
        }

    async def test_nothing_in_nothing_out(self, engine: AsyncEngine) -> None:
        assert await folded(engine, []) == Folded({}, set(), {}, set())


class TestPairs:
    async def test_listing_and_merchant_pairs_per_day_and_key(self, engine: AsyncEngine) -> None:
        day = date(2026, 11, 22)
        items = [
            checked(listing="sku-1", merchant="m-1"),
            checked(listing="sku-1", merchant="m-1"),  # the same again: one row
            checked(listing="sku-1", merchant="m-3"),  # another merchant: another pair
            checked(listing="sku-2"),
            checked(merchant="m-2", source=Source.JOB),
            checked(Reason.NOT_FOUND, listing="sku-1"),  # another reason: another row
            checked(listing="sku-1", at=NOON + timedelta(days=1)),  # another day
            checked(listing="", merchant=""),  # empty, not null: counted
            checked(listing=""),  # an empty listing alone: not the pair above
            checked(),  # neither: none
        ]

        pairs = (await folded(engine, items)).pairs

        assert pairs == {
            Pair(day, "shop", "sku-1", "m-1", BOTH, "", "VALID", "verify"),
            Pair(day, "shop", "sku-1", "m-3", BOTH, "", "VALID", "verify"),
            Pair(day, "shop", "sku-2", "", LISTING, "", "VALID", "verify"),
            Pair(day, "shop", "", "m-2", MERCHANT, "", "VALID", "job"),
            Pair(day, "shop", "sku-1", "", LISTING, "", "NOT_FOUND", "verify"),
            Pair(day + timedelta(1), "shop", "sku-1", "", LISTING, "", "VALID", "verify"),
            Pair(day, "shop", "", "", BOTH, "", "VALID", "verify"),
            Pair(day, "shop", "", "", LISTING, "", "VALID", "verify"),
        }


class TestSignals:
    async def test_every_number_feeds_many_merchants_and_mismatches_their_own_kind(
        self, engine: AsyncEngine
    ) -> None:
        items = [
            checked(merchant="m-1"),
            checked(Reason.MODEL_NOT_COVERED, Reason.MANUFACTURER_MISMATCH, merchant="m-2"),
            checked(Reason.REVOKED, Reason.PRODUCT_MISMATCH),
            checked(Reason.MALFORMED, cert_no=None, merchant="m-3"),  # no number: no signal
            checked(Reason.NOT_REQUIRED, cert_no=None),
        ]

        out = await folded(engine, items)

        def key(kind: SignalKind) -> SignalKey:
            return SignalKey("shop", NUMBER, kind.value)

        assert {k: d[0] for k, d in out.signals.items()} == {
            key(SignalKind.MANY_MERCHANTS): 3,
            key(SignalKind.MODEL_MISMATCH): 1,
            key(SignalKind.MANUFACTURER_MISMATCH): 1,
            key(SignalKind.PRODUCT_MISMATCH): 1,  # not the first reason: still a false claim
        }
        assert out.signal_merchants == {
            (key(SignalKind.MANY_MERCHANTS), "m-1"),
            (key(SignalKind.MANY_MERCHANTS), "m-2"),
            (key(SignalKind.MODEL_MISMATCH), "m-2"),
            (key(SignalKind.MANUFACTURER_MISMATCH), "m-2"),
        }

    async def test_merchants_are_the_first_one_named_and_each_other_once(
        self, engine: AsyncEngine
    ) -> None:
        batches = [
            [checked()],  # no merchant named yet
            [checked(merchant="m-2")],  # the first
            [checked(merchant="m-3"), checked(merchant="m-2"), checked(merchant="m-1")],
            [checked(merchant="m-1"), checked()],
        ]
        s = signal_counts.c
        seen = []
        for batch in batches:
            out = await folded(engine, batch)
            async with engine.connect() as conn:
                row = (await conn.execute(select(s.merchants, s.first_merchant))).one()
            seen.append(tuple(row))

        assert seen == [(0, None), (1, "m-2"), (3, "m-2"), (3, "m-2")]
        many = SignalKey("shop", NUMBER, SignalKind.MANY_MERCHANTS.value)
        assert out.signal_merchants == {(many, "m-1"), (many, "m-2"), (many, "m-3")}
        assert out.signals[many][0] == 7

    async def test_evidence_is_the_newest_ids_at_most_twenty(self, engine: AsyncEngine) -> None:
        items = [checked(at=NOON + timedelta(seconds=n)) for n in range(30)]

        ((checks, evidence, last),) = (await folded(engine, items[::-1])).signals.values()

        newest = [item.check.check_id for item in reversed(items)][:EVIDENCE_IDS]
        assert evidence == newest
        assert checks == 30
        assert last == NOON + timedelta(seconds=29)

    async def test_platforms_are_kept_apart(self, engine: AsyncEngine) -> None:
        out = await folded(engine, [checked(platform="a"), checked(platform="b")])
        assert set(out.signals) == {
            SignalKey("a", NUMBER, "MANY_MERCHANTS"),
            SignalKey("b", NUMBER, "MANY_MERCHANTS"),
        }


class TestStaging:
    async def test_staged_text_compares_bytewise_on_postgresql(self, engine: AsyncEngine) -> None:
        """The fold sorts and groups the staged rows: on PostgreSQL their text is collated "C"
        (memcmp), whatever the database's locale; SQLite compares bytes by default."""
        await store.prepare(engine, [NOON])  # the day's partition, outside the transaction
        async with engine.begin() as conn:
            await store.write(conn, store.batch_of([checked(merchant="m-1")]))
            if engine.dialect.name == "postgresql":
                query = text(
                    "SELECT a.attname, c.collname FROM pg_attribute AS a "
                    "JOIN pg_collation AS c ON c.oid = a.attcollation "
                    "WHERE a.attrelid = 'check_stage'::regclass AND a.attnum > 0"
                )
                collations: dict[str, str] = {
                    name: collation for name, collation in await conn.execute(query)
                }
                texts = {"check_id", "platform", "cert_no", "merchant_id", "code", "reason"}
                assert texts <= collations.keys()
                assert set(collations.values()) == {"C"}
            else:
                rows = await conn.execute(text("SELECT sql FROM sqlite_temp_master"))
                (ddl,) = [sql for (sql,) in rows if "check_stage" in sql]
                assert "COLLATE" not in ddl
        assert (await folded(engine, [])).signal_merchants == {
            (SignalKey("shop", NUMBER, "MANY_MERCHANTS"), "m-1")
        }
