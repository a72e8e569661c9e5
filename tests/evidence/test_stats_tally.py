"""tally(): what a batch of checks adds to the statistics and signals. Pure: no fixtures."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ulid import ULID

from certcheck.checking import Check
from certcheck.evidence.records import Checked, Requested, Source
from certcheck.evidence.tally import (
    EVIDENCE_IDS,
    LISTING,
    MERCHANT,
    CountKey,
    Member,
    SignalKey,
    SignalKind,
    product_code_of,
    tally,
)
from certcheck.verification.records import Certificate, Decision, Reason
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
    def test_a_check_counts_on_its_china_standard_time_day(self, utc: datetime, day: date) -> None:
        (key,) = tally([checked(at=utc)]).counts
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
    def test_the_certificates_else_the_claim_else_none(
        self, certificate: Certificate | None, claimed: str | None, code: str
    ) -> None:
        item = checked(certificate=certificate, claimed_code=claimed)
        assert product_code_of(item) == code
        (key,) = tally([item]).counts
        assert key.product_code == code


class TestCounts:
    def test_one_counter_per_key_adding_up(self) -> None:
        items = [
            checked(),
            checked(),
            checked(source=Source.BATCH),
            checked(platform="other"),
            checked(Reason.REVOKED, Reason.MODEL_NOT_COVERED),
            checked(Reason.MODEL_NOT_COVERED),
        ]

        counts = tally(items).counts

        day = date(2026, 11, 22)
        assert counts == {
            CountKey(day, "shop", "", "verify", "VALID", "allow"): 2,
            CountKey(day, "shop", "", "batch", "VALID", "allow"): 1,
            CountKey(day, "other", "", "verify", "VALID", "allow"): 1,
            # The answer's reason (the most severe) and its decision; never one per reason.
            CountKey(day, "shop", "", "verify", "REVOKED", "block"): 1,
            CountKey(day, "shop", "", "verify", "MODEL_NOT_COVERED", "review"): 1,
        }

    def test_nothing_in_nothing_out(self) -> None:
        empty = tally([])
        assert (empty.counts, empty.members, empty.signals, empty.signal_merchants) == (
            {},
            set(),
            {},
            set(),
        )


class TestMembers:
    def test_listings_and_merchants_per_day_and_key(self) -> None:
        day = date(2026, 11, 22)
        items = [
            checked(listing="sku-1", merchant="m-1"),
            checked(listing="sku-1", merchant="m-1"),  # the same again: one row each
            checked(listing="sku-2"),
            checked(merchant="m-2", source=Source.JOB),
            checked(Reason.NOT_FOUND, listing="sku-1"),  # another reason: another row
            checked(listing="sku-1", at=NOON + timedelta(days=1)),  # another day
            checked(listing="", merchant=""),  # empty, not null: counted
            checked(),  # neither: none
        ]

        members = tally(items).members

        assert members == {
            Member(day, "shop", LISTING, "sku-1", "", "VALID", "verify"),
            Member(day, "shop", MERCHANT, "m-1", "", "VALID", "verify"),
            Member(day, "shop", LISTING, "sku-2", "", "VALID", "verify"),
            Member(day, "shop", MERCHANT, "m-2", "", "VALID", "job"),
            Member(day, "shop", LISTING, "sku-1", "", "NOT_FOUND", "verify"),
            Member(day + timedelta(1), "shop", LISTING, "sku-1", "", "VALID", "verify"),
            Member(day, "shop", LISTING, "", "", "VALID", "verify"),
            Member(day, "shop", MERCHANT, "", "", "VALID", "verify"),
        }


class TestSignals:
    def test_every_number_feeds_many_merchants_and_mismatches_their_own_kind(self) -> None:
        items = [
            checked(merchant="m-1"),
            checked(Reason.MODEL_NOT_COVERED, Reason.MANUFACTURER_MISMATCH, merchant="m-2"),
            checked(Reason.REVOKED, Reason.PRODUCT_MISMATCH),
            checked(Reason.MALFORMED, cert_no=None, merchant="m-3"),  # no number: no signal
            checked(Reason.NOT_REQUIRED, cert_no=None),
        ]

        out = tally(items)

        def key(kind: SignalKind) -> SignalKey:
            return SignalKey("shop", NUMBER, kind.value)

        assert {k: d.checks for k, d in out.signals.items()} == {
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

    def test_evidence_is_the_newest_ids_at_most_twenty(self) -> None:
        items = [checked(at=NOON + timedelta(seconds=n)) for n in range(30)]

        (delta,) = tally(reversed(items)).signals.values()

        newest = [item.check.check_id for item in reversed(items)][:EVIDENCE_IDS]
        assert delta.evidence == newest
        assert delta.checks == 30
        assert delta.last_checked_at == NOON + timedelta(seconds=29)

    def test_platforms_are_kept_apart(self) -> None:
        out = tally([checked(platform="a"), checked(platform="b")])
        assert set(out.signals) == {
            SignalKey("a", NUMBER, "MANY_MERCHANTS"),
            SignalKey("b", NUMBER, "MANY_MERCHANTS"),
        }


_reasons = st.lists(st.sampled_from(list(Reason)), min_size=1, max_size=3, unique=True)
_items = st.lists(
    st.builds(
        lambda reasons, minutes, platform, source, listing, merchant, number: checked(
            *reasons,
            at=NOON + timedelta(minutes=minutes),
            platform=platform,
            source=source,
            listing=listing,
            merchant=merchant,
            cert_no=number,
        ),
        _reasons,
        st.integers(-3000, 3000),
        st.sampled_from(["a", "b"]),
        st.sampled_from(list(Source)),
        st.sampled_from([None, "l1", "l2"]),
        st.sampled_from([None, "m1", "m2"]),
        st.sampled_from([None, NUMBER, "2024010901234568"]),
    ),
    max_size=40,
)


@given(_items)
def test_every_check_counts_once_and_every_id_is_a_member(items: list[Checked]) -> None:
    out = tally(items)
    assert sum(out.counts.values()) == len(items)
    members = [Member._make(row) for row in out.members]
    listed = {(m.platform, m.member) for m in members if m.kind == LISTING}
    assert listed == {
        (i.platform, i.requested.listing_id) for i in items if i.requested.listing_id is not None
    }
    numbered = Counter((i.platform, i.check.cert_no) for i in items if i.check.cert_no)
    signals = {SignalKey._make(key): delta for key, delta in out.signals.items()}
    many = {
        (k.platform, k.cert_no): d.checks
        for k, d in signals.items()
        if k.kind == SignalKind.MANY_MERCHANTS
    }
    assert many == dict(numbered)
    for delta in out.signals.values():
        assert len(delta.evidence) == min(delta.checks, EVIDENCE_IDS)
