"""A job line's wire format: parsed as a verify request, answered as a RecheckResult."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from certcheck.api.convert import verify_response
from certcheck.api.recheck import RecheckLines
from certcheck.api.schemas import RecheckResult, VerifyResponse
from certcheck.checking import Check
from certcheck.evidence.records import ShownOnce
from certcheck.verification.decision import MALFORMED_DECISION
from certcheck.verification.records import Decision, Reason, Verdict
from tests.factories import cert

CODEC = RecheckLines()
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


class TestParse:
    def test_a_verify_request(self) -> None:
        line = b'{"cert_no": "CCC 2024-0109-01234567", "model": "XK-200", "listing_id": "s1"}'
        parsed = CODEC.parse(line)
        assert not isinstance(parsed, str)
        claims = (parsed.cert_no, parsed.product_code, parsed.model, parsed.manufacturer)
        assert claims == ("CCC 2024-0109-01234567", None, "XK-200", None)
        assert (parsed.listing_id, parsed.merchant_id) == ("s1", None)

    @pytest.mark.parametrize(
        ("line", "why"),
        [
            (b"{not json", "invalid JSON: "),
            (b'{"cert_no": "1"} trailing', "invalid JSON: "),
            (b'{"cert_no": "a", "cert_no": "b"}', "invalid JSON: a member name appears twice"),
            (b'{"cert\\u005fno": "a", "cert_no": "b"}', "invalid JSON: a member name appears"),
            (b'{"cert_no": "\\ud800"}', "invalid JSON: "),
            (b'{"cert_no": NaN}', "cert_no: "),
            (b'{"cert_no": 2024010901234567}', "cert_no: Input should be a valid string"),
            (b'{"colour": "red"}', "colour: Extra inputs are not permitted"),
            (b'{"model": "%s"}' % (b"x" * 257), "model: String should have at most 256"),
            (b"[1]", "Input should be an object"),
            (b'"just a string"', "Input should be an object"),
        ],
    )
    def test_not_a_verify_request(self, line: bytes, why: str) -> None:
        answer = CODEC.parse(line)
        assert isinstance(answer, str)
        assert answer.startswith(why)

    def test_colons_in_values_are_not_repeated_members(self) -> None:
        line = b'{"cert_no": "CCC: 2024010901234567", "model": "a:b:c"}'
        assert not isinstance(CODEC.parse(line), str)


def render(check: Check, listing_id: str | None, line: int, error: str | None) -> bytes:
    """One line as a chunk's renderer writes it."""
    return CODEC.renderer(ShownOnce(keep=False))(check, listing_id, line, error)


class TestRender:
    def check(self, decision: Decision, certificate: bool) -> Check:
        return Check(
            check_id="01JD3V6Q3C7M8Y3W1F0B2K5N9T",
            cert_no="2024010901234567" if certificate else None,
            decision=decision,
            certificate=cert() if certificate else None,
            registry_as_of=NOW,
            checked_at=NOW,
        )

    def test_a_verify_response_with_its_line(self) -> None:
        check = self.check(Decision(Verdict.ALLOW, (Reason.VALID,)), certificate=True)
        line = render(check, "s1", 7, None)
        result = RecheckResult.model_validate_json(line)
        assert (result.line, result.error, result.listing_id) == (7, None, "s1")
        assert result.certificate is not None
        assert "error" not in json.loads(line)
        assert b"\n" not in line

    @pytest.mark.parametrize("certificate", [True, False])
    def test_after_the_line_number_it_is_the_verify_answer_byte_for_byte(
        self, certificate: bool
    ) -> None:
        check = self.check(Decision(Verdict.REVIEW, (Reason.MODEL_NOT_COVERED,)), certificate)
        answer = VerifyResponse.__pydantic_serializer__.to_json(verify_response(check, "s\u00e9"))
        assert render(check, "s\u00e9", 3, None) == b'{"line":3,' + answer[1:]

    def test_an_unreadable_line_says_why(self) -> None:
        check = self.check(MALFORMED_DECISION, certificate=False)
        line = render(check, None, 12, 'invalid JSON: "quoted" \u00e9')
        result = RecheckResult.model_validate_json(line)
        assert (result.line, result.decision, result.reason) == (12, "block", "MALFORMED")
        assert result.error == 'invalid JSON: "quoted" \u00e9'
