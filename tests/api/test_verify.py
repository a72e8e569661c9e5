"""POST /v1/verify: every decision of api.md over HTTP, on both databases."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.verification.records import Status
from tests.conftest import load, today
from tests.factories import cert

VALID = "2024010901234567"
SUSPENDED = "2023010901000001"
REVOKED = "2023010901000002"
CANCELLED = "2023010901000003"
EXPIRED = "2019010901000004"
LAPSED = "2020010901000005"  # status valid, but past its expiry date


def registry() -> list[Any]:
    yesterday = today() - timedelta(days=1)
    return [
        cert(VALID, expires_on=today() + timedelta(days=400)),
        cert(SUSPENDED, status=Status.SUSPENDED, status_changed_on=date(2026, 1, 5)),
        cert(REVOKED, status=Status.REVOKED, status_reason="failed inspection"),
        cert(CANCELLED, status=Status.CANCELLED),
        cert(EXPIRED, status=Status.EXPIRED, expires_on=date(2024, 1, 1)),
        cert(LAPSED, expires_on=yesterday),
    ]


@pytest.fixture
async def loaded(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await load(engine, registry())
    assert (await client.get("/readyz")).status_code == 200


def url(app: FastAPI) -> str:
    return app.url_path_for("verify_one")


CASES: list[tuple[str, dict[str, Any], str, str, list[str]]] = [
    ("valid", {"cert_no": VALID}, "allow", "VALID", ["VALID"]),
    (
        "valid-all-claims-match",
        {
            "cert_no": VALID,
            "product_code": "0901",
            "model": " xk-200s ",
            "manufacturer": "EXAMPLE ELECTRONICS CO.,  LTD.",
        },
        "allow",
        "VALID",
        ["VALID"],
    ),
    (
        "messy-number",
        {"cert_no": "CCC\uff1a \uff12\uff10\uff12\uff14-0109 0123 4567"},
        "allow",
        "VALID",
        ["VALID"],
    ),
    ("not-required", {"product_code": "0908"}, "allow", "NOT_REQUIRED", ["NOT_REQUIRED"]),
    ("not-required-group", {"product_code": "1901"}, "allow", "NOT_REQUIRED", ["NOT_REQUIRED"]),
    ("malformed", {"cert_no": "2024O10901234567"}, "block", "MALFORMED", ["MALFORMED"]),
    ("not-found", {"cert_no": "2024010901999999"}, "block", "NOT_FOUND", ["NOT_FOUND"]),
    ("suspended", {"cert_no": SUSPENDED}, "block", "SUSPENDED", ["SUSPENDED"]),
    ("revoked", {"cert_no": REVOKED}, "block", "REVOKED", ["REVOKED"]),
    ("cancelled", {"cert_no": CANCELLED}, "block", "CANCELLED", ["CANCELLED"]),
    ("expired-status", {"cert_no": EXPIRED}, "block", "EXPIRED", ["EXPIRED"]),
    ("expired-by-date", {"cert_no": LAPSED}, "block", "EXPIRED", ["EXPIRED"]),
    ("cert-required", {"product_code": "0901"}, "block", "CERT_REQUIRED", ["CERT_REQUIRED"]),
    ("cert-required-no-code", {}, "block", "CERT_REQUIRED", ["CERT_REQUIRED"]),
    (
        "empty-number-is-absent",
        {"cert_no": "", "product_code": "0901"},
        "block",
        "CERT_REQUIRED",
        ["CERT_REQUIRED"],
    ),
    ("self-declared", {"product_code": "0501"}, "review", "SELF_DECLARED", ["SELF_DECLARED"]),
    (
        "product-mismatch",
        {"cert_no": VALID, "product_code": "0701"},
        "review",
        "PRODUCT_MISMATCH",
        ["PRODUCT_MISMATCH"],
    ),
    (
        "model-not-covered",
        {"cert_no": VALID, "model": "XK-300"},
        "review",
        "MODEL_NOT_COVERED",
        ["MODEL_NOT_COVERED"],
    ),
    (
        "manufacturer-mismatch",
        {"cert_no": VALID, "manufacturer": "Other Co."},
        "review",
        "MANUFACTURER_MISMATCH",
        ["MANUFACTURER_MISMATCH"],
    ),
    (
        "block-beats-review",
        {"cert_no": REVOKED, "model": "XK-300", "product_code": "0701"},
        "block",
        "REVOKED",
        ["REVOKED", "PRODUCT_MISMATCH", "MODEL_NOT_COVERED"],
    ),
    (
        "all-reviews",
        {"cert_no": VALID, "model": "X", "product_code": "0701", "manufacturer": "Y"},
        "review",
        "PRODUCT_MISMATCH",
        ["PRODUCT_MISMATCH", "MODEL_NOT_COVERED", "MANUFACTURER_MISMATCH"],
    ),
]


@pytest.mark.usefixtures("loaded")
class TestVerifyDecisions:
    @pytest.mark.parametrize(
        ("body", "decision", "reason", "reasons"),
        [case[1:] for case in CASES],
        ids=[case[0] for case in CASES],
    )
    async def test_decision(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        headers: dict[str, str],
        body: dict[str, Any],
        decision: str,
        reason: str,
        reasons: list[str],
    ) -> None:
        response = await client.post(url(app), json=body, headers=headers)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert (answer["decision"], answer["reason"], answer["reasons"]) == (
            decision,
            reason,
            reasons,
        )

    async def test_answer_carries_the_record_and_normalised_number(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        body = {"cert_no": f"3C {VALID}", "listing_id": "sku-88231", "merchant_id": "shop-1"}
        answer = (await client.post(url(app), json=body, headers=headers)).json()
        assert answer["cert_no"] == VALID
        assert answer["listing_id"] == "sku-88231"
        assert answer["certificate"]["models"] == ["XK-200", "XK-200S"]
        assert answer["certificate"]["body_code"] == "01"
        assert len(answer["check_id"]) == 26
        assert answer["registry_as_of"].endswith("Z")
        assert answer["checked_at"] >= answer["registry_as_of"]

    async def test_malformed_and_absent_numbers_answer_null(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        for body in ({"cert_no": "12345"}, {"cert_no": None}, {}):
            answer = (await client.post(url(app), json=body, headers=headers)).json()
            assert answer["cert_no"] is None
            assert answer["certificate"] is None

    async def test_each_check_has_its_own_id(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        ids = {
            (await client.post(url(app), json={"cert_no": VALID}, headers=headers)).json()[
                "check_id"
            ]
            for _ in range(3)
        }
        assert len(ids) == 3


@pytest.mark.usefixtures("loaded")
class TestMalformedSaysWhy:
    async def test_the_answer_echoes_the_number_and_says_why(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        for sent, why in (
            ("2099 9999 9999 9999", "2099999999999999: year 2099 is in the future. "),
            ("2024O10901234567", "'2024O10901234567': 'O' is not a digit 0-9. "),
        ):
            body = {"cert_no": sent, "listing_id": "sku-1"}
            answer = (await client.post(url(app), json=body, headers=headers)).json()
            assert (answer["reason"], answer["cert_no"]) == ("MALFORMED", None)
            assert answer["cert_no_given"] == sent
            assert answer["detail"].startswith(why)
            assert "16 digits" in answer["detail"]

    async def test_other_answers_carry_null_in_both(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        for body in ({"cert_no": VALID}, {"cert_no": "2024010901999999"}, {"cert_no": " "}, {}):
            answer = (await client.post(url(app), json=body, headers=headers)).json()
            assert answer["reason"] != "MALFORMED"
            assert (answer["cert_no_given"], answer["detail"]) == (None, None)
