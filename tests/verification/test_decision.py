"""decide(): one row per reason of api.md, precedence, several reasons at once, expiry."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certcheck.verification.catalogue import Catalogue, CatalogueGroup, CatalogueProduct
from certcheck.verification.decision import MALFORMED_DECISION, decide
from certcheck.verification.records import (
    Certificate,
    Decision,
    Listing,
    Reason,
    Status,
    Verdict,
)

TODAY = date(2026, 11, 23)
NUMBER = "2020010901234567"


def _product(code: str, mode: str, *, removed: bool = False) -> CatalogueProduct:
    return CatalogueProduct(code, code[:2], f"product {code}", mode, removed, "V", "test")


CATALOGUE = Catalogue(
    version="test-1",
    effective_from=date(2023, 9, 5),
    source="test",
    products=MappingProxyType(
        {
            "0901": _product("0901", "third_party"),
            "0501": _product("0501", "sd_A"),
            "0801": _product("0801", "", removed=True),
        }
    ),
    groups=MappingProxyType({"19": CatalogueGroup("19", "security", False, "V", "test")}),
)

CERT = Certificate(
    cert_no=NUMBER,
    status=Status.VALID,
    holder="Example Electronics Co., Ltd.",
    manufacturer="Example Manufacturing (Dongguan) Co., Ltd.",
    factory="Example Electronics (Dongguan) Factory",
    product_code="0901",
    product_name="Portable computer",
    models=("XK-200", "XK-200S"),
    issued_on=date(2020, 3, 14),
    expires_on=date(2027, 3, 13),
    status_changed_on=None,
    status_reason=None,
)
CLAIMS = Listing(
    cert_no=NUMBER,
    product_code="0901",
    model="XK-200",
    manufacturer="Example Electronics Co., Ltd.",
)


def _claims(**changes: str | None) -> Listing:
    return replace(CLAIMS, **changes)


def _cert(**changes: Any) -> Certificate:
    return CERT._replace(**changes)


def _decision(*reasons: Reason) -> Decision:
    return Decision(reasons[0].verdict, reasons)


R = Reason
WITHOUT_NUMBER = [
    pytest.param(Listing(product_code="0801"), _decision(R.NOT_REQUIRED), id="removed-code"),
    pytest.param(Listing(product_code="1905"), _decision(R.NOT_REQUIRED), id="withdrawn-group"),
    pytest.param(Listing(product_code="0501"), _decision(R.SELF_DECLARED), id="self-declared"),
    pytest.param(Listing(product_code="0901"), _decision(R.CERT_REQUIRED), id="cert-required"),
    pytest.param(Listing(product_code="0999"), _decision(R.CERT_REQUIRED), id="unknown-code"),
    pytest.param(Listing(), _decision(R.CERT_REQUIRED), id="no-product-code"),
    pytest.param(Listing(product_code=" "), _decision(R.CERT_REQUIRED), id="blank-product-code"),
    pytest.param(Listing(product_code="cables"), _decision(R.CERT_REQUIRED), id="not-a-code"),
    pytest.param(
        Listing(cert_no="", product_code="0801"), _decision(R.NOT_REQUIRED), id="empty-cert-no"
    ),
]

WITH_CERTIFICATE = [
    pytest.param(CLAIMS, CERT, _decision(R.VALID), id="valid"),
    pytest.param(Listing(cert_no=NUMBER), CERT, _decision(R.VALID), id="valid-nothing-claimed"),
    pytest.param(
        _claims(
            product_code=" \uff10\uff19\uff10\uff11",
            model="\u3000xk-200s\t",
            manufacturer=" EXAMPLE manufacturing (dongguan) co., ltd.",
        ),
        CERT,
        _decision(R.VALID),
        id="valid-after-normalising-claims",
    ),
    pytest.param(
        _claims(product_code="", model=" ", manufacturer="\u3000"),
        CERT,
        _decision(R.VALID),
        id="blank-claims-are-not-claims",
    ),
    pytest.param(CLAIMS, None, _decision(R.NOT_FOUND), id="not-found"),
    pytest.param(CLAIMS, _cert(status=Status.SUSPENDED), _decision(R.SUSPENDED), id="suspended"),
    pytest.param(CLAIMS, _cert(status=Status.REVOKED), _decision(R.REVOKED), id="revoked"),
    pytest.param(CLAIMS, _cert(status=Status.CANCELLED), _decision(R.CANCELLED), id="cancelled"),
    pytest.param(CLAIMS, _cert(status=Status.EXPIRED), _decision(R.EXPIRED), id="status-expired"),
    pytest.param(
        CLAIMS,
        _cert(status=Status.EXPIRED, expires_on=TODAY - timedelta(days=1)),
        _decision(R.EXPIRED),
        id="expired-by-status-and-date-listed-once",
    ),
    pytest.param(
        CLAIMS,
        _cert(expires_on=TODAY - timedelta(days=1)),
        _decision(R.EXPIRED),
        id="expired-yesterday",
    ),
    pytest.param(
        CLAIMS, _cert(expires_on=TODAY), _decision(R.VALID), id="expires-today-still-valid"
    ),
    pytest.param(CLAIMS, _cert(expires_on=None), _decision(R.VALID), id="no-expiry-date"),
    pytest.param(
        _claims(product_code="0902"), CERT, _decision(R.PRODUCT_MISMATCH), id="product-mismatch"
    ),
    pytest.param(_claims(model="XK-300"), CERT, _decision(R.MODEL_NOT_COVERED), id="model"),
    pytest.param(
        _claims(model="XK-200"), _cert(models=()), _decision(R.MODEL_NOT_COVERED), id="no-models"
    ),
    pytest.param(
        _claims(manufacturer="Other Co."), CERT, _decision(R.MANUFACTURER_MISMATCH), id="maker"
    ),
    pytest.param(
        _claims(manufacturer="Example Manufacturing (Dongguan) Co., Ltd."),
        CERT,
        _decision(R.VALID),
        id="manufacturer-matches-manufacturer",
    ),
    pytest.param(
        CLAIMS, _cert(manufacturer=None), _decision(R.VALID), id="holder-matches-no-manufacturer"
    ),
    pytest.param(
        _claims(manufacturer="Other Co."),
        _cert(manufacturer=None),
        _decision(R.MANUFACTURER_MISMATCH),
        id="no-manufacturer-holder-differs",
    ),
    pytest.param(
        _claims(product_code="0902", model="XK-300", manufacturer="Other Co."),
        CERT,
        _decision(R.PRODUCT_MISMATCH, R.MODEL_NOT_COVERED, R.MANUFACTURER_MISMATCH),
        id="all-review-reasons-in-order",
    ),
    pytest.param(
        _claims(model="XK-300"),
        _cert(status=Status.REVOKED),
        _decision(R.REVOKED, R.MODEL_NOT_COVERED),
        id="block-beats-review",
    ),
    pytest.param(
        _claims(manufacturer="Other Co.", product_code="0902"),
        _cert(status=Status.SUSPENDED, expires_on=TODAY - timedelta(days=400)),
        _decision(R.SUSPENDED, R.EXPIRED, R.PRODUCT_MISMATCH, R.MANUFACTURER_MISMATCH),
        id="two-blocks-two-reviews",
    ),
]


class TestDecide:
    @pytest.mark.parametrize(("listing", "expected"), WITHOUT_NUMBER)
    def test_without_number(self, listing: Listing, expected: Decision) -> None:
        assert decide(listing, None, today=TODAY, catalogue=CATALOGUE) == expected

    def test_without_number_ignores_a_certificate(self) -> None:
        decision = decide(Listing(product_code="0901"), CERT, today=TODAY, catalogue=CATALOGUE)
        assert decision == _decision(R.CERT_REQUIRED)

    @pytest.mark.parametrize(("listing", "certificate", "expected"), WITH_CERTIFICATE)
    def test_with_number(
        self, listing: Listing, certificate: Certificate | None, expected: Decision
    ) -> None:
        assert decide(listing, certificate, today=TODAY, catalogue=CATALOGUE) == expected

    def test_more_certificates_than_the_normalised_forms_kept(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("certcheck.verification.decision._KEPT", 2)
        many = [
            _cert(models=tuple(f"XK-{n}{'0' * k}" for k in range(count)), holder=f"Holder {n}")
            for n, count in enumerate((1, 3, 9, 20, 2, 1))
        ]
        for _ in range(2):
            for n, certificate in enumerate(many):
                covered = _claims(model=f"xk-{n}", manufacturer=f"HOLDER {n}")
                other = _claims(model="XK-999", manufacturer="Other Co.")

                assert decide(covered, certificate, today=TODAY, catalogue=CATALOGUE) == (
                    _decision(R.VALID)
                )
                assert decide(other, certificate, today=TODAY, catalogue=CATALOGUE) == _decision(
                    R.MODEL_NOT_COVERED, R.MANUFACTURER_MISMATCH
                )

    def test_malformed_decision(self) -> None:
        assert Decision(Verdict.BLOCK, (R.MALFORMED,)) == MALFORMED_DECISION
        assert MALFORMED_DECISION.reason is R.MALFORMED


@given(
    status=st.sampled_from(Status),
    expiry=st.one_of(st.none(), st.integers(min_value=-3, max_value=3)),
    listing=st.builds(
        Listing,
        cert_no=st.just(NUMBER),
        product_code=st.sampled_from([None, "", "0901", "0902"]),
        model=st.sampled_from([None, " ", "XK-200", "xk-200s", "XK-300"]),
        manufacturer=st.sampled_from([None, "example electronics co., ltd.", "Other Co."]),
    ),
)
def test_verdict_follows_most_severe_reason(
    status: Status, expiry: int | None, listing: Listing
) -> None:
    expires_on = None if expiry is None else TODAY + timedelta(days=expiry)
    certificate = _cert(status=status, expires_on=expires_on)
    decision = decide(listing, certificate, today=TODAY, catalogue=CATALOGUE)
    order = list(Reason)
    assert decision.verdict is decision.reasons[0].verdict
    assert list(decision.reasons) == sorted(set(decision.reasons), key=order.index)
    in_force = status is Status.VALID and (expiry is None or expiry >= 0)
    assert (decision.verdict is Verdict.BLOCK) is not in_force
