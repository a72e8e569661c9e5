"""A verify answer built as bytes (api/answers.py) is what VerifyResponse's serializer writes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from certcheck.api.answers import Answers, verify_json
from certcheck.api.convert import verify_response
from certcheck.checking import Check, malformed
from certcheck.evidence.records import ShownOnce
from certcheck.snapshots.demo import demo_certificates
from certcheck.verification.catalogue import load_catalogue
from certcheck.verification.decision import decide
from certcheck.verification.records import Listing
from tests.conftest import today
from tests.factories import cert

NOW = datetime(2026, 12, 2, 10, 0, 0, 123456, tzinfo=UTC)
AS_OF = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # no microseconds: written without them
LISTING_IDS = [None, "", "L1", "商品-1", 'quote " and \\ backslash', "\u2028\x00\x1f", "😀" * 3]


def _expected(check: Check, listing_id: str | None) -> bytes:
    answer = verify_response(check, listing_id)
    return answer.__pydantic_serializer__.to_json(answer)


def test_every_decision_over_the_demo_registry() -> None:
    catalogue = load_catalogue()
    certificates = list(demo_certificates(2_000, today=today()))
    claims = [
        Listing(cert_no=None, product_code=None, model=None, manufacturer=None),
        Listing(cert_no=None, product_code="0901", model="XK-200", manufacturer="Example"),
        Listing(cert_no=None, product_code="9999", model="nope", manufacturer="Other Co."),
    ]
    verdicts = set()
    answers = Answers(
        ShownOnce()
    )  # as a batch writes them: one certificate asked for by several checks
    for n, certificate in enumerate(certificates):
        claim = claims[n % len(claims)]
        listing = Listing(certificate.cert_no, claim.product_code, claim.model, claim.manufacturer)
        decision = decide(listing, certificate, today=today(), catalogue=catalogue)
        verdicts.add(decision.verdict)
        check = Check(f"01JCHECK{n:018d}", certificate.cert_no, decision, certificate, AS_OF, NOW)
        listing_id = LISTING_IDS[n % len(LISTING_IDS)]
        assert verify_json(check, listing_id) == _expected(check, listing_id)
        # The second time, the certificate's part comes from the memo.
        assert verify_json(check, listing_id) == _expected(check, listing_id)
        again = Check(f"01JAGAIN{n:018d}", certificate.cert_no, decision, certificate, AS_OF, NOW)
        for one in (check, again):
            assert answers.of(one, listing_id) == _expected(one, listing_id)
    assert len(verdicts) == 3  # allow, block and review were all written


@pytest.mark.parametrize("listing_id", LISTING_IDS)
def test_a_number_not_in_the_registry_and_a_malformed_one(listing_id: str | None) -> None:
    catalogue = load_catalogue()
    absent = Listing("2024010901999999", None, None, None)
    decision = decide(absent, None, today=today(), catalogue=catalogue)
    not_found = Check("01JNOTFOUND000000000000000", "2024010901999999", decision, None, AS_OF, NOW)
    bad = malformed("20240109-x\u00e9", "not 16 digits", AS_OF + timedelta(microseconds=7), NOW)
    for check in (not_found, bad):
        written = verify_json(check, listing_id)
        assert written == _expected(check, listing_id)
        assert json.loads(written)["listing_id"] == listing_id


@pytest.mark.parametrize(
    "changes",
    [
        {"manufacturer": None, "factory": None, "product_name": None, "models": ()},
        {"holder": '引号 " \\ \u2028 😀', "models": ("a\x00b", "型号/Ω"), "status_reason": "撤销"},
        {"issued_on": None, "expires_on": None, "status_changed_on": date(2026, 1, 31)},
    ],
)
def test_a_certificate_of_every_shape(changes: dict[str, Any]) -> None:
    certificate = cert("2024010901555555", **changes)
    listing = Listing(certificate.cert_no, None, None, None)
    decision = decide(listing, certificate, today=today(), catalogue=load_catalogue())
    check = Check(
        "01JSHAPE00000000000000000X", certificate.cert_no, decision, certificate, AS_OF, NOW
    )
    assert verify_json(check, None) == _expected(check, None)
